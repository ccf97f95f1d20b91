"""``import robustbench`` offline, for its data loaders (CIFAR-10-C, ImageNet-C).

robustbench 1.1.1 imports ``autoattack`` (``robustbench/eval.py``), a module no installable package
provides: its declared dependency ``pyautoattack`` installs ``pyautoattack``, whose API differs
(``AutoAttack(..., log_path=)`` raises TypeError, ``batch_size=`` not ``bs=``, ``attacks=`` not
``attacks_to_run=``, a tuple returned). ``import_robustbench`` registers an ``autoattack`` module
(and ``autoattack.state``) whose classes refuse to be used, unless a real ``autoattack`` is
importable; robustbench's AutoAttack evaluation (``robustbench.eval.benchmark``) therefore fails
loudly instead of misbehaving, and nothing else of robustbench changes.
"""

from __future__ import annotations

import importlib.util
import sys
import types

UNAVAILABLE = ("AutoAttack is unavailable: robustbench 1.1.1 needs the original 'autoattack' package "
               "(github.com/fra31/auto-attack), not installed here; erbench uses robustbench only for its data loaders")


class _Unavailable:
    def __init__(self, *args, **kwargs):
        raise RuntimeError(UNAVAILABLE)

    @classmethod
    def from_disk(cls, *args, **kwargs):
        raise RuntimeError(UNAVAILABLE)


def _install_alias() -> None:
    package = types.ModuleType("autoattack", "erbench stand-in: " + UNAVAILABLE)
    package.__path__ = []  # a package, so that `from autoattack.state import ...` resolves
    state = types.ModuleType("autoattack.state", "erbench stand-in: " + UNAVAILABLE)
    package.AutoAttack = type("AutoAttack", (_Unavailable,), {})
    state.EvaluationState = type("EvaluationState", (_Unavailable,), {})
    package.state = state
    sys.modules["autoattack"], sys.modules["autoattack.state"] = package, state


def import_robustbench() -> types.ModuleType:
    """The robustbench package, importable without network access or the original autoattack."""
    if "autoattack" not in sys.modules and importlib.util.find_spec("autoattack") is None:
        _install_alias()
    import robustbench
    import robustbench.data  # noqa: F401 -- the loaders (load_cifar10c, load_imagenetc)

    return robustbench

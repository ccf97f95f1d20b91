"""robustbench imports offline for its data loaders; its AutoAttack path refuses instead of pretending."""

from __future__ import annotations

import sys

import pytest

from erbench.data.robustbench_compat import UNAVAILABLE, import_robustbench


def test_robustbench_imports_with_its_corruption_loaders():
    robustbench = import_robustbench()
    from robustbench.data import load_cifar10c, load_imagenetc

    assert callable(load_cifar10c) and callable(load_imagenetc) and callable(robustbench.load_model)
    assert import_robustbench() is robustbench  # idempotent


def test_the_autoattack_alias_refuses_to_attack():
    import_robustbench()
    from robustbench import eval as rb_eval

    assert sys.modules["autoattack"].__doc__.startswith("erbench stand-in")
    with pytest.raises(RuntimeError, match="AutoAttack is unavailable"):
        rb_eval.AutoAttack(lambda x: x, norm="Linf", eps=8 / 255, version="standard")
    with pytest.raises(RuntimeError, match="AutoAttack is unavailable"):
        rb_eval.EvaluationState.from_disk("state.json")
    assert "erbench uses robustbench only for its data loaders" in UNAVAILABLE

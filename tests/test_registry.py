"""The generic registry, and every registered entry: lazy targets resolve, declared metadata is true."""

from __future__ import annotations

import sys

import pytest

from erbench.conditions import CONDITIONS, ConditionInfo
from erbench.data.datasets import DATASETS
from erbench.data.local import LocalTrack
from erbench.data.manifest import load_manifest
from erbench.errors import ErbenchError
from erbench.models.architectures import ARCHITECTURES
from erbench.protocol import PROTOCOLS
from erbench.registry import Registry, resolve


def test_duplicates_misses_and_lazy_targets(tmp_path, monkeypatch):
    (tmp_path / "erbench_probe_module.py").write_text("THING = object()\nclass NS:\n    inner = 'x'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry("widget")
    reg.register("plain", 1, meta="one")
    reg.register("lazy", target="erbench_probe_module:THING", meta="declared")
    reg.register("dotted", target="erbench_probe_module:NS.inner")
    with pytest.raises(ValueError, match="widget 'plain' is registered twice"):
        reg.register("plain", 2)
    with pytest.raises(ValueError, match="exactly one"):
        reg.register("both", 1, target="m:a")
    with pytest.raises(ValueError, match="module:attr"):
        reg.register("bad", target="no_colon")
    with pytest.raises(ErbenchError, match=r"unknown widget 'lazzy' \(did you mean 'lazy'\?\)"):
        reg.get("lazzy", field="f")
    with pytest.raises(ErbenchError, match="did you mean 'plain'"):
        reg.meta("plainn")
    assert list(reg) == ["dotted", "lazy", "plain"] and "lazy" in reg
    assert reg.metas() == [("lazy", "declared"), ("plain", "one")]
    assert "erbench_probe_module" not in sys.modules, "metadata, membership and listing import nothing"
    assert reg.get("lazy") is sys.modules["erbench_probe_module"].THING
    assert reg.get("dotted") == "x" and reg.target("lazy") == "erbench_probe_module:THING"
    assert reg.target("plain") is None


def test_resolve_rejects_malformed_targets():
    with pytest.raises(ValueError, match="module:attr"):
        resolve("erbench.cells")
    assert resolve("erbench.cells:Cell.label").__name__ == "label"


@pytest.mark.parametrize("name", list(CONDITIONS))
def test_condition_target_resolves_to_what_is_declared(name):
    """The catalog's kind, summary and flags equal the implementation's (conditions/catalog.py)."""
    info = CONDITIONS.meta(name)
    assert isinstance(info, ConditionInfo) and CONDITIONS.target(name)
    impl = CONDITIONS.get(name)
    assert callable(impl.generate)
    assert (impl.kind, impl.summary) == (info.kind, info.summary)
    assert getattr(impl, "rate_attack", False) == info.rate_attack
    assert getattr(impl, "adaptive", False) == info.adaptive
    if info.kind == "attack":
        assert impl.name == name
    if info.kind == "corruption":
        assert f"corruption.{impl.name}" == name


@pytest.mark.parametrize("name", list(DATASETS))
def test_dataset_target_resolves(name):
    """An embedded track registers its builder, a real track its LocalTrack, as its manifest says."""
    entry, manifest = DATASETS.get(name), load_manifest(name)
    assert DATASETS.target(name)
    if manifest.local is None:
        assert callable(entry) and manifest.test_sha256
    else:
        assert isinstance(entry, LocalTrack)


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_architecture_target_resolves(name):
    arch = ARCHITECTURES.get(name)
    assert callable(arch.builder()) and arch.family in ("factorized", "hyperprior")


@pytest.mark.parametrize("name", list(PROTOCOLS))
def test_protocol_conditions_are_registered_with_metadata(name):
    proto = PROTOCOLS.get(name)
    for cell in proto.cells + proto.defended_cells:
        assert CONDITIONS.meta(cell.condition).adaptive == (cell in proto.defended_cells)

"""Slow: the full erbench-v1 battery on a reference model, every image, every cell."""

from __future__ import annotations

import pytest
from conftest import HYPERPRIOR

from erbench.protocol import PROTOCOLS
from erbench.results import read_results
from erbench.runner import evaluate


@pytest.mark.slow
def test_full_battery_on_a_reference_model(tmp_path):
    proto = PROTOCOLS.get("erbench-v1")
    result = evaluate(HYPERPRIOR, tmp_path / "out", cache_dir=tmp_path / "cache", progress=False)
    summary, per_image = read_results(result.path)
    base = summary[summary["kind"] != "aggregate"]
    assert len(base) == len(proto.cells)
    assert (summary["n_images"] == 497).all() and len(per_image) == 497 * len(summary)  # worst-case rows too
    assert per_image["decode_ok"].all()
    corruptions = base[base["kind"] == "corruption"]
    assert len(corruptions) == 19 * 5 and corruptions["severity"].between(1, 5).all()
    assert not summary["degenerate"].any()
    assert (summary["protocol"] == "erbench-v1").all() and not summary["protocol_quick"].any()

"""Slow: the full erbench-v1 battery on a reference model, every image, every cell, in two worker
processes; every per-image row equals the committed results (the regression oracle)."""

from __future__ import annotations

import pytest
from conftest import HYPERPRIOR, ROOT

from erbench.engine.executors import Resources

from erbench.protocol import PROTOCOLS
from erbench.results import read_results
from erbench.runner import evaluate


@pytest.mark.slow
def test_full_battery_on_a_reference_model(tmp_path):
    proto = PROTOCOLS.get("erbench-v1")
    result = evaluate(HYPERPRIOR, tmp_path / "out", protocol="erbench-v1", cache_dir=tmp_path / "cache", progress=False,
                      executor="process", resources=Resources(jobs=2))
    summary, per_image = read_results(result.path)
    base = summary[summary["kind"] != "aggregate"]
    assert len(base) == len(proto.cells)
    assert (summary["n_images"] == 497).all() and len(per_image) == 497 * len(summary)  # worst-case rows too
    assert per_image["decode_ok"].all()
    corruptions = base[base["kind"] == "corruption"]
    assert len(corruptions) == 19 * 5 and corruptions["severity"].between(1, 5).all()
    assert not summary["degenerate"].any()
    assert (summary["protocol"] == "erbench-v1").all() and not summary["protocol_quick"].any()
    key = ["condition", "severity", "norm", "eps", "variant", "steps", "seed", "image_index"]
    _, committed = read_results(ROOT / "leaderboard" / "results" / HYPERPRIOR.stem)
    new, old = per_image.set_index(key).sort_index(), committed.set_index(key).sort_index()
    assert new.index.equals(old.index)
    l2 = (new.index.get_level_values("norm") == "l2") & new["kind"].isin(["attack", "aggregate"]).to_numpy() & \
        (new.index.get_level_values("condition") != "attack.noise")
    # identical on the machine that computed them; another CPU's convolution kernels round a few
    # attack iterates differently (today's run of digits_small_cnn_hp_b1e-4, old engine and new alike,
    # matched its committed rows on 99.91% of the rows outside L2 rate cells)
    for column in ("bits_coded", "pred"):
        assert (new.loc[~l2, column] == old.loc[~l2, column]).mean() >= 0.995, column
    # L2 rate attacks are not bit-reproducible before erbench-v2: their mean stays within the CI
    assert abs(new.loc[l2, "bits_coded"].mean() / old.loc[l2, "bits_coded"].mean() - 1) < 0.01

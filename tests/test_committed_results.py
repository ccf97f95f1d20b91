"""The results committed under leaderboard/results/: complete, full protocol, and still those of the
committed submissions (a retrained or edited entry whose results were not re-run fails here)."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from conftest import ROOT, SUBMISSIONS

from erbench.data.datasets import load_dataset
from erbench.leaderboard.aggregate import load
from erbench.protocol import PROTOCOLS
from erbench.spec import load_submission

RESULTS = ROOT / "leaderboard" / "results"
DIRS = sorted(p for p in RESULTS.iterdir() if p.is_dir()) if RESULTS.is_dir() else []
SPECS = {p.stem: p for p in SUBMISSIONS}


@pytest.fixture(scope="module")
def entries():
    return {e.id: e for e in load(RESULTS)}


@pytest.mark.parametrize("path", DIRS, ids=[p.name for p in DIRS])
def test_committed_results_match_their_submission(path, entries):
    assert path.name in SPECS, f"no submissions/**/{path.name}.yaml"
    sub = load_submission(SPECS[path.name])
    rows = pq.read_table(path / "summary.parquet").to_pandas()
    assert set(rows["weights_sha256"]) == {sub.weights.sha256}
    assert set(rows["defense"]) == {sub.defense.label() if sub.defense else "none"}
    assert set(rows["protocol"]) == {"erbench-v1"} and not rows["protocol_quick"].any()
    assert (rows["n_images"] == len(load_dataset(sub.dataset, "test"))).all()
    assert rows["decode_ok_all"].all() and not rows["git_sha"].str.endswith("-dirty").any()
    entry = entries[path.name]
    assert entry.row["complete"], entry.missing
    expected = len(PROTOCOLS.get("erbench-v1").cells_for(sub.defense is not None))
    assert (rows["kind"] != "aggregate").sum() == expected

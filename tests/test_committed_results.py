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

BOARDS = {"results": "erbench-v1", "results-v2": "erbench-v2"}  # leaderboard/README.md
DIRS = [(d, protocol) for board, protocol in BOARDS.items() if (ROOT / "leaderboard" / board).is_dir()
        for d in sorted(p for p in (ROOT / "leaderboard" / board).iterdir() if p.is_dir())]
SPECS = {p.stem: p for p in SUBMISSIONS}


@pytest.fixture(scope="module")
def entries():
    return {(board, e.id): e for board in BOARDS if (ROOT / "leaderboard" / board).is_dir()
            for e in load(ROOT / "leaderboard" / board)}


@pytest.mark.parametrize("path, protocol", DIRS, ids=[f"{p.parent.name}/{p.name}" for p, _ in DIRS])
def test_committed_results_match_their_submission(path, protocol, entries):
    assert path.name in SPECS, f"no submissions/**/{path.name}.yaml"
    sub = load_submission(SPECS[path.name])
    rows = pq.read_table(path / "summary.parquet").to_pandas()
    assert set(rows["weights_sha256"]) == {sub.weights.sha256}
    assert set(rows["defense"]) == {sub.defense.label() if sub.defense else "none"}
    assert set(rows["protocol"]) == {protocol} and not rows["protocol_quick"].any()
    assert (rows["n_images"] == len(load_dataset(sub.dataset, "test"))).all()
    assert rows["decode_ok_all"].all() and not rows["git_sha"].str.endswith("-dirty").any()
    entry = entries[(path.parent.name, path.name)]
    assert entry.row["complete"], entry.missing
    expected = len(PROTOCOLS.get(protocol).cells_for(sub.defense is not None))
    assert (rows["kind"] != "aggregate").sum() == expected


V2 = [(p, protocol) for p, protocol in DIRS if protocol == "erbench-v2"]


@pytest.mark.parametrize("path, protocol", V2, ids=[p.name for p, _ in V2])
def test_strong_is_the_strongest_rate_variant_in_the_committed_results(path, protocol):
    """On all test images, ``strong`` raises the coded size at least as much as every other rate
    PGD variant at every L-inf budget (tests/test_attacks.py recomputes it for entries without
    committed erbench-v2 results)."""
    rows = pq.read_table(path / "summary.parquet").to_pandas()
    rate = rows[(rows["condition"] == "attack.rate_pgd") & (rows["norm"] == "linf")]
    overhead = rate.pivot_table(index="eps", columns="variant", values="overhead")
    assert set(overhead.columns) == {"strong", "paper", "noise_y", "fgsm"} and len(overhead) == 5
    others = overhead.drop(columns="strong").max(axis=1)
    assert (overhead["strong"] >= others).all(), overhead

"""Every committed submission validates and evaluates end to end (parametrized over submissions/**)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT, SUBMISSIONS

from erbench.models.loader import load_model
from erbench.runner import evaluate
from erbench.spec import load_submission


def test_committed_tree_validates(run_cli):
    """Every committed YAML passes `erbench validate`: ids unique under submissions/, weights inside it."""
    code, out, err = run_cli("validate", ROOT / "submissions")
    assert code == 0 and not err and out.splitlines() == [f"ok {p}" for p in SUBMISSIONS], err


@pytest.mark.parametrize("path", SUBMISSIONS, ids=[p.stem for p in SUBMISSIONS])
def test_submission_validates_and_loads(path):
    sub = load_submission(path)
    model = load_model(sub, path)
    assert model.family == sub.entropy_model


@pytest.mark.parametrize("path", SUBMISSIONS, ids=[p.stem for p in SUBMISSIONS])
def test_submission_evaluates(path, tmp_path):
    result = evaluate(path, tmp_path, conditions=("corruption.snow", "corruption.glass_blur"), limit=48,
                      cache_dir=tmp_path / "cache", progress=False)
    s = result.summary
    assert list(s["condition"][:1]) == ["clean"] and len(s) == 11
    assert s["decode_ok_all"].all()
    clean = s.iloc[0]
    assert clean["overhead"] == 0 and clean["accuracy_delta"] == 0
    assert clean["accuracy"] > 0.8, "reference models decode to a sensible accuracy"
    assert not clean["degenerate"]
    # every summary number is recomputable from the per-image table
    snow5 = result.per_image.query("condition == 'corruption.snow' and severity == 5")
    clean_rows = result.per_image.query("condition == 'clean'")
    row = s.query("condition == 'corruption.snow' and severity == 5").iloc[0]
    assert row["bits_coded_mean"] == pytest.approx(snow5["bits_coded"].mean())
    assert row["overhead"] == pytest.approx(snow5["bits_coded"].mean() / clean_rows["bits_coded"].mean() - 1)
    assert row["accuracy"] == pytest.approx(np.mean(snow5["pred"].to_numpy() == snow5["label"].to_numpy()))
    assert (result.path / "summary.parquet").is_file() and (result.path / "per_image.parquet").is_file()

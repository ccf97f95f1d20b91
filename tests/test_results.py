"""The Parquet schema matches its documentation; writes are atomic; metrics match independent maths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import FACTORIZED

from erbench import results
from erbench.metrics import cell_metrics, degeneracy
from erbench.runner import evaluate

DOC = Path(__file__).resolve().parents[1] / "docs" / "results_schema.md"


def test_documentation_is_generated_from_the_schema():
    assert DOC.read_text() == results.schema_markdown() + "\n", "run: erbench schema --results > docs/results_schema.md"


def test_written_tables_follow_the_documented_schema(tmp_path):
    out = evaluate(FACTORIZED, tmp_path, conditions=("corruption.fog",), limit=8, progress=False)
    documented = {
        name: [row.split("|")[1].strip(" `") for row in section.splitlines() if row.startswith("| `")]
        for name, section in zip(["summary", "per_image"], DOC.read_text().split("## ")[1:])
    }
    for table, key in (("summary.parquet", "summary"), ("per_image.parquet", "per_image")):
        schema = pq.read_schema(out.path / table)
        assert schema.names == documented[key]
        assert schema.metadata[b"erbench_schema"] == results.SCHEMA_VERSION.encode()
    summary = pd.read_parquet(out.path / "summary.parquet")
    for column in ("git_sha", "weights_sha256", "manifest_sha256", "torch_version", "compressai_version", "device",
                   "created_utc", "erbench_version", "protocol"):
        assert summary[column].notna().all() and (summary[column] != "").all()


def test_interrupted_write_leaves_no_results(tmp_path, monkeypatch):
    summary = pd.DataFrame({"x": [1]})
    with pytest.raises(ValueError):
        results.write_results(tmp_path, "sub", summary, summary)
    assert list(tmp_path.iterdir()) == []

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    out = evaluate(FACTORIZED, None, conditions=("corruption.fog",), limit=4, progress=False)
    monkeypatch.setattr(results.pq, "write_table", boom)
    with pytest.raises(KeyboardInterrupt):
        results.write_results(tmp_path, "sub", out.summary, out.per_image)
    assert list(tmp_path.iterdir()) == []


def test_cell_metrics_against_direct_computation():
    rng = np.random.default_rng(1)
    clean_bits, bits = rng.integers(300, 400, 200), rng.integers(350, 500, 200)
    clean_ok, ok = rng.random(200) < 0.9, rng.random(200) < 0.7
    m = cell_metrics(bits, ok, clean_bits, clean_ok)
    assert m["overhead"] == pytest.approx(bits.sum() / clean_bits.sum() - 1)
    assert m["extra_bits"] == pytest.approx(bits.mean() - clean_bits.mean())
    assert m["accuracy_delta"] == pytest.approx(ok.mean() - clean_ok.mean())
    assert m["overhead_ci_low"] < m["overhead"] < m["overhead_ci_high"]
    assert m["accuracy_ci_low"] < m["accuracy"] < m["accuracy_ci_high"]
    # the CI width shrinks like 1/sqrt(n): compare with the normal approximation for accuracy
    width = m["accuracy_ci_high"] - m["accuracy_ci_low"]
    assert width == pytest.approx(2 * 1.96 * np.sqrt(ok.mean() * (1 - ok.mean()) / 200), rel=0.2)


def test_degenerate_models_are_flagged():
    assert degeneracy(0.11, 10, 128.0, 0.5, 2) is not None
    assert "near-chance" in degeneracy(0.12, 10, 900.0, 800.0, 1)
    assert "rate collapse" in degeneracy(0.95, 10, 64.0, 2.0, 1)
    assert degeneracy(0.97, 10, 330.0, 280.0, 1) is None


def test_printed_summary_names_budgets_in_their_units_and_averages_severities(tmp_path):
    from erbench.leaderboard.synthetic import synthetic_submission
    from erbench.report import summary_table

    synthetic_submission(tmp_path, "s", n_images=8)
    summary, _ = results.read_results(tmp_path / "s")
    text = summary_table(summary)
    assert "attack.rate_pgd l2 l2 eps=0.5 " in text and "attack.rate_pgd paper linf eps=8/255 " in text
    assert not any("/255" in line for line in text.splitlines() if " l2 eps=" in line)
    snow = summary[summary["condition"] == "corruption.snow"]
    row = next(line for line in text.splitlines() if line.strip().startswith("corruption.snow ")).split()
    assert row[1] == "5" and f"{snow['bits_coded_mean'].mean():.0f}" in row and f"{snow['overhead'].max():+.1%}" in row

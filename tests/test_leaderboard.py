"""The leaderboard: aggregation rules (completeness, CIs, order), rendering, determinism, the CLI."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import yaml

from erbench.conditions import Cell
from erbench.errors import ErbenchError
from erbench.leaderboard import figures
from erbench.leaderboard.aggregate import (CORRUPTION_CELLS, HEADLINE_EPS, WORST_RATE, load, rank_key, records,
                                         summarize)
from erbench.leaderboard import boards
from erbench.leaderboard.site import MARKER, beta, board_columns, build, ci, pct, render, sort_value
from erbench.leaderboard.synthetic import synthetic_submission
from erbench.protocol import PROTOCOLS
from erbench.results import read_results

N_IMAGES = 16


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Four synthetic submissions: two complete, one without the worst-case rows, one without fog."""
    root = tmp_path_factory.mktemp("results")
    synthetic_submission(root, "complete_fp", n_images=N_IMAGES, seed=0)
    synthetic_submission(root, "complete_hp", n_images=N_IMAGES, seed=1)
    synthetic_submission(root, "no_worst", n_images=N_IMAGES, seed=2, drop=(WORST_RATE,))
    synthetic_submission(root, "no_fog", n_images=N_IMAGES, seed=3, drop=("corruption.fog",))
    return root


@pytest.fixture(scope="module")
def entries(results):
    return {e.id: e for e in load(results)}


def _headline_row(summary: pd.DataFrame) -> pd.Series:
    hit = summary[(summary["condition"] == WORST_RATE) & (summary["norm"] == "linf")
                  & np.isclose(summary["eps"], HEADLINE_EPS)]
    assert len(hit) == 1
    return hit.iloc[0]


def test_complete_entry_reads_its_rows(results, entries):
    summary, _ = read_results(results / "complete_fp")
    row = entries["complete_fp"].row
    clean = summary[summary["condition"] == "clean"].iloc[0]
    worst = _headline_row(summary)
    corr = summary[summary["kind"] == "corruption"]
    assert row["complete"] and row["n_missing"] == 0 and entries["complete_fp"].missing == []
    assert row["clean_accuracy"] == clean["accuracy"] and row["clean_bits_coded_mean"] == clean["bits_coded_mean"]
    assert row["worst_overhead"] == worst["overhead"]
    assert (row["worst_overhead_ci_low"], row["worst_overhead_ci_high"]) == (worst["overhead_ci_low"],
                                                                            worst["overhead_ci_high"])
    assert len(corr) == len(CORRUPTION_CELLS) == 95
    assert row["corruption_overhead"] == pytest.approx(corr["overhead"].mean(), abs=1e-12)
    assert row["corruption_accuracy_delta"] == pytest.approx(corr["accuracy_delta"].mean(), abs=1e-12)
    assert row["defense"] == "none"
    assert len(entries["complete_fp"].clean_bits) == len(entries["complete_fp"].worst_bits) == N_IMAGES


def test_missing_worst_case_row_is_incomplete_not_filled(entries):
    e = entries["no_worst"]
    assert not e.row["complete"] and e.missing == ["attack.worst_rate [L∞ 8/255]"]
    assert math.isnan(e.row["worst_overhead"]) and math.isnan(e.row["worst_overhead_ci_low"])
    assert not math.isnan(e.row["corruption_overhead"])  # independent aggregate still complete
    assert len(e.worst_bits) == 0


def test_missing_corruption_cells_are_never_averaged(entries):
    e = entries["no_fog"]
    assert not e.row["complete"] and e.row["n_missing"] == 5
    assert e.missing == [f"corruption.fog [severity {s}]" for s in range(1, 6)]
    for key in ("corruption_overhead", "corruption_overhead_ci_low", "corruption_accuracy_delta",
                "corruption_accuracy_delta_ci_high"):
        assert math.isnan(e.row[key]), key
    assert not math.isnan(e.row["worst_overhead"])


def test_protocol_cells_are_required_too(results):
    summary, images = read_results(results / "complete_fp")
    assert summarize("x", records(summary), images).row["complete"]
    extra = Cell("attack.rate_pgd", norm="linf", eps=32 / 255, variant="paper", steps=50)
    e = summarize("x", records(summary), images, protocol_cells=(Cell("clean"), extra))
    assert not e.row["complete"] and e.missing == ["attack.rate_pgd [L∞ 32/255 · paper · 50 steps]"]


def test_pre_rendered_corruptions_never_complete_a_rendered_protocol(results):
    """Corruption cells from CIFAR-10-C are other cells than erbench's rendered ones: the entry is
    incomplete (each missing rendered cell named), not ranked with rendered entries."""
    summary, images = read_results(results / "complete_fp")
    cells = records(summary)
    protocol = PROTOCOLS.get(cells[0]["protocol"]).cells
    assert summarize("x", cells, images, protocol).row["complete"]
    for c in cells:
        if c["condition"] == "corruption.fog":
            c["corruption_source"] = "CIFAR-10-C"
    e = summarize("x", cells, images, protocol)
    assert not e.row["complete"] and e.missing == [f"corruption.fog [severity {s}]" for s in range(1, 6)]


def test_noop_corruption_cells_are_excluded_from_the_corruption_mean(results):
    """Cells flagged noop (every image unchanged) leave the mean and its CI; results written before
    schema 2 (no noop column) are flagged by a zero maximal perturbation."""
    summary, images = read_results(results / "complete_fp")
    noop = (summary["condition"] == "corruption.saturate") & (summary["severity"] <= 3)
    counted = summary[(summary["kind"] == "corruption") & ~noop]
    for flagged in (summary.assign(noop=noop),
                    summary.drop(columns="noop").assign(perturbation_linf_max=summary["perturbation_linf_max"].where(~noop, 0.0))):
        row = summarize("x", records(flagged), images).row
        assert row["corruption_noop_cells"] == 3 and len(counted) == 92
        assert row["corruption_overhead"] == pytest.approx(counted["overhead"].mean(), abs=1e-12)
        assert row["corruption_accuracy_delta"] == pytest.approx(counted["accuracy_delta"].mean(), abs=1e-12)
        # the CI is the bootstrap of the per-image mean over the 92 counted cells: it brackets the mean
        assert row["corruption_overhead_ci_low"] <= row["corruption_overhead"] <= row["corruption_overhead_ci_high"]
    all_cells = summarize("x", records(summary), images).row
    assert all_cells["corruption_noop_cells"] == 0
    assert all_cells["corruption_overhead_ci_low"] != row["corruption_overhead_ci_low"]


def test_ambiguous_required_cell_is_an_error(results):
    summary, images = read_results(results / "complete_fp")
    twice = pd.concat([summary, summary[summary["condition"] == "clean"].assign(seed=1)], ignore_index=True)
    with pytest.raises(ErbenchError, match="2 rows match the required cell clean"):
        summarize("x", records(twice), images)


def test_corruption_ci_is_a_paired_bootstrap_of_the_mean(results, entries):
    row = entries["complete_hp"].row
    assert row["corruption_overhead_ci_low"] < row["corruption_overhead"] < row["corruption_overhead_ci_high"]
    assert row["corruption_accuracy_delta_ci_low"] <= row["corruption_accuracy_delta"] \
        <= row["corruption_accuracy_delta_ci_high"]
    # without the per-image rows of one cell the CI cannot be formed: empty, point estimate kept
    summary, images = read_results(results / "complete_hp")
    cut = images[~((images["condition"] == "corruption.snow") & (images["severity"] == 3))]
    e = summarize("x", records(summary), cut)
    assert e.row["corruption_overhead"] == row["corruption_overhead"]
    assert math.isnan(e.row["corruption_overhead_ci_low"]) and math.isnan(e.row["corruption_overhead_ci_high"])


def test_defense_column_is_shown_when_present(results):
    summary, images = read_results(results / "complete_fp")
    label = "likelihood_tv(weight=0.05,iterations=100,step=0.25,object_weight=0.1)"
    e = summarize("x", records(summary.assign(defense=label)), images)
    assert e.row["defense"] == label
    html = render([e])["index.html"]
    assert f'data-v="likelihood_tv" title="{label}">likelihood_tv</td>' in html  # one filter option per name
    assert "<option>likelihood_tv</option>" in html and f"<option>{label}</option>" not in html
    assert summarize("x", records(summary.drop(columns="defense", errors="ignore")), images).row["defense"] == "none"


def _row(id, complete=True, degenerate=False, worst=0.1, corr=0.1):
    return {"id": id, "complete": complete, "degenerate": degenerate, "worst_overhead": worst,
            "corruption_overhead": corr}


def test_rank_key_orders_complete_then_incomplete_then_degenerate():
    rows = [_row("deg", degenerate=True, worst=0.0), _row("inc", complete=False, worst=0.0),
            _row("b", worst=0.2), _row("a", worst=0.2), _row("nan", worst=float("nan")),
            _row("best", worst=0.05, corr=0.9), _row("tie", worst=0.05, corr=0.1)]
    assert [r["id"] for r in sorted(rows, key=rank_key)] == ["tie", "best", "a", "b", "nan", "inc", "deg"]


def test_load_returns_default_order(entries):
    assert list(entries) == sorted(entries, key=lambda i: rank_key(entries[i].row))
    assert [e for e in entries if not entries[e].row["complete"]] == list(entries)[-2:]


def test_sort_values():
    assert sort_value(float("nan")) == "" and sort_value(None) == ""
    assert sort_value(0.1) == "0.1" and sort_value(3) == "3.0" and float(sort_value(1e-5)) == 1e-5


def test_figures_are_valid_plotly(entries):
    e = entries["complete_hp"]
    specs = [figures.rate_accuracy([x.row for x in entries.values()]), figures.bits_distribution(e.clean_bits,
                                                                                                 e.worst_bits)]
    specs += [figures.attack_curves(e.cells, n, m) for n in ("linf", "l2") for m in ("overhead", "accuracy")]
    specs += [figures.corruption_heatmap(e.cells, m) for m in ("overhead", "accuracy")]
    for spec in specs:
        go.Figure(spec)  # raises on an invalid property
    heat = figures.corruption_heatmap(entries["no_fog"].cells, "overhead")["data"][0]
    assert heat["z"][list(heat["y"]).index("fog")] == [None] * 5


def test_index_page_has_one_cell_per_column(entries):
    html = render(list(entries.values()))["index.html"]
    body = html.split('<tbody data-group="main">')[1].split("</tbody>")[0]
    first = body.split("</tr>")[0]
    n = len(board_columns(boards.BOARDS[0]))
    assert first.count("<td") == n == html.split("</thead>")[0].count("<th ")
    assert html.count('class="incomplete') == 2 and "—" in html


def test_build_is_byte_identical(results, tmp_path):
    build(results, tmp_path / "a")
    build(results, tmp_path / "b")
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    names = {str(p) for p in files_a}
    assert {"index.html", "protocol.html", "s/no_fog.html", "static/plotly.min.js", "static/favicon.svg"} <= names
    assert "cdn" not in (tmp_path / "a" / "index.html").read_text().lower()


def test_metadata_is_escaped_and_unsafe_links_dropped(results, tmp_path):
    subs = tmp_path / "submissions"
    subs.mkdir()
    spec = {"id": "complete_fp", "title": "<script>alert(1)</script>", "authors": ["A <b>B</b>"], "license": "MIT",
            "paper": "javascript:alert(1)", "dataset": "digits", "model": {"architecture": "small_cnn_factorized"},
            "entropy_model": "factorized", "beta": 0.001, "weights": {"file": "w.safetensors", "sha256": "1" * 64}}
    (subs / "complete_fp.yaml").write_text(yaml.safe_dump(spec))
    build(results, tmp_path / "site", subs)
    page = (tmp_path / "site" / "s" / "complete_fp.html").read_text()
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'href="javascript' not in page and "A &lt;b&gt;B&lt;/b&gt;" in page
    assert "differs from the YAML" in page  # the synthetic weights hash is not the YAML's
    index = (tmp_path / "site" / "index.html").read_text()
    assert "&lt;script&gt;" in index and "<script>alert" not in index


def test_build_refuses_a_foreign_directory(results, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(ErbenchError, match="not a leaderboard build"):
        build(results, out)
    assert (out / "notes.txt").read_text() == "keep me"
    build(results, tmp_path / "site")
    assert (tmp_path / "site" / MARKER).exists()
    build(results, tmp_path / "site")  # an earlier build is replaced


def test_cli_build(results, tmp_path, run_cli):
    code, out, err = run_cli("leaderboard", "build", "--results", results, "--out", tmp_path / "site",
                             "--submissions", tmp_path / "none")
    assert code == 0, err
    assert re.search(r"4 submissions \(2 complete\) -> .*index\.html", out)
    code, _, err = run_cli("leaderboard", "build", "--results", tmp_path / "absent", "--out", tmp_path / "x")
    assert code == 2 and "results directory not found" in err and len(err.strip().splitlines()) == 1


def test_empty_results_still_build(tmp_path):
    (tmp_path / "results").mkdir()
    assert build(tmp_path / "results", tmp_path / "site") == []
    assert "No results yet" in (tmp_path / "site" / "index.html").read_text()
    assert (tmp_path / "site" / "protocol.html").exists()


def test_degenerate_and_quick_entries_are_labelled(results):
    summary, images = read_results(results / "complete_hp")
    flagged = summary.assign(degenerate=True, degenerate_reason="near-chance clean accuracy 0.100",
                             protocol_quick=True)
    e = summarize("x", records(flagged), images)
    html = render([e])["index.html"]
    assert e.row["degenerate"] and e.row["degenerate_reason"].startswith("near-chance")
    assert "degenerate</span>" in html and "quick protocol</span>" in html
    assert "must not be read as robustness" in render([e])["s/x.html"]


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_markdown_table_reads_the_summary_rows(results, run_cli):
    code, out, err = run_cli("leaderboard", "table", "--results", results)
    assert code == 0, err
    summary, _ = read_results(results / "complete_hp")
    rows = [_cells(line) for line in out.splitlines() if line.startswith("| complete_hp |")]
    assert len(rows) == 3  # headline, overhead per budget, accuracy delta per budget
    worst = summary[summary["condition"] == WORST_RATE].sort_values(["norm", "eps"], ascending=[False, True])
    assert len(worst) == 10  # erbench-v2: 5 L-inf and 5 L2 budgets
    assert rows[1][1:] == [f"{100 * r.overhead:+.1f}% [{100 * r.overhead_ci_low:+.1f}, {100 * r.overhead_ci_high:+.1f}]"
                           for r in worst.itertuples()]
    assert rows[2][1:] == [f"{r.accuracy_delta:+.3f} [{r.accuracy_delta_ci_low:+.3f}, {r.accuracy_delta_ci_high:+.3f}]"
                           for r in worst.itertuples()]
    no_fog = next(_cells(line) for line in out.splitlines() if line.startswith("| no_fog"))
    assert no_fog[0].startswith("no_fog (incomplete: 5 cells missing")
    assert no_fog[6:8] == ["—", "—"]  # the mean corruption overhead and its delta are never partial


def test_attack_tables_read_every_attack_row(results, run_cli):
    code, out, err = run_cli("leaderboard", "table", "--results", results, "--attacks", "complete_fp")
    assert code == 0, err
    summary, _ = read_results(results / "complete_fp")
    rows = [_cells(line) for line in out.splitlines() if line.startswith("| rate_pgd paper |")]
    assert len(rows) == 2  # overhead and accuracy delta, L-inf only
    paper = summary[(summary["condition"] == "attack.rate_pgd") & (summary["variant"] == "paper")].sort_values("eps")
    assert rows[0][1:] == [f"{100 * r.overhead:+.1f}% [{100 * r.overhead_ci_low:+.1f}, {100 * r.overhead_ci_high:+.1f}]"
                           for r in paper.itertuples()]
    code, _, err = run_cli("leaderboard", "table", "--results", results, "--attacks", "complete_fq")
    assert code == 2 and "did you mean 'complete_fp'" in err and len(err.strip().splitlines()) == 1


def test_corruption_tables_average_the_five_severities(results, run_cli):
    code, out, err = run_cli("leaderboard", "table", "--results", results, "--corruptions")
    assert code == 0, err
    summary, _ = read_results(results / "complete_fp")
    means = summary[summary["kind"] == "corruption"].groupby("condition")[["overhead", "accuracy"]].mean()
    names = _cells(next(line for line in out.splitlines() if line.startswith("| entry |")))[1:]
    rows = [_cells(line) for line in out.splitlines() if line.startswith("| complete_fp |")]
    assert len(rows) == 2  # overhead, accuracy
    assert rows[0][1:] == [f"{means.loc[f'corruption.{n}', 'overhead']:+.0%}" for n in names]
    assert rows[1][1:] == [f"{means.loc[f'corruption.{n}', 'accuracy']:.2f}" for n in names]
    no_fog = [_cells(line) for line in out.splitlines() if line.startswith("| no_fog")]
    assert all(r[1 + names.index("fog")] == "—" for r in no_fog)  # never a mean over fewer severities
    assert all(r[1 + names.index("snow")] != "—" for r in no_fog)
    code, out, err = run_cli("leaderboard", "table", "--results", results, "--corruptions", "--attacks", "complete_fp")
    assert code == 2 and "--corruptions" in err and len(err.strip().splitlines()) == 1 and not out


# --- boards, groups, formatting, downloads -----------------------------------------------------------------


@pytest.fixture(scope="module")
def board_results(tmp_path_factory):
    """erbench-v2: two undefended entries, a defended one on entry a's weights under an unrelated name, a defended
    one without a base, a quick-protocol entry; and an erbench-v1 directory (no black-box cells)."""
    root = tmp_path_factory.mktemp("boards")
    tv = "likelihood_tv(weight=0.1,iterations=100,step=0.25,object_weight=0.1)"
    synthetic_submission(root / "v2", "a", n_images=N_IMAGES, seed=0, created="2026-02-03T04:05:06+00:00")
    synthetic_submission(root / "v2", "b", n_images=N_IMAGES, seed=1)
    synthetic_submission(root / "v2", "guarded", n_images=N_IMAGES, seed=5, weights_seed=0, defense=tv)
    synthetic_submission(root / "v2", "b_tv", n_images=N_IMAGES, seed=6, defense=tv)
    synthetic_submission(root / "v2", "q", n_images=N_IMAGES, seed=2, protocol="erbench-v2-quick")
    synthetic_submission(root / "v1", "old", n_images=N_IMAGES, seed=0, protocol="erbench-v1")
    return root


def test_defended_and_quick_entries_never_share_a_ranking(board_results):
    rows = [e.row for e in load(board_results / "v2")]
    by_id = {r["id"]: r for r in rows}
    assert by_id["guarded"]["base"] == "a"  # same weights sha256, found from the data, not the name
    assert by_id["b_tv"]["base"] is None and by_id["a"]["base"] is None
    for board in boards.BOARDS:
        groups = {g: [r["id"] for r in rs] for g, _, rs in boards.ranked(board, rows)}
        assert sorted(groups["main"]) == ["a", "b"] and sorted(groups["defended"]) == ["b_tv", "guarded"]
        assert groups["quick"] == ["q"]
        for g, _, rs in boards.ranked(board, rows):
            assert [r["rank"] for r in rs] == list(range(1, len(rs) + 1))
            values = [board.value(r) for r in rs]
            assert values == sorted(values, reverse=board.better == "higher")


def test_each_board_ranks_its_own_metric(board_results):
    rows = [e.row for e in load(board_results / "v2")]
    summary, _ = read_results(board_results / "v2" / "a")
    a = next(r for r in rows if r["id"] == "a")
    for condition, prefix in (("attack.ce_pgd", "ce_"), ("attack.blackbox_rate", "blackbox_")):
        hit = summary[(summary["condition"] == condition) & np.isclose(summary["eps"], HEADLINE_EPS)].iloc[0]
        for col in ("accuracy", "accuracy_ci_low", "overhead", "overhead_ci_high", "extra_bits"):
            assert a[prefix + col] == hit[col], (condition, col)
    assert a["worst_extra_bits"] == _headline_row(summary)["extra_bits"]
    assert [b.key for b in boards.shown(boards.BOARDS, rows)] == ["whitebox", "blackbox", "corruptions",
                                                                    "classification"]
    old = [e.row for e in load(board_results / "v1")]
    assert "blackbox" not in [b.key for b in boards.shown(boards.BOARDS, old)]


def test_entry_page_has_a_black_box_card_when_the_protocol_has_the_attack(board_results, tmp_path):
    summary, _ = read_results(board_results / "v2" / "a")
    hit = summary[(summary["condition"] == "attack.blackbox_rate") & np.isclose(summary["eps"], HEADLINE_EPS)].iloc[0]
    build(board_results / "v2", tmp_path / "v2")
    page = (tmp_path / "v2" / "s" / "a.html").read_text()
    card = page[page.index("black-box rate attack, "):].split("</div>")[0]
    low, high = (f"{hit[c] * 100:+.1f}%" for c in ("overhead_ci_low", "overhead_ci_high"))
    assert f"<b>{hit['overhead']:+.1%}</b>" in card and f"[{low}, {high}]" in card
    build(board_results / "v1", tmp_path / "v1")
    assert "black-box rate attack, " not in (tmp_path / "v1" / "s" / "old.html").read_text()


def test_corruption_inflation_counts_a_falling_rate_as_zero(board_results):
    summary, images = read_results(board_results / "v2" / "a")
    blur = (summary["condition"] == "corruption.gaussian_blur")
    summary = summary.assign(overhead=summary["overhead"].where(~blur, -0.5))  # the rate collapses under blur
    row = summarize("a", records(summary), images).row
    corr = summary[summary["kind"] == "corruption"]
    assert row["corruption_inflation"] == pytest.approx(corr["overhead"].clip(lower=0).mean(), abs=1e-12)
    assert row["corruption_overhead"] < row["corruption_inflation"]


def test_corruption_inflation_ci_is_the_bootstrap_of_its_statistic(board_results):
    """Against a direct loop over the per-cell CIs' resamples (metrics.cell_metrics' generator)."""
    from erbench.metrics import BOOTSTRAP_SAMPLES, BOOTSTRAP_SEED

    summary, images = read_results(board_results / "v2" / "b")
    row = summarize("b", records(summary), images).row
    images = images.sort_values("image_index")
    clean = images[images["condition"] == "clean"]["bits_coded"].to_numpy(float)
    cells = [images[(images["condition"] == c) & (images["severity"] == s)]["bits_coded"].to_numpy(float)
             for c, s in summary[summary["kind"] == "corruption"][["condition", "severity"]].itertuples(index=False)]
    idx = np.random.default_rng(BOOTSTRAP_SEED).integers(0, len(clean), size=(BOOTSTRAP_SAMPLES, len(clean)))
    stats = [np.mean([max(0.0, b[i].mean() / clean[i].mean() - 1) for b in cells]) for i in idx]
    low, high = np.quantile(stats, [0.025, 0.975])
    assert (row["corruption_inflation_ci_low"], row["corruption_inflation_ci_high"]) == pytest.approx((low, high),
                                                                                                      abs=1e-12)


def test_family_summary_is_computed_from_the_rows():
    board = boards.BOARDS[0]
    rows = [{"id": f"{f}{i}", "entropy_model": f, "worst_overhead": v, "complete": True, "degenerate": False,
             "protocol_quick": False, "defense": "none", "protocol": "p"}
            for f, vs in (("factorized", (0.01, 0.03, 0.05)), ("hyperprior", (0.04, 0.5, 0.7))) for i, v in enumerate(vs)]
    text = boards.family_summary(board, rows, pct)
    assert text == ("Factorized entries are the most resilient on this board: median +3.0% vs. +50.0% for "
                    "hyperprior; ranks 1–2 are all factorized.")
    assert boards.family_summary(board, rows[:3], pct) is None  # one family: nothing to compare


def test_numbers_are_printed_one_way():
    assert pct(-0.00001) == "0.0%" and pct(0.123) == "+12.3%" and ci(-0.0001, 0.02) == "[0.0%, +2.0%]"
    assert ci(0.01, 0.02) == "[+1.0%, +2.0%]"
    assert [beta(b) for b in (1e-4, 3e-5, 1e-3, 1.5e-3, 0.0001)] == ["1e-4", "3e-5", "1e-3", "1.5e-3", "1e-4"]


def test_heatmap_colour_scale_stops_at_minus_100_percent(entries):
    cells = [{**c, "overhead": -0.99} if c["kind"] == "corruption" and c["severity"] == 5 else c
             for c in entries["complete_fp"].cells]
    cells = [{**c, "overhead": 2.9} if c["condition"] == "corruption.fog" else c for c in cells]
    heat = figures.corruption_heatmap(cells, "overhead")["data"][0]
    assert heat["zmin"] == -1.0 and heat["zmax"] == pytest.approx(2.9)


def test_downloads_and_dates(board_results, tmp_path, monkeypatch):
    site = tmp_path / "site"
    build(board_results / "v2", site, repo_url="https://example.org/erbench")
    for sid in ("a", "guarded"):
        for name in ("summary.parquet", "per_image.parquet"):
            assert (site / "data" / sid / name).read_bytes() == (board_results / "v2" / sid / name).read_bytes()
        csv = pd.read_csv(site / "data" / sid / "summary.csv")
        assert len(csv) == len(read_results(board_results / "v2" / sid)[0])
    board = pd.read_csv(site / "data" / "leaderboard.csv")
    assert sorted(board["id"]) == ["a", "b", "b_tv", "guarded", "q"]
    assert len(pd.read_parquet(site / "data" / "summary.parquet")) == len(pd.read_csv(site / "data" / "summary.csv"))
    index = (site / "index.html").read_text()
    assert "built 2026-02-03" in index  # the newest result's date, not the clock
    assert 'href="https://example.org/erbench"' in index and "submit.html" in index
    assert "2026-02-03</td>" in index and "Zhang" in (site / "data.html").read_text()
    build(board_results / "v2", site, date="2027-05-06")
    assert "built 2027-05-06" in (site / "index.html").read_text()
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    build(board_results / "v2", site)
    assert "built 2023-11-14" in (site / "index.html").read_text()
    with pytest.raises(ErbenchError, match="not a date"):
        build(board_results / "v2", site, date="May 6")


def test_submit_page_renders_the_guide_escaped(board_results, tmp_path):
    guide = tmp_path / "CONTRIBUTING.md"
    guide.write_text("# Contributing\n\n1. Run `erbench check`.\n2. See [the docs](docs/engine.md).\n\n<script>x</script>\n")
    build(board_results / "v1", tmp_path / "site", repo_url="https://example.org/r", guide=guide)
    page = (tmp_path / "site" / "submit.html").read_text()
    assert "<code>erbench check</code>" in page and 'href="https://example.org/r/blob/main/docs/engine.md"' in page
    assert "<script>x</script>" not in page and "&lt;script&gt;" in page
    assert 'href="https://example.org/r/blob/main/CONTRIBUTING.md"' in page
    assert not (tmp_path / "site" / "blackbox.html").exists()  # erbench-v1 has no black-box cells


def test_bits_histogram_has_a_quantile_table(entries):
    """The per-image bits histogram's text alternative: each series' quantiles, against numpy's
    percentile of the same per-image rows."""
    e = entries["complete_fp"]
    head, rows = figures.data_table(figures.bits_distribution(e.clean_bits, e.worst_bits))
    assert head == ["series", "images", "min", "10%", "25%", "50%", "75%", "90%", "max"]
    for row, values in zip(rows, (e.clean_bits, e.worst_bits)):
        assert row[1] == str(len(values))
        assert row[5] == f"{float(np.percentile(values, 50)):,.4g}" and row[8] == f"{float(values.max()):,.4g}"

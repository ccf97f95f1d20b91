"""Aggregation: the results tables -> one index row per submission, its completeness, its details.

The site shows only columns of the results tables and the aggregates computed here; ``RULES`` is
the printed form of this module and appears on the protocol page.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from erbench.cells import RENDERED, Cell
from erbench.conditions.catalog import CORRUPTIONS, SEVERITIES
from erbench.errors import ErbenchError
from erbench.metrics import BOOTSTRAP_SAMPLES, BOOTSTRAP_SEED, CI_LEVEL, cell_metrics
from erbench.protocol import PROTOCOLS, WORST_RATE
from erbench.results import PER_IMAGE_FILE, SUMMARY_FILE

HEADLINE_NORM, HEADLINE_EPS = "linf", 8 / 255  # the headline attack budget
HEADLINE = f"L∞ ε = {HEADLINE_EPS * 255:g}/255"
CLEAN = Cell("clean")
WORST = Cell(WORST_RATE, norm=HEADLINE_NORM, eps=HEADLINE_EPS)
CE = Cell("attack.ce_pgd", norm=HEADLINE_NORM, eps=HEADLINE_EPS)  # the classification attack, headline budget
BLACKBOX = Cell("attack.blackbox_rate", norm=HEADLINE_NORM, eps=HEADLINE_EPS)  # erbench-v2 on
CORRUPTION_CELLS = tuple(Cell(f"corruption.{c}", severity=s) for c in CORRUPTIONS for s in SEVERITIES)
REQUIRED = (CLEAN, WORST, *CORRUPTION_CELLS)
# corruption_source is part of a cell: rendered and pre-rendered corruptions never stand in for each other
KEY = ["condition", "severity", "norm", "eps", "variant", "steps", "seed", "corruption_source"]
KIND_ORDER = {"clean": 0, "aggregate": 1, "attack": 2, "corruption": 3}
IMAGE_COLUMNS = ["condition", "kind", "severity", "norm", "eps", "image_index", "bits_coded", "correct"]

RULES = (
    "Every number is computed from real coded bits (bytes written by the range coder × 8, all latents "
    "including the hyper-latent), never from estimated bits.",
    "Clean accuracy and clean coded bits per image are read from the 'clean' cell.",
    "Extra bits per image = mean coded bits - clean mean coded bits, read from the row's extra_bits column "
    "(the results table holds no CI for it: the overhead's CI is the one to read).",
    f"Worst-case rate overhead is read from the '{WORST_RATE}' row at the headline budget {HEADLINE}: "
    "per image, the worst of all rate attacks at that ε. Overhead = mean coded bits / clean mean coded bits - 1; "
    "its CI and the accuracy delta under that attack come from the same row.",
    f"The classification attack (attack.ce_pgd, untargeted cross-entropy PGD) is read at {HEADLINE}: its accuracy "
    "and CI are the row's; higher is better. The black-box rate attack (attack.blackbox_rate, erbench-v2 on) is read "
    f"at {HEADLINE} likewise; lower is better.",
    f"Mean corruption overhead is the equal-weight mean of the overhead of the {len(CORRUPTIONS)} corruptions × "
    f"{len(SEVERITIES)} severities ({len(CORRUPTION_CELLS)} cells) minus the no-op cells, those that left every "
    "image unchanged (e.g. saturate at severities 1-3 on the grey digits images: their zero overhead would only "
    "dilute the mean; the rows are flagged 'noop' and the entry page counts them); the mean corruption accuracy "
    "delta likewise. "
    f"Their {CI_LEVEL:.0%} CIs come from a paired bootstrap over images ({BOOTSTRAP_SAMPLES} resamples, the "
    "per-cell CIs' seed) of the same statistic: per image, the mean over the cells of its coded bits and correctness "
    "against its clean values (all cells share the clean images, so this equals the mean of the cells' overheads).",
    "Corruptions are ranked on the corruption rate inflation, the mean over the same cells of max(0, overhead): "
    "a corruption that lowers the rate (a blur that wipes out detail) counts as zero, never as a gain, because a "
    "collapsing rate is information lost, not resilience; its accuracy cost shows in the accuracy delta. The signed "
    "mean is shown beside it. Its CI: the same bootstrap resamples, with each cell's overhead recomputed per resample "
    "before the positive part is taken.",
    "The worst corruption is the corruption cell (no-op cells excluded) with the most extra bits per image, read from "
    "its row's extra_bits (the first in corruption × severity order on ties); the cost view prices it, the worst "
    "rate attack's and, where the protocol has it, the black-box attack's extra bits on named uplinks. Its cell is left empty when a corruption cell is missing.",
    f"Required cells: clean, {WORST_RATE} at {HEADLINE}, all {len(CORRUPTION_CELLS)} corruption cells, and every "
    "cell of the protocol the entry was run under. An entry missing one is marked incomplete, and each aggregate "
    "that needs a missing cell is left empty: nothing is averaged over the cells that happen to exist.",
    "Each board ranks on one metric in its stated direction, within groups that never share a ranking: undefended "
    "entries of the full protocol; defended entries (defense != 'none'), each linked to its base entry, the "
    "undefended entry with the same weights sha256 and protocol; quick-protocol entries; incomplete entries and "
    "degenerate models are listed unranked. Within a group ties and empty values are broken by id, empty values last.",
    "A board's family summary compares the median of its metric per entropy-model family over the ranked "
    "undefended full-protocol entries and names the longest run of one family from rank 1.",
    "A degenerate model (near-chance accuracy or a collapsed rate) looks immune to entropy attacks: its numbers "
    "are shown but must never be read as robustness.",
    "Results of a quick protocol (fewer images and iterations, for smoke tests) are labelled and are not "
    "comparable with the full protocol; entries of different protocol versions are not comparable either.",
)


def _none(v):
    return None if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else v


def cell_key(condition, severity=None, norm=None, eps=None, variant=None, steps=None, seed=0,
             corruption_source=None) -> tuple:
    """Hashable identity of a cell: NaN -> None, eps rounded to 1e-6."""
    severity, eps, steps = _none(severity), _none(eps), _none(steps)
    return (condition, None if severity is None else int(severity), _none(norm),
            None if eps is None else round(float(eps), 6), _none(variant),
            None if steps is None else int(steps), int(seed), _none(corruption_source))


def param_text(severity=None, norm=None, eps=None, variant=None, steps=None, seed=0) -> str:
    """Parameters for people, e.g. 'L∞ 8/255 · paper · 50 steps' or 'severity 3'."""
    severity, norm, eps, variant, steps = map(_none, (severity, norm, eps, variant, steps))
    out = [] if eps is None else [f"L∞ {eps * 255:g}/255" if norm == "linf" else f"{str(norm).upper()} {eps:g}"]
    out += [] if variant is None else [str(variant)]
    out += [] if severity is None else [f"severity {severity:g}"]
    out += [] if steps is None else [f"{steps:g} step" + "s" * (steps != 1)]
    out += [f"seed {seed}"] if seed else []
    return " · ".join(out)


def label(cell: Cell) -> str:
    text = param_text(cell.severity, cell.norm, cell.eps, cell.variant, cell.steps, cell.seed)
    if cell.corruption_source not in (None, RENDERED):
        text += f" · {cell.corruption_source}"
    return cell.condition + (f" [{text}]" if text else "")


@cache
def full_key(cell: Cell) -> tuple:
    return cell_key(*(getattr(cell, f) for f in KEY))


def headline_key(cell: Cell) -> tuple:
    """What a required cell is matched on: condition, severity, norm, eps (any variant, steps, seed)."""
    return full_key(cell)[:4]


@dataclass
class Entry:
    """One submission: summary rows in display order, the index row, missing cells, per-image coded bits."""

    id: str
    cells: list[dict]  # summary rows as plain values (NaN -> None)
    row: dict
    missing: list[str]
    clean_bits: np.ndarray
    worst_bits: np.ndarray  # per image under the headline worst-case row (empty without per-image rows)


def _order(cell: dict) -> tuple:
    """Clean, worst-case rows, attacks, corruptions; then by condition and parameters (None first)."""
    return (KIND_ORDER.get(cell["kind"], len(KIND_ORDER)),
            *((cell.get(k) is not None, cell.get(k) if cell.get(k) is not None else 0) for k in KEY))


def records(summary: pd.DataFrame) -> list[dict]:
    """Summary rows as dicts of plain values (NaN -> None) in display order."""
    return sorted(({k: _none(v) for k, v in r.items()} for r in summary.to_dict("records")), key=_order)


def is_noop(cell: dict) -> bool:
    """The cell left every image unchanged (its ``noop`` column; derived from the perturbation for
    results written before schema 2)."""
    if cell.get("noop") is not None:
        return bool(cell["noop"])
    return cell["kind"] != "clean" and cell.get("perturbation_linf_max") == 0


def _bootstrap_weights(n: int) -> np.ndarray:
    """How often each image is drawn in each resample: the per-cell CIs' resamples (metrics.cell_metrics)."""
    idx = np.random.default_rng(BOOTSTRAP_SEED).integers(0, n, size=(BOOTSTRAP_SAMPLES, n))
    flat = (idx + n * np.arange(BOOTSTRAP_SAMPLES)[:, None]).ravel()
    return np.bincount(flat, minlength=BOOTSTRAP_SAMPLES * n).reshape(BOOTSTRAP_SAMPLES, n).astype(np.float64)


def _corruption_ci(images: dict[str, np.ndarray], clean_index: np.ndarray, clean_bits: np.ndarray,
                   clean_correct: np.ndarray, cells: list[Cell]) -> dict:
    """Paired bootstrap CIs of the mean corruption overhead, its accuracy delta and the rate inflation
    over ``cells`` ({} without all their per-image rows)."""
    n = len(clean_index)
    row_of = {(c.condition, c.severity): k for k, c in enumerate(cells)}
    rows = np.fromiter((row_of.get((c, s), -1) for c, s in zip(images["condition"], images["severity"])), np.int64,
                       len(images["condition"]))
    mask = rows >= 0
    idx = images["image_index"][mask]
    pos = np.searchsorted(clean_index, idx)
    if n == 0 or (pos >= n).any() or (clean_index[pos] != idx).any() or (np.bincount(pos, minlength=n) != len(cells)).any():
        return {}
    flat = rows[mask] * n + pos
    if (np.bincount(flat, minlength=len(cells) * n) != 1).any():
        return {}
    matrix = np.zeros(len(cells) * n)
    matrix[flat] = images["bits_coded"][mask]
    matrix = matrix.reshape(len(cells), n)
    bits = matrix.mean(0)
    correct = np.bincount(pos, weights=images["correct"][mask].astype(np.float64), minlength=n) / len(cells)
    m = cell_metrics(bits, correct, clean_bits, clean_correct)
    w = _bootstrap_weights(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        overheads = (w @ matrix.T) / (w @ clean_bits.astype(np.float64))[:, None] - 1  # resamples x cells
    low, high = np.quantile(np.maximum(overheads, 0).mean(1), [(1 - CI_LEVEL) / 2, (1 + CI_LEVEL) / 2])
    out = {f"corruption_{k}": m[k] for k in ("overhead_ci_low", "overhead_ci_high", "accuracy_delta_ci_low",
                                             "accuracy_delta_ci_high")}
    return {**out, "corruption_inflation_ci_low": float(low), "corruption_inflation_ci_high": float(high)}


def summarize(sid: str, cells: list[dict], images, protocol_cells: tuple[Cell, ...] | None = None) -> Entry:
    """The index row of one submission from its ``records`` and per-image columns (a DataFrame or dict of arrays).

    ``protocol_cells`` are required too (None: the protocol is unknown to this erbench).
    """
    images = {k: np.asarray(images[k]) for k in IMAGE_COLUMNS}
    keys = [cell_key(*(c.get(k) for k in KEY)) for c in cells]
    by_head: dict[tuple, list[dict]] = {}
    for key, c in zip(keys, cells):
        by_head.setdefault(key[:4], []).append(c)
    for cell in (*REQUIRED, CE, BLACKBOX):
        if len(by_head.get(headline_key(cell), ())) > 1:
            raise ErbenchError(f"{len(by_head[headline_key(cell)])} rows match the required cell {label(cell)}; "
                               "the aggregation needs exactly one", file=sid)
    present = set(keys)
    missing = [c for c in REQUIRED if headline_key(c) not in by_head]
    missing += [c for c in protocol_cells or () if full_key(c) not in present and c not in missing]
    first, nan = cells[0], float("nan")
    row = {"id": sid, "dataset": first["dataset"], "architecture": first["architecture"],
           "entropy_model": first["entropy_model"], "beta": float(first["beta"]),
           "defense": first.get("defense") or "none", "protocol": first["protocol"],
           "weights_sha256": ", ".join(sorted({str(c["weights_sha256"]) for c in cells})),
           "created_utc": max(str(c["created_utc"]) for c in cells), "base": None,
           "defense_name": (first.get("defense") or "none").split("(")[0],
           "protocol_quick": bool(first["protocol_quick"]),
           "protocol_registered": protocol_cells is not None, "complete": not missing, "n_missing": len(missing),
           "degenerate": any(c["degenerate"] for c in cells),
           "degenerate_reason": next((c["degenerate_reason"] for c in cells if c["degenerate_reason"]), None),
           "decode_ok": all(c["decode_ok_all"] for c in cells)}
    for prefix, cell, cols in (("clean_", CLEAN, ("n_images", "accuracy", "accuracy_ci_low", "accuracy_ci_high",
                                                   "bits_coded_mean")),
                               *((prefix, cell, ("accuracy", "accuracy_ci_low", "accuracy_ci_high", "accuracy_delta",
                                                 "accuracy_delta_ci_low", "accuracy_delta_ci_high", "bits_coded_mean",
                                                 "extra_bits", "overhead", "overhead_ci_low", "overhead_ci_high"))
                                 for prefix, cell in (("worst_", WORST), ("ce_", CE), ("blackbox_", BLACKBOX)))):
        src = by_head.get(headline_key(cell), [{}])[0]
        row.update({prefix + c: nan if src.get(c) is None else float(src[c]) for c in cols})
    corr = {c: by_head[headline_key(c)][0] for c in CORRUPTION_CELLS if headline_key(c) in by_head}
    complete_corr = len(corr) == len(CORRUPTION_CELLS)
    counted = [c for c, r in corr.items() if not is_noop(r)]
    row["corruption_noop_cells"] = len(corr) - len(counted)
    complete_corr = complete_corr and bool(counted)
    for col in ("overhead", "accuracy_delta"):
        row[f"corruption_{col}"] = float(np.mean([corr[c][col] for c in counted])) if complete_corr else nan
    row["corruption_inflation"] = float(np.mean([max(0.0, corr[c]["overhead"]) for c in counted])) \
        if complete_corr else nan
    worst_corr = max(counted, key=lambda c: corr[c]["extra_bits"]) if complete_corr else None  # first on ties
    row["worst_corruption_condition"] = worst_corr.condition if worst_corr else None
    row["worst_corruption_severity"] = worst_corr.severity if worst_corr else None
    row["worst_corruption_extra_bits"] = float(corr[worst_corr]["extra_bits"]) if worst_corr else nan

    clean = _select(images, images["condition"] == "clean")
    clean_bits = clean["bits_coded"]
    cis = _corruption_ci(images, clean["image_index"], clean_bits, clean["correct"], counted) if complete_corr else {}
    for col in ("overhead", "accuracy_delta", "inflation"):
        for side in ("low", "high"):
            row[f"corruption_{col}_ci_{side}"] = cis.get(f"corruption_{col}_ci_{side}", nan)
    worst = _select(images, (images["condition"] == WORST_RATE) & (images["norm"] == HEADLINE_NORM)
                    & np.isclose(images["eps"].astype(float), HEADLINE_EPS, rtol=0, atol=1e-6))
    missing.sort(key=lambda c: tuple((v is not None, v or 0) for v in full_key(c)))
    return Entry(sid, cells, row, [label(c) for c in missing], clean_bits, worst["bits_coded"])


def _select(images: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    """Rows of ``mask``, ordered by image index."""
    order = np.argsort(images["image_index"][mask], kind="stable")
    return {k: v[mask][order] for k, v in images.items()}


def _nan_last(x: float) -> tuple:
    return (True, 0.0) if x is None or np.isnan(x) else (False, x)


def rank_key(row: dict) -> tuple:
    """Default order (see ``RULES``)."""
    group = 2 if row["degenerate"] else 0 if row["complete"] else 1
    return (group, *_nan_last(row["worst_overhead"]), *_nan_last(row["corruption_overhead"]), row["id"])


def _read(d: Path) -> tuple[list[dict], dict[str, np.ndarray]]:
    for name in (SUMMARY_FILE, PER_IMAGE_FILE):
        if not (d / name).is_file():
            raise ErbenchError(f"{name} is missing", file=d)
    cells = [{k: v if v == v else None for k, v in r.items()}  # NaN -> None
             for r in pq.ParquetFile(d / SUMMARY_FILE).read().to_pylist()]
    for c in cells:  # results of schema < 3 hold rendered corruptions only (results.upgrade)
        c.setdefault("corruption_source", RENDERED if c["kind"] == "corruption" else None)
    cells.sort(key=_order)
    images = pq.ParquetFile(d / PER_IMAGE_FILE).read(columns=IMAGE_COLUMNS)
    if not cells:
        raise ErbenchError("no rows", file=d / SUMMARY_FILE)
    ids, protocols = {c["submission_id"] for c in cells}, {c["protocol"] for c in cells}
    if ids != {d.name}:
        raise ErbenchError(f"rows name submission(s) {sorted(ids)}, expected only '{d.name}'", file=d / SUMMARY_FILE)
    if len(protocols) != 1:
        raise ErbenchError(f"rows of several protocols {sorted(protocols)}: one directory holds one run",
                           file=d / SUMMARY_FILE)
    return cells, {k: images.column(k).to_numpy(zero_copy_only=False) for k in IMAGE_COLUMNS}


def load(results_dir: Path) -> list[Entry]:
    """Every ``results_dir/<id>/`` as an Entry, in the default order."""
    if not results_dir.is_dir():
        raise ErbenchError("results directory not found", file=results_dir)
    entries = []
    for d in sorted(p for p in results_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        cells, images = _read(d)
        protocol = PROTOCOLS.get(cells[0]["protocol"]) if cells[0]["protocol"] in PROTOCOLS else None
        entries.append(summarize(d.name, cells, images, protocol.cells if protocol else None))
    link_bases([e.row for e in entries])
    return sorted(entries, key=lambda e: rank_key(e.row))


def link_bases(rows: list[dict]) -> None:
    """Set each defended row's ``base``: the undefended entry with the same weights and protocol (first by id)."""
    undefended = {}
    for r in sorted(rows, key=lambda r: r["id"]):
        if r["defense"] == "none":
            undefended.setdefault((r["weights_sha256"], r["protocol"]), r["id"])
    for r in rows:
        if r["defense"] != "none":
            r["base"] = undefended.get((r["weights_sha256"], r["protocol"]))


def severity_mean(cells: list[dict], corruption: str, metric: str) -> float | None:
    """Mean of ``metric`` over severities 1-5 of one corruption; None unless every severity is there."""
    values = {c["severity"]: c[metric] for c in cells if c["condition"] == f"corruption.{corruption}"}
    return None if set(values) != set(SEVERITIES) else sum(values.values()) / len(values)

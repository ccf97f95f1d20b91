"""Aggregation: the results tables -> one index row per submission, its completeness, its details.

The site shows only columns of the results tables and the aggregates computed here; ``RULES`` is
the printed form of this module and appears on the protocol page.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from erbench.conditions import Cell
from erbench.conditions.corruptions import CORRUPTIONS, SEVERITIES
from erbench.errors import ErbenchError
from erbench.metrics import BOOTSTRAP_SAMPLES, CI_LEVEL, cell_metrics
from erbench.results import PER_IMAGE_FILE, SUMMARY_FILE

HEADLINE_NORM, HEADLINE_EPS = "linf", 8 / 255
WORST_RATE = "attack.worst_rate"
CLEAN = Cell("clean")
WORST = Cell(WORST_RATE, norm=HEADLINE_NORM, eps=HEADLINE_EPS)
CORRUPTION_CELLS = tuple(Cell(f"corruption.{c}", severity=s) for c in CORRUPTIONS for s in SEVERITIES)
REQUIRED = (CLEAN, WORST, *CORRUPTION_CELLS)
KEY = ["condition", "severity", "norm", "eps", "variant", "steps", "seed"]
KIND_ORDER = {"clean": 0, "aggregate": 1, "attack": 2, "corruption": 3}
IMAGE_COLUMNS = ["condition", "kind", "severity", "norm", "eps", "image_index", "bits_coded", "correct"]

RULES = (
    "Every number is computed from real coded bits (bytes written by the range coder × 8, all latents "
    "including the hyper-latent), never from estimated bits.",
    "Clean accuracy and clean coded bits per image are read from the 'clean' cell.",
    f"Worst-case rate overhead is read from the '{WORST_RATE}' row at the headline budget L∞ ε = 8/255: "
    "per image, the worst of all rate attacks at that ε. Overhead = mean coded bits / clean mean coded bits - 1; "
    "its CI and the accuracy delta under that attack come from the same row.",
    f"Mean corruption overhead is the equal-weight mean of the overhead of the {len(CORRUPTIONS)} corruptions × "
    f"{len(SEVERITIES)} severities ({len(CORRUPTION_CELLS)} cells); the mean corruption accuracy delta likewise. "
    f"Their {CI_LEVEL:.0%} CIs come from a paired bootstrap over images ({BOOTSTRAP_SAMPLES} resamples, the "
    "per-cell CIs' seed) of the same statistic: per image, the mean over the cells of its coded bits and correctness "
    "against its clean values (all cells share the clean images, so this equals the mean of the cells' overheads).",
    f"Required cells: clean, {WORST_RATE} at L∞ ε = 8/255, all {len(CORRUPTION_CELLS)} corruption cells, and every cell of "
    "the protocol the entry was run under. An entry missing one is marked incomplete, and each aggregate that "
    "needs a missing cell is left empty: nothing is averaged over the cells that happen to exist.",
    "Default order: complete entries first, by worst-case rate overhead (lower is better), then by mean "
    "corruption overhead, then by id; incomplete entries next; degenerate models last. Empty values sort last.",
    "A degenerate model (near-chance accuracy or a collapsed rate) looks immune to entropy attacks: its numbers "
    "are shown but must never be read as robustness.",
    "Results of a quick protocol (fewer images and iterations, for smoke tests) are labelled and are not "
    "comparable with the full protocol; entries of different protocol versions are not comparable either.",
)


def _none(v):
    return None if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else v


def cell_key(condition, severity=None, norm=None, eps=None, variant=None, steps=None, seed=0) -> tuple:
    """Hashable identity of a cell: NaN -> None, eps rounded to 1e-6."""
    severity, eps, steps = _none(severity), _none(eps), _none(steps)
    return (condition, None if severity is None else int(severity), _none(norm),
            None if eps is None else round(float(eps), 6), _none(variant),
            None if steps is None else int(steps), int(seed))


def param_text(severity=None, norm=None, eps=None, variant=None, steps=None, seed=0) -> str:
    """Parameters for people, e.g. 'L∞ 8/255 · paper · 50 steps' or 'severity 3'."""
    severity, norm, eps, variant, steps = map(_none, (severity, norm, eps, variant, steps))
    out = [] if eps is None else [f"L∞ {eps * 255:g}/255" if norm == "linf" else f"{str(norm).upper()} {eps:g}"]
    out += [] if variant is None else [str(variant)]
    out += [] if severity is None else [f"severity {severity:g}"]
    out += [] if steps is None else [f"{steps:g} steps"]
    out += [f"seed {seed}"] if seed else []
    return " · ".join(out)


def label(cell: Cell) -> str:
    text = param_text(cell.severity, cell.norm, cell.eps, cell.variant, cell.steps, cell.seed)
    return cell.condition + (f" [{text}]" if text else "")


def headline_key(cell: Cell) -> tuple:
    """What a required cell is matched on: condition, severity, norm, eps (any variant, steps, seed)."""
    return cell_key(cell.condition, cell.severity, cell.norm, cell.eps)[:4]


@dataclass
class Entry:
    """One submission: summary rows in display order, the index row, missing cells, per-image coded bits."""

    id: str
    cells: pd.DataFrame
    row: dict
    missing: list[str]
    clean_bits: np.ndarray
    worst_bits: np.ndarray  # per image under the headline worst-case row (empty without per-image rows)


def display_order(summary: pd.DataFrame) -> pd.DataFrame:
    """Clean, worst-case rows, attacks, corruptions; then by condition and parameters."""
    rank = summary["kind"].map(KIND_ORDER).fillna(len(KIND_ORDER))
    return (summary.assign(_rank=rank).sort_values(["_rank", *KEY], na_position="first", kind="stable")
            .drop(columns="_rank").reset_index(drop=True))


def _corruption_ci(images: pd.DataFrame, clean: pd.DataFrame) -> dict:
    """Paired bootstrap CI of the mean corruption overhead and accuracy delta (NaN without all per-image rows)."""
    names = {c.condition for c in CORRUPTION_CELLS}
    corr = images[images["condition"].isin(names) & images["severity"].isin(SEVERITIES)]
    per = corr.groupby("image_index").agg(bits=("bits_coded", "mean"), correct=("correct", "mean"),
                                          n=("bits_coded", "size"))
    if len(clean) == 0 or len(per) != len(clean) or (per["n"] != len(CORRUPTION_CELLS)).any() \
            or not np.array_equal(per.index.to_numpy(), clean.index.to_numpy()):
        return {}
    m = cell_metrics(per["bits"].to_numpy(), per["correct"].to_numpy(), clean["bits_coded"].to_numpy(),
                     clean["correct"].to_numpy())
    return {"corruption_overhead_ci_low": m["overhead_ci_low"], "corruption_overhead_ci_high": m["overhead_ci_high"],
            "corruption_accuracy_delta_ci_low": m["accuracy_delta_ci_low"],
            "corruption_accuracy_delta_ci_high": m["accuracy_delta_ci_high"]}


def summarize(sid: str, summary: pd.DataFrame, images: pd.DataFrame,
              protocol_cells: tuple[Cell, ...] | None = None) -> Entry:
    """The index row of one submission; ``protocol_cells`` are required too (None: protocol unknown here)."""
    summary = display_order(summary)
    keys = [cell_key(*r) for r in summary[KEY].itertuples(index=False, name=None)]
    by_head: dict[tuple, list[int]] = {}
    for i, k in enumerate(keys):
        by_head.setdefault(k[:4], []).append(i)
    for cell in REQUIRED:
        if len(by_head.get(headline_key(cell), ())) > 1:
            raise ErbenchError(f"{len(by_head[headline_key(cell)])} rows match the required cell {label(cell)}; "
                               "the aggregation needs exactly one", file=sid)
    present = set(keys)
    missing = [c for c in REQUIRED if headline_key(c) not in by_head]
    missing += [c for c in protocol_cells or () if cell_key(*(getattr(c, f) for f in KEY)) not in present
                and c not in missing]

    def row_of(cell: Cell) -> pd.Series | None:
        hit = by_head.get(headline_key(cell))
        return summary.iloc[hit[0]] if hit else None

    first = summary.iloc[0]
    row = {"id": sid, "dataset": first["dataset"], "architecture": first["architecture"],
           "entropy_model": first["entropy_model"], "beta": float(first["beta"]),
           "defense": _none(first.get("defense")) or "none", "protocol": first["protocol"],
           "protocol_quick": bool(first["protocol_quick"]),
           "protocol_registered": protocol_cells is not None, "complete": not missing, "n_missing": len(missing),
           "degenerate": bool(summary["degenerate"].any()),
           "degenerate_reason": next((r for r in summary["degenerate_reason"] if _none(r)), None),
           "decode_ok": bool(summary["decode_ok_all"].all())}
    clean, worst = row_of(CLEAN), row_of(WORST)
    nan = float("nan")
    for prefix, src, cols in (("clean_", clean, ("n_images", "accuracy", "accuracy_ci_low", "accuracy_ci_high",
                                                  "bits_coded_mean")),
                              ("worst_", worst, ("accuracy", "accuracy_delta", "accuracy_delta_ci_low",
                                                  "accuracy_delta_ci_high", "bits_coded_mean", "overhead",
                                                  "overhead_ci_low", "overhead_ci_high"))):
        row.update({prefix + c: nan if src is None else float(src[c]) for c in cols})
    corr_rows = [row_of(c) for c in CORRUPTION_CELLS]
    complete_corr = all(r is not None for r in corr_rows)
    row["corruption_overhead"] = float(np.mean([r["overhead"] for r in corr_rows])) if complete_corr else nan
    row["corruption_accuracy_delta"] = float(np.mean([r["accuracy_delta"] for r in corr_rows])) if complete_corr else nan

    clean_img = images[images["condition"] == "clean"].set_index("image_index").sort_index()
    cis = _corruption_ci(images, clean_img) if complete_corr else {}
    for c in ("overhead", "accuracy_delta"):
        for side in ("low", "high"):
            row[f"corruption_{c}_ci_{side}"] = cis.get(f"corruption_{c}_ci_{side}", nan)
    worst_img = images[(images["condition"] == WORST_RATE) & (images["norm"] == HEADLINE_NORM)
                       & np.isclose(images["eps"].astype(float), HEADLINE_EPS, rtol=0, atol=1e-6)]
    return Entry(sid, summary, row, sorted(label(c) for c in missing), clean_img["bits_coded"].to_numpy(),
                 worst_img.sort_values("image_index")["bits_coded"].to_numpy())


def _nan_last(x: float) -> tuple:
    return (True, 0.0) if x is None or np.isnan(x) else (False, x)


def rank_key(row: dict) -> tuple:
    """Default order (see ``RULES``)."""
    group = 2 if row["degenerate"] else 0 if row["complete"] else 1
    return (group, *_nan_last(row["worst_overhead"]), *_nan_last(row["corruption_overhead"]), row["id"])


def _read(d: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    for name in (SUMMARY_FILE, PER_IMAGE_FILE):
        if not (d / name).is_file():
            raise ErbenchError(f"{name} is missing", file=d)
    summary = pq.read_table(d / SUMMARY_FILE).to_pandas()
    images = pq.read_table(d / PER_IMAGE_FILE, columns=IMAGE_COLUMNS,
                           filters=[[("kind", "in", ["clean", "corruption"])], [("condition", "=", WORST_RATE)]])
    ids, protocols = set(summary["submission_id"]), set(summary["protocol"])
    if ids != {d.name}:
        raise ErbenchError(f"rows name submission(s) {sorted(ids)}, expected only '{d.name}'", file=d / SUMMARY_FILE)
    if len(protocols) != 1:
        raise ErbenchError(f"rows of several protocols {sorted(protocols)}: one directory holds one run",
                           file=d / SUMMARY_FILE)
    return summary, images.to_pandas()


def load(results_dir: Path) -> list[Entry]:
    """Every ``results_dir/<id>/`` as an Entry, in the default order."""
    from erbench.protocol import PROTOCOLS

    if not results_dir.is_dir():
        raise ErbenchError("results directory not found", file=results_dir)
    entries = []
    for d in sorted(p for p in results_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        summary, images = _read(d)
        protocol = summary["protocol"].iloc[0]
        cells = PROTOCOLS.get(protocol).cells if protocol in PROTOCOLS else None
        entries.append(summarize(d.name, summary, images, cells))
    return sorted(entries, key=lambda e: rank_key(e.row))

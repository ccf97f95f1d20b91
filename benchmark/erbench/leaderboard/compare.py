"""The compare view's data: per entry its worst-case ε-curves, its accuracy under the classification
attack and its corruption profile, read from the summary rows (the page only draws them)."""

from __future__ import annotations

from erbench.conditions.catalog import CORRUPTIONS
from erbench.leaderboard.aggregate import Entry, severity_mean
from erbench.protocol import WORST_RATE

CURVES = ((WORST_RATE, "overhead"), ("attack.ce_pgd", "accuracy"))


def _curve(cells: list[dict], condition: str, metric: str, norm: str) -> list[list]:
    """[[eps, value, ci low, ci high], ...] by eps (L∞ eps in pixel levels)."""
    scale = 255 if norm == "linf" else 1
    rows = sorted((c for c in cells if c["condition"] == condition and c["norm"] == norm), key=lambda c: c["eps"])
    return [[round(c["eps"] * scale, 6), c[metric], c[f"{metric}_ci_low"], c[f"{metric}_ci_high"]] for c in rows]


def profiles(entries: list[Entry]) -> dict:
    """JSON for compare.html: corruption names and, per entry id, its curves and profile."""
    out = {}
    for e in sorted(entries, key=lambda e: e.id):
        out[e.id] = {
            "family": e.row["entropy_model"], "defense": e.row["defense_name"], "protocol": e.row["protocol"],
            "curves": {f"{cond}:{metric}:{norm}": _curve(e.cells, cond, metric, norm)
                       for cond, metric in CURVES for norm in ("linf", "l2")},
            "corruptions": {m: [severity_mean(e.cells, c, m) for c in CORRUPTIONS] for m in ("overhead", "accuracy")},
        }
    return {"corruptions": list(CORRUPTIONS), "entries": out}

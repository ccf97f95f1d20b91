"""The leaderboard as Markdown tables (for reports and docs), read from the same aggregates as the site."""

from __future__ import annotations

import math

from erbench.leaderboard.aggregate import HEADLINE, Entry
from erbench.protocol import L2_EPS, LINF_EPS, WORST_RATE

BUDGETS = tuple(("linf", e, f"L∞ {e * 255:g}/255") for e in LINF_EPS) + tuple(("l2", e, f"L2 {e:g}") for e in L2_EPS)


def _pct(v, lo, hi) -> str:
    if v is None or math.isnan(v):
        return "—"
    return f"{100 * v:+.1f}% [{100 * lo:+.1f}, {100 * hi:+.1f}]"


def _delta(v, lo, hi) -> str:
    if v is None or math.isnan(v):
        return "—"
    return f"{v:+.3f} [{lo:+.3f}, {hi:+.3f}]"


def _name(e: Entry) -> str:
    tags = [] if e.row["complete"] else [f"incomplete: {e.row['n_missing']} cells missing"]
    tags += ["degenerate"] if e.row["degenerate"] else []
    tags += ["quick protocol"] if e.row["protocol_quick"] else []
    return f"{e.id}" + (f" ({'; '.join(tags)})" if tags else "")


def headline(entries: list[Entry]) -> str:
    """One row per entry: clean operating point, worst-case attack and mean corruption, with CIs."""
    lines = [f"| entry | defense | clean accuracy [95% CI] | clean coded bits | worst-rate overhead, {HEADLINE} | "
             "accuracy Δ under it | mean corruption overhead (19 × 5) | mean corruption accuracy Δ |", "|---" * 8 + "|"]
    for e in entries:
        r = e.row
        acc = "—" if math.isnan(r["clean_accuracy"]) else \
            f"{r['clean_accuracy']:.3f} [{r['clean_accuracy_ci_low']:.3f}, {r['clean_accuracy_ci_high']:.3f}]"
        bits = "—" if math.isnan(r["clean_bits_coded_mean"]) else f"{r['clean_bits_coded_mean']:,.1f}"
        lines.append("| " + " | ".join([
            _name(e), r["defense"], acc, bits,
            _pct(r["worst_overhead"], r["worst_overhead_ci_low"], r["worst_overhead_ci_high"]),
            _delta(r["worst_accuracy_delta"], r["worst_accuracy_delta_ci_low"], r["worst_accuracy_delta_ci_high"]),
            _pct(r["corruption_overhead"], r["corruption_overhead_ci_low"], r["corruption_overhead_ci_high"]),
            _delta(r["corruption_accuracy_delta"], r["corruption_accuracy_delta_ci_low"],
                   r["corruption_accuracy_delta_ci_high"]),
        ]) + " |")
    return "\n".join(lines)


def _worst_row(e: Entry, norm: str, eps: float) -> dict | None:
    return next((c for c in e.cells if c["condition"] == WORST_RATE and c["norm"] == norm
                 and math.isclose(c["eps"], eps, abs_tol=1e-9)), None)


def per_budget(entries: list[Entry], metric: str) -> str:
    """Worst-case rate attack at every budget: ``metric`` 'overhead' (%) or 'accuracy_delta', with CIs."""
    fmt = _pct if metric == "overhead" else _delta
    lines = ["| entry | " + " | ".join(b[2] for b in BUDGETS) + " |", "|---" * (len(BUDGETS) + 1) + "|"]
    for e in entries:
        cells = []
        for norm, eps, _ in BUDGETS:
            c = _worst_row(e, norm, eps)
            cells.append("—" if c is None else fmt(c[metric], c[f"{metric}_ci_low"], c[f"{metric}_ci_high"]))
        lines.append(f"| {_name(e)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(entries: list[Entry]) -> str:
    """The three report tables: headline, worst-case overhead per budget, accuracy Δ per budget."""
    return "\n\n".join([
        "### Headline (ranked as on the leaderboard)", headline(entries),
        f"### `{WORST_RATE}`: coded-bit overhead at every budget [95% CI]", per_budget(entries, "overhead"),
        f"### `{WORST_RATE}`: accuracy Δ at every budget [95% CI]", per_budget(entries, "accuracy_delta"),
    ]) + "\n"

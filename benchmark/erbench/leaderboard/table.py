"""The leaderboard as Markdown tables (for reports and docs), read from the same aggregates as the site."""

from __future__ import annotations

import math

from erbench.conditions.catalog import CORRUPTIONS, SEVERITIES
from erbench.leaderboard.aggregate import HEADLINE, Entry, severity_mean
from erbench.protocol import WORST_RATE
from erbench.report import eps_text

NORM_LABELS = {"linf": "L∞", "l2": "L2"}


def budgets(entries: list[Entry], norms=tuple(NORM_LABELS)) -> list[tuple[str, float, str]]:
    """Every (norm, eps, label) some entry has an attack row at, by norm then eps."""
    found = {(c["norm"], round(c["eps"], 9)) for e in entries for c in e.cells
             if c["kind"] in ("attack", "aggregate") and c["norm"] in norms}
    return [(n, eps, f"{NORM_LABELS[n]} {eps_text(n, eps)}") for n in norms for _, eps in sorted(f for f in found if f[0] == n)]


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
             "accuracy Δ under it | mean corruption overhead (19 × 5 minus no-ops) | mean corruption accuracy Δ |", "|---" * 8 + "|"]
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
    grid = budgets(entries)
    lines = ["| entry | " + " | ".join(b[2] for b in grid) + " |", "|---" * (len(grid) + 1) + "|"]
    for e in entries:
        cells = []
        for norm, eps, _ in grid:
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


def corruptions(entries: list[Entry]) -> str:
    """Per corruption, the mean over severities 1-5 of coded-bit overhead and of accuracy (no CIs: see the site)."""
    head = "| entry | " + " | ".join(CORRUPTIONS) + " |\n" + "|---" * (len(CORRUPTIONS) + 1) + "|"
    parts = []
    for metric, title, fmt in (("overhead", "coded-bit overhead", "{:+.0%}"), ("accuracy", "accuracy", "{:.2f}")):
        lines = [f"### Corruptions: {title}, mean over severities {SEVERITIES[0]}-{SEVERITIES[-1]}", head]
        for e in entries:
            means = (severity_mean(e.cells, c, metric) for c in CORRUPTIONS)
            lines.append(f"| {_name(e)} | " + " | ".join("—" if m is None else fmt.format(m) for m in means) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def _attack_rows(e: Entry, norm: str) -> dict[str, dict[float, dict]]:
    """Attack and worst-case rows of one norm: label -> eps -> row (worst case last)."""
    out: dict[str, dict[float, dict]] = {}
    for c in e.cells:
        if c["kind"] in ("attack", "aggregate") and c["norm"] == norm:
            name = c["condition"].removeprefix("attack.") + (f" {c['variant']}" if c["variant"] else "")
            out.setdefault(name, {})[round(c["eps"], 9)] = c
    worst = WORST_RATE.removeprefix("attack.")
    return {k: out[k] for k in sorted(out, key=lambda k: (k == worst, k))}


def attacks(e: Entry) -> str:
    """Every attack row of one entry: overhead and accuracy delta per variant and budget, with CIs."""
    r = e.row
    parts = [f"#### {e.id}", f"Clean: {r['clean_bits_coded_mean']:,.1f} coded bits per image, accuracy "
             f"{r['clean_accuracy']:.3f} [{r['clean_accuracy_ci_low']:.3f}, {r['clean_accuracy_ci_high']:.3f}]; "
             f"defense: {r['defense']}."]
    for norm in NORM_LABELS:
        rows = _attack_rows(e, norm)
        grid = budgets([e], (norm,))
        heads = [b[2] for b in grid]
        for metric, title, fmt in (("overhead", "coded-bit overhead [95% CI]", _pct),
                                   ("accuracy_delta", "accuracy Δ [95% CI]", _delta)):
            lines = [f"| {title} | " + " | ".join(heads) + " |", "|---" * (len(heads) + 1) + "|"]
            for name, by_eps in rows.items():
                cells = [by_eps.get(eps) for _, eps, _ in grid]
                lines.append(f"| {name} | " + " | ".join(
                    "—" if c is None else fmt(c[metric], c[f"{metric}_ci_low"], c[f"{metric}_ci_high"]) for c in cells) + " |")
            parts.append("\n".join(lines))
    kept = [c for c in e.cells if c["condition"] == "attack.stealth_rate"]
    if kept:
        lo, hi = (f(c["prediction_kept_rate"] for c in kept) for f in (min, max))
        span = f"{lo:.1%}" if f"{lo:.1%}" == f"{hi:.1%}" else f"{lo:.1%} to {hi:.1%}"
        parts.append(f"stealth_rate kept the clean prediction on {span} of the images (every budget).")
    return "\n\n".join(parts) + "\n"

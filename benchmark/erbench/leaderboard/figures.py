"""Plotly figure specs as plain dicts (``{"data": [...], "layout": {...}}``), drawn by plotly.js in the page.

Pure functions of the aggregated tables: JSON-ready, NaN -> None, no random ids.
"""

from __future__ import annotations

import math

import numpy as np

from erbench.conditions.catalog import CORRUPTIONS, SEVERITIES
from erbench.leaderboard.aggregate import HEADLINE, HEADLINE_EPS, WORST_RATE
from erbench.report import eps_text

PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#9d755d", "#eeca3b", "#bab0ac",
           "#ff9da6", "#1b9e77", "#7570b3")  # 12: a defended entry plots 10 attack lines besides the worst case
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
DIVERGING = [[0, "#2166ac"], [0.25, "#92c5de"], [0.5, "#f7f7f7"], [0.75, "#f4a582"], [1, "#b2182b"]]
BITS_AXIS = "coded bits per image (range coder)"


def _num(values) -> list:
    return [None if v is None or (isinstance(v, float) and math.isnan(v)) else v
            for v in np.asarray(values, dtype=object).tolist()]


def _layout(x: str, y: str, **kw) -> dict:
    return {"font": {"family": FONT, "size": 13, "color": "#1f2933"}, "margin": {"l": 64, "r": 16, "t": 16, "b": 56},
            "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "#ffffff", "hovermode": "closest",
            "xaxis": {"title": {"text": x, "standoff": 8}, "gridcolor": "#e5e9f0", "zerolinecolor": "#c7ced9",
                      "automargin": True},
            "yaxis": {"title": {"text": y, "standoff": 8}, "gridcolor": "#e5e9f0", "zerolinecolor": "#c7ced9",
                      "automargin": True},
            # below the plot: the mode bar sits top right and would cover a legend there
            "legend": {"orientation": "h", "x": 0, "y": -0.18, "yanchor": "top"}, "showlegend": True, **kw}


def rate_accuracy(rows: list[dict]) -> dict:
    """Every entry at clean (circle) and under the worst-case rate attack at the headline eps (cross)."""
    data = []
    families = sorted({r["entropy_model"] for r in rows})
    for i, family in enumerate(families):
        group = [r for r in rows if r["entropy_model"] == family]
        color = PALETTE[i % len(PALETTE)]
        seg_x, seg_y, seg_id = [], [], []
        for r in group:
            if not math.isnan(r["worst_bits_coded_mean"]):
                seg_x += [r["clean_bits_coded_mean"], r["worst_bits_coded_mean"], None]
                seg_y += [r["clean_accuracy"], r["worst_accuracy"], None]
                seg_id += [r["id"]] * 3
        data.append({"type": "scatter", "mode": "lines", "x": _num(seg_x), "y": _num(seg_y), "customdata": seg_id,
                     "hoverinfo": "skip",
                     "line": {"color": color, "width": 1}, "opacity": 0.45, "showlegend": False,
                     "legendgroup": family})
        for state, symbol, bits, acc in (("clean", "circle", "clean_bits_coded_mean", "clean_accuracy"),
                                         ("worst attack", "x", "worst_bits_coded_mean", "worst_accuracy")):
            data.append({"type": "scatter", "mode": "markers", "name": f"{family}, {state}", "legendgroup": family,
                         "x": _num([r[bits] for r in group]), "y": _num([r[acc] for r in group]),
                         "text": [r["id"] for r in group], "customdata": [r["id"] for r in group],
                         "marker": {"color": color, "symbol": symbol, "size": 9, "line": {"width": 1, "color": "#fff"}},
                         "hovertemplate": f"%{{text}}<br>{state}: %{{x:,.0f}} bits, accuracy %{{y:.3f}}"
                                          "<extra></extra>"})
    layout = _layout(BITS_AXIS + ", log scale", "top-1 accuracy (decoded)", height=460)
    bits = [v for r in rows for v in (r["clean_bits_coded_mean"], r["worst_bits_coded_mean"]) if not math.isnan(v)]
    ticks = [m * 10**k for k in range(1, 8) for m in (1, 2, 3, 5)
             if bits and min(bits) / 1.2 <= m * 10**k <= max(bits) * 1.2]
    layout["xaxis"].update(type="log", tickvals=ticks, ticktext=[f"{t:,}" for t in ticks])
    accs = [v for r in rows for v in (r["clean_accuracy"], r["worst_accuracy"]) if not math.isnan(v)]
    low = math.floor((min(accs, default=0.0) - 0.05) * 10) / 10  # zoom on the entries, axis starts at a 0.1 step
    layout["yaxis"]["range"] = [max(0.0, low), 1.02]
    return {"data": data, "layout": layout}


def eps_axis(norm: str) -> str:
    return "ε × 255 (L∞, pixel levels)" if norm == "linf" else f"ε ({norm.upper()}, [0, 1] pixel units)"


def attack_curves(cells: list[dict], norm: str, metric: str) -> dict:
    """``metric`` (overhead or accuracy) vs eps, one line per attack condition and variant under ``norm``."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for c in cells:
        if c["kind"] in ("attack", "aggregate") and c["norm"] == norm and c["eps"] is not None:
            groups.setdefault((c["condition"], c["variant"] or ""), []).append(c)
    scale = 255 if norm == "linf" else 1
    data = []
    for i, (condition, variant) in enumerate(sorted(groups)):
        g = sorted(groups[(condition, variant)], key=lambda c: c["eps"])
        worst = condition == WORST_RATE
        name = condition.removeprefix("attack.") + (f" ({variant})" if variant else "")
        y = [c[metric] for c in g]
        trace = {"type": "scatter", "mode": "lines+markers", "name": name, "x": [c["eps"] * scale for c in g],
                 "y": _num(y), "line": {"width": 3 if worst else 2, "dash": "dash" if worst else "solid",
                                        "color": "#1f2933" if worst else PALETTE[i % len(PALETTE)]},
                 "text": [f"ε {eps_text(norm, c['eps'])}" for c in g],
                 "hovertemplate": f"{name}<br>%{{text}}: %{{y:{'+.1%' if metric == 'overhead' else '.3f'}}}"
                                  "<extra></extra>"}
        low, high = [c.get(f"{metric}_ci_low") for c in g], [c.get(f"{metric}_ci_high") for c in g]
        if all(v is not None for v in low + high + y):
            trace["error_y"] = {"type": "data", "symmetric": False, "array": [h - v for h, v in zip(high, y)],
                                "arrayminus": [v - lo for v, lo in zip(y, low)], "thickness": 1, "width": 3}
        data.append(trace)
    layout = _layout(eps_axis(norm), "coded-bit overhead vs. clean" if metric == "overhead"
                     else "top-1 accuracy (decoded)", height=380)
    layout["yaxis"]["tickformat"] = "+.0%" if metric == "overhead" else ".2f"
    if norm == "linf":
        layout["shapes"] = [{"type": "line", "x0": HEADLINE_EPS * 255, "x1": HEADLINE_EPS * 255, "y0": 0, "y1": 1,
                             "yref": "paper", "line": {"color": "#9aa5b1", "dash": "dot", "width": 1}}]
    return {"data": data, "layout": layout}


def corruption_heatmap(cells: list[dict], metric: str) -> dict:
    """19 corruptions x 5 severities of ``metric`` (overhead or accuracy); missing cells stay blank."""
    values = {(c["condition"], c["severity"]): c[metric] for c in cells if c["kind"] == "corruption"}
    z = [[values.get((f"corruption.{name}", s)) for s in SEVERITIES] for name in CORRUPTIONS]
    text = [["" if v is None else _pct0(v) if metric == "overhead" else f"{v:.2f}" for v in line] for line in z]
    trace = {"type": "heatmap", "z": z, "text": text, "texttemplate": "%{text}", "x": [str(s) for s in SEVERITIES],
             "y": list(CORRUPTIONS), "xgap": 2, "ygap": 2, "hoverongaps": False,
             "hovertemplate": "%{y}, severity %{x}: %{text}<extra></extra>", "colorbar": {"thickness": 12}}
    if metric == "overhead":
        span = max([abs(v) for line in z for v in line if v is not None] or [1.0])
        trace.update(colorscale=DIVERGING, zmid=0, zmin=-min(span, 1.0), zmax=span)  # an overhead is >= -100%
        trace["colorbar"]["tickformat"] = "+.0%"
    else:
        trace.update(colorscale="Viridis", zmin=0, zmax=1)
    title = "coded-bit overhead vs. clean" if metric == "overhead" else "top-1 accuracy (decoded)"
    layout = _layout("severity", "", height=640, margin={"l": 130, "r": 16, "t": 40, "b": 50}, showlegend=False,
                     title={"text": title, "x": 0.02, "font": {"size": 14}})
    layout["yaxis"].update(autorange="reversed", gridcolor="rgba(0,0,0,0)")
    layout["xaxis"]["gridcolor"] = "rgba(0,0,0,0)"
    return {"data": [trace], "layout": layout}


QUANTILES = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)  # the histograms' data table


def bits_distribution(clean: np.ndarray, worst: np.ndarray) -> dict:
    """Per-image coded bits, clean vs. the worst-case rate attack at the headline eps (overlaid histograms)."""
    data = []
    for name, values, color in (("clean", clean, PALETTE[0]), (f"worst attack, {HEADLINE}", worst, PALETTE[3])):
        if len(values):
            data.append({"type": "histogram", "name": name, "x": _num(values), "opacity": 0.6, "nbinsx": 60,
                         "bingroup": "bits", "marker": {"color": color},
                         "hovertemplate": "%{x} bits: %{y} images<extra></extra>"})
    return {"data": data, "layout": _layout(BITS_AXIS, "images", barmode="overlay", height=340)}


def ranking(board, groups: list[tuple[str, str, list[dict]]], headline: str) -> dict:
    """The board's metric with its CI, one row per entry in the board's order; one trace per group and family."""
    data, order = [], []
    pct = board.metric != "ce_accuracy"
    families = sorted({r["entropy_model"] for _, _, rows in groups for r in rows})
    for g, title, rows in groups:
        for i, family in enumerate(families):
            rs = [r for r in rows if r["entropy_model"] == family and not math.isnan(board.value(r))]
            if not rs:
                continue
            v = [board.value(r) for r in rs]
            lo, hi = ([r[f"{board.metric}_ci_{s}"] for r in rs] for s in ("low", "high"))
            data.append({"type": "scatter", "mode": "markers", "name": f"{family} · {g}", "x": _num(v),
                         "y": [r["id"] for r in rs], "customdata": [r["id"] for r in rs],
                         "marker": {"color": PALETTE[i % len(PALETTE)], "size": 8,
                                    "symbol": "circle" if g == "main" else "diamond-open"},
                         "error_x": {"type": "data", "symmetric": False, "thickness": 1, "width": 0,
                                     "array": _num([h - x for h, x in zip(hi, v)]),
                                     "arrayminus": _num([x - low for x, low in zip(v, lo)])},
                         "hovertemplate": f"%{{y}}: %{{x:{'+.1%' if pct else '.3f'}}}<extra></extra>"})
        order += [r["id"] for r in rows if not math.isnan(board.value(r))]
    title = f"{board.title}: {'coded-bit overhead' if pct else 'top-1 accuracy'}, {headline}" \
        if board.metric != "corruption_inflation" else "corruption rate inflation, mean of max(0, overhead)"
    layout = _layout(title + f" ({board.better} is better)", "", height=max(260, 22 * len(order) + 150))
    layout["yaxis"].update(type="category", categoryorder="array", categoryarray=order, autorange="reversed",
                           gridcolor="rgba(0,0,0,0)", title={"text": ""})
    layout["xaxis"]["tickformat"] = "+.0%" if pct else ".2f"
    return {"data": data, "layout": layout}


def data_table(spec: dict) -> tuple[list[str], list[list[str]]] | None:
    """The figure's numbers as a table (its text alternative): scatter traces as (trace, point, x, y) rows,
    a heatmap as its grid, histograms as each series' quantiles of its values."""
    traces = spec["data"]
    if traces and traces[0]["type"] == "histogram":
        head = ["series", "images", *(f"{q:.0%}" if 0 < q < 1 else ("min", "max")[int(q)] for q in QUANTILES)]
        return head, [[t["name"], str(len(t["x"])), *(_fmt(float(v)) for v in np.quantile(t["x"], QUANTILES))]
                      for t in traces]
    if traces and traces[0]["type"] == "heatmap":
        t = traces[0]
        return ["", *t["x"]], [[y, *line] for y, line in zip(t["y"], t["text"])]
    rows = []
    for t in traces:
        if t["type"] != "scatter" or t.get("hoverinfo") == "skip":
            continue
        labels = t.get("text") or t.get("customdata") or [""] * len(t["x"])
        for label, x, y in zip(labels, t["x"], t["y"]):
            rows.append([t.get("name", ""), str(label), _fmt(x), _fmt(y)])
    axis = spec["layout"]
    return (["series", "point", axis["xaxis"]["title"]["text"], axis["yaxis"]["title"]["text"]], rows) if rows else None


def _pct0(v: float) -> str:
    """'+12%', '-3%', and '0%' (never '-0%') for what rounds to zero."""
    text = f"{v:+.0%}"
    return "0%" if text in ("+0%", "-0%") else text


def _fmt(v) -> str:
    return "—" if v is None else f"{v:,.4g}" if isinstance(v, float) else str(v)

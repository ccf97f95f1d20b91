"""Render the static site: entries -> index, per-submission and protocol pages, plus static files.

A pure function of the results: sorted iteration, fixed figure ids, no build time, plotly.js
copied from the installed plotly package (no CDN). The output directory is replaced atomically
and only if it is absent or an earlier build (it holds the ``.erbench-site`` marker).
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import jinja2

import erbench
from erbench import metrics
from erbench.conditions.catalog import CONDITIONS
from erbench.errors import ErbenchError
from erbench.leaderboard import figures
from erbench.leaderboard.aggregate import (HEADLINE, HEADLINE_NORM, RULES, WORST, WORST_RATE, Entry, label, load,
                                           param_text)
from erbench.protocol import PROTOCOLS
from erbench.results import PROVENANCE, SUMMARY
from erbench.spec import Submission, parse_submission, read_yaml

MARKER = ".erbench-site"
STATIC = ("style.css", "leaderboard.js", "favicon.svg")
FILTERS = (("dataset", "Track"), ("architecture", "Architecture"), ("entropy_model", "Entropy model"),
           ("defense", "Defense"), ("protocol", "Protocol"))


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    numeric: bool = True
    help: str = ""
    sub: str = ""


COLUMNS = (
    Column("rank", "#", help="default order (see the protocol page)"),
    Column("id", "Submission", False, "status: complete, incomplete (missing cells), degenerate, quick protocol"),
    Column("dataset", "Track", False, "dataset"),
    Column("architecture", "Architecture", False),
    Column("entropy_model", "Entropy", False, "entropy model"),
    Column("beta", "β", help="rate weight used in training"),
    Column("defense", "Defense", False),
    Column("clean_accuracy", "Clean acc.", help="top-1 accuracy from the decoded bitstream, 95% CI"),
    Column("clean_bits_coded_mean", "Clean bits", help="mean real coded bits per image, clean"),
    Column("worst_overhead", "Worst rate attack", help=f"coded-bit overhead of the per-image worst rate attack at "
           f"{HEADLINE}, 95% CI; lower is better", sub=HEADLINE),
    Column("worst_accuracy_delta", "Δ acc.", help="accuracy change under that attack, 95% CI", sub="attack"),
    Column("corruption_overhead", "Corruptions", help="mean coded-bit overhead over 19 corruptions × 5 severities, "
           "no-op cells (every image unchanged) excluded, 95% CI", sub="mean of 95 − no-ops"),
    Column("corruption_accuracy_delta", "Δ acc.", help="mean accuracy change over the same cells, 95% CI",
           sub="corruptions"),
    Column("protocol", "Protocol", False),
)


def sort_value(value) -> str:
    """The ``data-v`` sort key of a numeric cell: '' for missing (always sorted last), else repr."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(float(value))


def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def pct(x, digits: int = 1) -> str:
    return "—" if _missing(x) else f"{x * 100:+.{digits}f}%"


def delta(x) -> str:
    return "—" if _missing(x) else f"{x:+.3f}"


def num(x, fmt: str = ".3f") -> str:
    return "—" if _missing(x) else format(x, fmt)


def ci(low, high, kind: str = "pct") -> str:
    if _missing(low) or _missing(high):
        return ""
    f = {"pct": lambda v: f"{v * 100:+.1f}", "delta": lambda v: f"{v:+.3f}", "num": lambda v: f"{v:.3f}"}[kind]
    return f"[{f(low)}, {f(high)}]" + ("%" if kind == "pct" else "")


def params(cell: dict) -> str:
    return param_text(*(cell[k] for k in ("severity", "norm", "eps", "variant", "steps", "seed")))


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("erbench.leaderboard", "templates"),
                             autoescape=jinja2.select_autoescape(["html"]), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters.update(pct=pct, delta=delta, num=num, sv=sort_value, params=params, missing=_missing)
    env.globals.update(ci=ci, tone=tone, version=erbench.__version__, headline=HEADLINE)
    return env


def _submissions(root: Path | None) -> dict[str, tuple[Path, Submission]]:
    """Submission YAMLs under ``root`` by id (metadata for the per-submission pages)."""
    found: dict[str, tuple[Path, Submission]] = {}
    for path in sorted(root.rglob("*.yaml")) if root and root.is_dir() else ():
        if path.stem in found:
            raise ErbenchError(f"submission id '{path.stem}' also in {found[path.stem][0]}", file=path)
        found[path.stem] = (path, parse_submission(read_yaml(path), path))
    return found


def tone(tag: str) -> str:
    return "ok" if tag == "complete" else "bad" if tag == "degenerate" else "warn"


def _status(row: dict) -> list[str]:
    tags = ["complete" if row["complete"] else f"incomplete: {row['n_missing']} missing"]
    return tags + ["degenerate"] * row["degenerate"] + ["quick protocol"] * row["protocol_quick"]


def _provenance(entry: Entry) -> list[tuple[str, str, list[str]]]:
    return [(n, d, sorted({str(c[n]) for c in entry.cells})) for n, _, d in PROVENANCE if n in entry.cells[0]]


def _submission_page(env: jinja2.Environment, entry: Entry, meta: tuple[Path, Submission] | None) -> str:
    cells = entry.cells
    attack_norms = {c["norm"] for c in cells if c["kind"] in ("attack", "aggregate") and c["norm"]}
    norms = sorted(attack_norms, key=lambda n: (n != HEADLINE_NORM, n))
    figs = {f"{m}-{n}": figures.attack_curves(cells, n, m) for n in norms for m in ("overhead", "accuracy")}
    if any(c["kind"] == "corruption" for c in cells):
        figs.update({f"heat-{m}": figures.corruption_heatmap(cells, m) for m in ("overhead", "accuracy")})
    figs["bits"] = figures.bits_distribution(entry.clean_bits, entry.worst_bits)
    return env.get_template("submission.html").render(
        root="../", e=entry, row=entry.row, status=_status(entry.row), meta=meta, norms=norms, figs=figs,
        rows=cells, provenance=_provenance(entry),
        worst=label(WORST), weights=", ".join(sorted({c["weights_sha256"] for c in cells})))


def _protocol_page(env: jinja2.Environment, entries: list[Entry]) -> str:
    used = {e.row["protocol"] for e in entries}
    conditions = {name: (c.kind, c.summary) for name, c in CONDITIONS.metas()}
    for e in entries:
        for c in e.cells:
            conditions.setdefault(c["condition"], (c["kind"], "not registered in this erbench version"))
    rate = ", ".join(name for name, c in CONDITIONS.metas() if c.rate_attack)
    conditions[WORST_RATE] = ("aggregate", f"per image, the rate attack ({rate}) with the most coded bits at one "
                                           "norm and ε; computed by the runner from the attack cells, not an attack")
    protocols = [(name, p, _grid(p.cells), name in used) for name, p in PROTOCOLS.items()]
    return env.get_template("protocol.html").render(
        root="", figs={}, rules=RULES, conditions=sorted(conditions.items()), protocols=protocols, metrics=SUMMARY,
        metrics_doc=metrics.__doc__, unregistered=sorted(used - set(PROTOCOLS)))


def _grid(cells) -> list[tuple[str, str]]:
    """Per condition of a protocol its parameters, e.g. ('attack.noise', 'L∞ ε 2, 4, 8, 16/255; L2 ε 0.5, 1')."""
    out: dict[str, dict[tuple, list]] = {}
    for c in cells:
        out.setdefault(c.condition, {}).setdefault((c.norm, c.variant, c.steps), []).append(c.eps or c.severity)
    rows = []
    for condition, groups in out.items():
        parts = []
        for (norm, variant, steps), values in groups.items():
            values = [v for v in values if v is not None]
            head = ("L∞ ε " + ", ".join(f"{v * 255:g}" for v in values) + "/255" if norm == "linf"
                    else f"{norm.upper()} ε " + ", ".join(f"{v:g}" for v in values) if norm
                    else "severity " + ", ".join(map(str, values)) if values else "")
            count = f"{steps} step" + "s" * (steps != 1) if steps else ""
            parts.append(" · ".join(p for p in (head, variant, count) if p))
        rows.append((condition, "; ".join(parts)))
    return rows


def render(entries: list[Entry], submissions_dir: Path | None = None) -> dict[str, str]:
    """Every page as relative path -> HTML."""
    env = _env()
    meta = _submissions(submissions_dir)
    rows = [{**e.row, "rank": i + 1, "status": _status(e.row),
             "title": meta[e.id][1].title if e.id in meta else ""} for i, e in enumerate(entries)]
    choices = {key: sorted({str(r[key]) for r in rows}) for key, _ in FILTERS}
    pages = {"index.html": env.get_template("index.html").render(
        root="", rows=rows, columns=COLUMNS, filters=FILTERS, choices=choices,
        figs={"rate-accuracy": figures.rate_accuracy(rows)} if rows else {},
        n_complete=sum(r["complete"] for r in rows))}
    pages["protocol.html"] = _protocol_page(env, entries)
    for e in entries:
        pages[f"s/{e.id}.html"] = _submission_page(env, e, meta.get(e.id))
    return pages


def _write(pages: dict[str, str], dest: Path) -> None:
    for rel, html in sorted(pages.items()):
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html, encoding="utf-8")
    static = dest / "static"
    static.mkdir(exist_ok=True)
    for name in STATIC:
        (static / name).write_bytes(files("erbench.leaderboard").joinpath("static", name).read_bytes())
    import plotly

    shutil.copyfile(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", static / "plotly.min.js")
    (dest / ".nojekyll").write_text("")
    (dest / MARKER).write_text("built by `erbench leaderboard build`; the whole directory is replaced on rebuild\n")


def build(results_dir: Path, out_dir: Path, submissions_dir: Path | None = None) -> list[Entry]:
    """Build the site from ``results_dir`` into ``out_dir``; returns the entries in index order."""
    if out_dir.exists() and not (out_dir / MARKER).exists() and any(out_dir.iterdir()):
        raise ErbenchError("exists and is not a leaderboard build; refusing to replace it", file=out_dir)
    entries = load(results_dir)
    pages = render(entries, submissions_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        _write(pages, staging)
        os.chmod(staging, 0o755)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return entries

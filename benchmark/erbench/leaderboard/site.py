"""Render the static site: entries -> one page per board, the cost view, compare, protocol, data, submit
and per-submission pages, plus static files and the downloadable tables.

A pure function of the results: sorted iteration, fixed figure ids, a build date derived from the
results (or given), plotly.js copied from the installed plotly package (no CDN). The output
directory is replaced atomically and only if it is absent or an earlier build (it holds the
``.erbench-site`` marker).
"""

from __future__ import annotations

import datetime as dt
import inspect
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import jinja2
from markupsafe import Markup, escape

import erbench
from erbench import metrics
from erbench.conditions.catalog import CONDITIONS
from erbench.errors import ErbenchError
from erbench.leaderboard import boards, compare, cost, downloads, figures
from erbench.leaderboard.aggregate import (HEADLINE, HEADLINE_NORM, KEY, RULES, WORST, WORST_RATE, Entry, cell_key,
                                           headline_key, label, load, param_text)
from erbench.leaderboard.boards import Board
from erbench.protocol import PROTOCOLS
from erbench.results import PROVENANCE, SUMMARY
from erbench.spec import Submission, parse_submission, read_yaml

MARKER = ".erbench-site"
STATIC = ("style.css", "leaderboard.js", "favicon.svg")
FILTERS = (("dataset", "Track"), ("architecture", "Architecture"), ("entropy_model", "Entropy model"),
           ("defense_name", "Defense"), ("protocol", "Protocol"))


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    kind: str  # rank | id | pct | delta | acc | bits | xbits | beta | date | text
    help: str = ""
    better: str | None = None  # "lower" | "higher": the first click sorts that way
    sub: str = ""

    @property
    def numeric(self) -> bool:
        return self.kind not in ("id", "text", "date")

    @property
    def ci(self) -> str | None:
        return {"pct": "pct", "delta": "delta", "acc": "num"}.get(self.kind)


_COLUMNS = (
    Column("rank", "#", "rank", "rank within the group on this board's metric"),
    Column("id", "Submission", "id", "id; tags: defended (with its base entry), incomplete, degenerate, quick protocol"),
    Column("worst_overhead", "Worst rate attack", "pct", f"coded-bit overhead of the per-image worst rate attack at "
           f"{HEADLINE} vs. clean, 95% CI", "lower", HEADLINE),
    Column("worst_extra_bits", "Extra bits", "xbits", "extra coded bits per image under that attack (no CI stored)",
           "lower", "per image"),
    Column("worst_accuracy_delta", "Δ acc.", "delta", "accuracy change under the worst rate attack, 95% CI", "higher",
           "worst rate attack"),
    Column("blackbox_overhead", "Black-box attack", "pct", f"coded-bit overhead of attack.blackbox_rate at {HEADLINE}, "
           "95% CI", "lower", HEADLINE),
    Column("blackbox_extra_bits", "Extra bits", "xbits", "extra coded bits per image under it (no CI stored)", "lower",
           "per image"),
    Column("blackbox_accuracy_delta", "Δ acc.", "delta", "accuracy change under it, 95% CI", "higher", "black-box"),
    Column("ce_accuracy", "Acc. under CE-PGD", "acc", f"top-1 accuracy under attack.ce_pgd at {HEADLINE}, 95% CI",
           "higher", HEADLINE),
    Column("ce_accuracy_delta", "Δ acc.", "delta", "accuracy change under attack.ce_pgd, 95% CI", "higher", "CE-PGD"),
    Column("ce_overhead", "Rate under CE-PGD", "pct", "coded-bit overhead under attack.ce_pgd, 95% CI", "lower",
           "overhead"),
    Column("corruption_inflation", "Corruption inflation", "pct", "mean over the corruption cells (no-ops excluded) "
           "of max(0, overhead): a lower rate counts as zero, 95% CI", "lower", "mean of max(0, overhead)"),
    Column("corruption_overhead", "Signed mean", "pct", "plain mean of the corruption overheads, 95% CI; negative "
           "means the rate fell (information lost), not resilience", None, "corruption overhead"),
    Column("corruption_accuracy_delta", "Δ acc.", "delta", "mean accuracy change over the corruption cells, 95% CI",
           "higher", "corruptions"),
    Column("clean_accuracy", "Clean acc.", "acc", "top-1 accuracy from the decoded bitstream, clean, 95% CI",
           "higher"),
    Column("clean_bits_coded_mean", "Clean bits", "bits", "mean real coded bits per image, clean"),
    Column("entropy_model", "Entropy", "text", "entropy model family"),
    Column("beta", "β", "beta", "rate weight used in training"),
    Column("architecture", "Architecture", "text"),
    Column("defense_name", "Defense", "text", "input defense (its parameters on the entry page)"),
    Column("dataset", "Track", "text", "dataset"),
    Column("protocol", "Protocol", "text"),
    Column("created_utc", "Result date", "date", "UTC date of the newest run that computed one of the entry's cells"),
)
COLUMNS = {c.key: c for c in _COLUMNS}
TRAILING = ("clean_accuracy", "clean_bits_coded_mean", "entropy_model", "beta", "architecture", "defense_name",
            "dataset", "protocol", "created_utc")


def board_columns(board: Board) -> list[Column]:
    return [COLUMNS[k] for k in ("rank", "id", board.metric, *board.columns, *TRAILING)]


def sort_value(value) -> str:
    """The ``data-v`` sort key of a numeric cell: '' for missing (always sorted last), else repr."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(float(value))


def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _signed(x: float, fmt: str) -> str:
    """``x`` with a sign, '0' without one when it rounds to zero (never '-0.0')."""
    text = format(x, fmt)
    return text.replace("+", "").replace("-", "") if float(text.replace(",", "")) == 0 else text


def pct(x, digits: int = 1) -> str:
    return "—" if _missing(x) else _signed(x * 100, f"+.{digits}f") + "%"


def delta(x) -> str:
    return "—" if _missing(x) else _signed(x, "+.3f")


def xbits(x) -> str:
    """Extra bits with a sign: '+1,234', '-56'."""
    return "—" if _missing(x) else _signed(x, "+,.0f")


def num(x, fmt: str = ".3f") -> str:
    return "—" if _missing(x) else format(x, fmt)


_PREFIXES = ((1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"))


def si(x, unit: str, signed: bool = True) -> str:
    """``x`` in ``unit`` with an SI prefix and three significant digits: '+12.3 ms', '-4.40 µJ', '+1,234 s'."""
    if _missing(x):
        return "—"
    scale, prefix = next(((s, p) for s, p in _PREFIXES if abs(x) >= s), _PREFIXES[0])
    m = x / scale
    digits = 0 if abs(m) >= 100 else 1 if abs(m) >= 10 else 2
    return _signed(m, f"{'+' if signed else ''},.{digits}f") + f" {prefix}{unit}"


def beta(x) -> str:
    """β one way everywhere: 1e-4, 3e-5, 1.5e-3."""
    mantissa, exponent = f"{x:.2e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def ci(low, high, kind: str = "pct") -> str:
    if _missing(low) or _missing(high):
        return ""
    f = {"pct": pct, "delta": delta, "num": num}[kind]
    return f"[{f(low)}, {f(high)}]"


def cell(column: Column, row: dict) -> str:
    """The text of one board cell (without its CI)."""
    v = row[column.key]
    return {"pct": pct, "delta": delta, "acc": num, "bits": lambda x: num(x, ",.0f"), "xbits": xbits, "beta": beta,
            "date": lambda x: str(x)[:10], "rank": lambda x: "—" if x is None else str(x)}.get(column.kind, str)(v)


def breakable(text: str) -> Markup:
    """``text`` escaped, with a line-break opportunity after each underscore (long ids on a phone)."""
    return Markup(str(escape(text)).replace("_", "_<wbr>"))


def params(cell: dict) -> str:
    return param_text(*(cell[k] for k in ("severity", "norm", "eps", "variant", "steps", "seed")))


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("erbench.leaderboard", "templates"),
                             autoescape=jinja2.select_autoescape(["html"]), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters.update(pct=pct, delta=delta, num=num, sv=sort_value, params=params, missing=_missing, beta=beta,
                       breakable=breakable, xbits=xbits, airtime=lambda bits, link: si(cost.airtime_s(bits, link), "s"),
                       energy=lambda bits, link: si(cost.energy_j(bits, link), "J"))
    env.globals.update(ci=ci, tone=tone, cell=cell, version=erbench.__version__, headline=HEADLINE)
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
    return "ok" if tag == "complete" else "bad" if tag == "degenerate" else "info" if tag == "defended" else "warn"


def _status(row: dict) -> list[str]:
    tags = [] if row["complete"] else [f"incomplete: {row['n_missing']} missing"]
    tags += ["defended"] * (row["defense"] != "none")
    return tags + ["degenerate"] * row["degenerate"] + ["quick protocol"] * row["protocol_quick"]


def _provenance(entry: Entry) -> list[tuple[str, str, list[str]]]:
    return [(n, d, sorted({str(c[n]) for c in entry.cells})) for n, _, d in PROVENANCE if n in entry.cells[0]]


def _submission_page(env: jinja2.Environment, entry: Entry, meta: tuple[Path, Submission] | None,
                     defended: list[str], site: dict) -> str:
    cells = entry.cells
    attack_norms = {c["norm"] for c in cells if c["kind"] in ("attack", "aggregate") and c["norm"]}
    norms = sorted(attack_norms, key=lambda n: (n != HEADLINE_NORM, n))
    figs = {f"{m}-{n}": figures.attack_curves(cells, n, m) for n in norms for m in ("overhead", "accuracy")}
    if any(c["kind"] == "corruption" for c in cells):
        figs.update({f"heat-{m}": figures.corruption_heatmap(cells, m) for m in ("overhead", "accuracy")})
    figs["bits"] = figures.bits_distribution(entry.clean_bits, entry.worst_bits)
    tables = {k: figures.data_table(v) for k, v in figs.items()}
    return env.get_template("submission.html").render(
        root="../", e=entry, row=entry.row, status=_status(entry.row), meta=meta, norms=norms, figs=figs,
        tables=tables, rows=cells, provenance=_provenance(entry), defended=defended, worst=label(WORST),
        worst_cell=_worst_cell(cells), **site)


def _worst_cell(cells: list[dict]) -> dict | None:
    key = headline_key(WORST)
    return next((c for c in cells if cell_key(*(c.get(k) for k in KEY))[:4] == key), None)


def _protocol_page(env: jinja2.Environment, entries: list[Entry], site: dict) -> str:
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
        metrics_doc=downloads.markdown(inspect.cleandoc(metrics.__doc__), None),
        unregistered=sorted(used - set(PROTOCOLS)), **site)


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


def _board_page(env: jinja2.Environment, board: Board, rows: list[dict], site: dict) -> str:
    groups = boards.ranked(board, rows)
    column = COLUMNS[board.metric]
    figs = {"ranking": figures.ranking(board, groups, HEADLINE)} if rows else {}
    if board.key == "whitebox" and rows:
        figs["rate-accuracy"] = figures.rate_accuracy(rows)
    choices = {key: sorted({str(r[key]) for r in rows}) for key, _ in FILTERS}
    return env.get_template("board.html").render(
        root="", board=board, groups=groups, columns=board_columns(board), metric=column, filters=FILTERS,
        choices=choices, figs=figs, n=len(rows), n_complete=sum(r["complete"] for r in rows),
        summary=boards.family_summary(board, rows, pct if column.kind == "pct" else num), **site)


def _cost_page(env: jinja2.Environment, rows: list[dict], site: dict) -> str:
    return env.get_template("cost.html").render(
        root="", figs={}, groups=boards.ranked(boards.BOARDS[0], rows), uplinks=cost.UPLINKS, cases=cost.cases(rows),
        energy_per_bit=lambda link: si(cost.energy_j(1, link), "J/bit", signed=False), worst=label(WORST),
        csv=downloads.COST_CSV, **site)


def render(entries: list[Entry], submissions_dir: Path | None = None, *, build_date: str | None = None,
           repo_url: str | None = None, guide: str | None = None, data: dict[str, bytes] | None = None) -> dict[str, str]:
    """Every page as relative path -> HTML. ``guide``: the submission guide's Markdown (CONTRIBUTING.md);
    ``data``: the downloadable files (``downloads.files``) the data page lists."""
    env = _env()
    meta = _submissions(submissions_dir)
    rows = [{**e.row, "status": _status(e.row), "title": meta[e.id][1].title if e.id in meta else ""}
            for e in entries]
    shown = boards.shown(boards.BOARDS, rows)
    site = {"boards": shown, "build_date": build_date, "repo_url": repo_url,
            "guide_url": f"{repo_url}/blob/main/CONTRIBUTING.md" if repo_url else None}
    pages = {b.page: _board_page(env, b, rows, site) for b in shown}
    pages["cost.html"] = _cost_page(env, rows, site)
    pages["protocol.html"] = _protocol_page(env, entries, site)
    pages["compare.html"] = env.get_template("compare.html").render(
        root="", figs={}, compare_data=compare.profiles(entries), ids=[e.id for e in sorted(entries, key=lambda e: e.id)],
        **site)
    pages["data.html"] = env.get_template("data.html").render(
        root="", figs={}, files=downloads.listing(data or {}), citation=downloads.CITATION, study=downloads.STUDY,
        **site)
    pages["submit.html"] = env.get_template("submit.html").render(
        root="", figs={}, guide=downloads.markdown(guide, repo_url) if guide else None, **site)
    defended = {}
    for r in rows:
        if r["base"]:
            defended.setdefault(r["base"], []).append(r["id"])
    for e in entries:
        pages[f"s/{e.id}.html"] = _submission_page(env, e, meta.get(e.id), sorted(defended.get(e.id, [])), site)
    return pages


def build_date(entries: list[Entry], date: str | None = None) -> str | None:
    """The date printed as the build's: ``date`` (YYYY-MM-DD), else $SOURCE_DATE_EPOCH, else the newest
    result's; never the clock, so two builds of the same results are byte-identical."""
    if date:
        try:
            return dt.date.fromisoformat(date).isoformat()
        except ValueError:
            raise ErbenchError(f"'{date}' is not a date (YYYY-MM-DD)", field="--date") from None
    if os.environ.get("SOURCE_DATE_EPOCH"):
        return dt.datetime.fromtimestamp(int(os.environ["SOURCE_DATE_EPOCH"]), dt.timezone.utc).date().isoformat()
    return max((e.row["created_utc"][:10] for e in entries), default=None)


def _write(pages: dict[str, str], data: dict[str, bytes], dest: Path) -> None:
    for rel, html in sorted(pages.items()):
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html, encoding="utf-8")
    for rel, blob in sorted(data.items()):
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(blob)
    static = dest / "static"
    static.mkdir(exist_ok=True)
    for name in STATIC:
        (static / name).write_bytes(files("erbench.leaderboard").joinpath("static", name).read_bytes())
    import plotly

    shutil.copyfile(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", static / "plotly.min.js")
    (dest / ".nojekyll").write_text("")
    (dest / MARKER).write_text("built by `erbench leaderboard build`; the whole directory is replaced on rebuild\n")


def build(results_dir: Path, out_dir: Path, submissions_dir: Path | None = None, *, date: str | None = None,
          repo_url: str | None = None, guide: Path | None = None) -> list[Entry]:
    """Build the site from ``results_dir`` into ``out_dir``; returns the entries in index order.
    ``repo_url`` defaults to $GITHUB_SERVER_URL/$GITHUB_REPOSITORY (set in GitHub Actions)."""
    if out_dir.exists() and not (out_dir / MARKER).exists() and any(out_dir.iterdir()):
        raise ErbenchError("exists and is not a leaderboard build; refusing to replace it", file=out_dir)
    if repo_url is None and os.environ.get("GITHUB_REPOSITORY"):
        repo_url = f"{os.environ.get('GITHUB_SERVER_URL', 'https://github.com')}/{os.environ['GITHUB_REPOSITORY']}"
    entries = load(results_dir)
    text = guide.read_text(encoding="utf-8") if guide and guide.is_file() else None
    data = downloads.files(results_dir, entries)
    pages = render(entries, submissions_dir, build_date=build_date(entries, date), repo_url=repo_url, guide=text,
                   data=data)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        _write(pages, data, staging)
        os.chmod(staging, 0o755)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return entries

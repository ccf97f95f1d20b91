"""What the site offers to take away: the results tables, CSVs derived from them, the citation,
and the submission guide rendered from CONTRIBUTING.md. All derived at build time, deterministically."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from markdown_it import MarkdownIt

from erbench.leaderboard import cost
from erbench.leaderboard.aggregate import Entry
from erbench.results import PER_IMAGE_FILE, SUMMARY_FILE

BOARD_CSV, BOARD_SUMMARY, COST_CSV = "data/leaderboard.csv", "data/summary.parquet", "data/cost.csv"
STUDY = ("Milin Zhang, Mohammad Abdi, Shahriar Rifat, Francesco Restuccia. Resilience of Entropy Model in "
         "Distributed Neural Networks. ECCV 2024 (arXiv:2403.00942)")
CITATION = """@misc{erbench,
  title  = {erbench: a benchmark of the resilience of learned entropy models in split DNNs},
  author = {{erbench contributors}},
  year   = {2026},
  note   = {Version 0.1.0; see CITATION.cff in the repository}
}

@inproceedings{zhang2024resilience,
  title     = {Resilience of Entropy Model in Distributed Neural Networks},
  author    = {Zhang, Milin and Abdi, Mohammad and Rifat, Shahriar and Restuccia, Francesco},
  booktitle = {European Conference on Computer Vision (ECCV)},
  year      = {2024},
  eprint    = {2403.00942},
  archivePrefix = {arXiv}
}"""


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False, lineterminator="\n").encode()


def _parquet(frame: pd.DataFrame) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
    return sink.getvalue()


def files(results_dir: Path, entries: list[Entry]) -> dict[str, bytes]:
    """Site path -> bytes: per entry its two Parquet tables as committed and its summary as CSV; for the
    board every entry's summary rows (Parquet and CSV), the aggregated rows the boards rank (CSV) and the
    cost view's table (CSV)."""
    out: dict[str, bytes] = {}
    summaries = []
    for e in sorted(entries, key=lambda e: e.id):
        for name in (SUMMARY_FILE, PER_IMAGE_FILE):
            out[f"data/{e.id}/{name}"] = (results_dir / e.id / name).read_bytes()
        summary = pq.read_table(results_dir / e.id / SUMMARY_FILE).to_pandas()
        out[f"data/{e.id}/summary.csv"] = _csv(summary)
        summaries.append(summary)
    if summaries:
        board = pd.concat(summaries, ignore_index=True)
        out[BOARD_SUMMARY] = _parquet(board)
        out[BOARD_SUMMARY.replace(".parquet", ".csv")] = _csv(board)
        rows = [e.row for e in sorted(entries, key=lambda e: e.id)]
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        out[BOARD_CSV] = text.getvalue().encode()
        out[COST_CSV] = _csv(cost.table(rows))
    return out


def listing(data: dict[str, bytes]) -> list[tuple[str, int]]:
    """(site path, bytes) of every data file, sorted."""
    return sorted((rel, len(blob)) for rel, blob in data.items())


def markdown(text: str, repo_url: str | None) -> str:
    """CommonMark -> HTML with raw HTML escaped; relative links point into the repository (or are dropped)."""
    md = MarkdownIt("commonmark", {"html": False})
    tokens = md.parse(text)
    for token in tokens:
        for child in token.children or ():
            href = child.attrGet("href") if child.type == "link_open" else None
            if href and "://" not in href and not href.startswith(("#", "mailto:")):
                child.attrSet("href", f"{repo_url}/blob/main/{href.lstrip('./')}" if repo_url else "#")
    return md.renderer.render(tokens, md.options, {})

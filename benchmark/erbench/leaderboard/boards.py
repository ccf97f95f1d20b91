"""Boards: one ranking per threat model, over groups of entries that never share a ranking.

A board names one column of the aggregated rows (``aggregate.summarize``) and its good direction;
the ranks, the groups and the family summary are computed here from those rows alone.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from erbench.leaderboard.aggregate import HEADLINE


@dataclass(frozen=True)
class Board:
    key: str
    page: str
    title: str
    metric: str  # the ranked column of the aggregated row
    better: str  # "lower" | "higher"
    what: str
    columns: tuple[str, ...]  # the board's other columns, after the ranked one
    optional: bool = False  # shown only when some entry has the metric

    def value(self, row: dict) -> float:
        return row[self.metric]


BOARDS = (
    Board("whitebox", "index.html", "White-box rate attacks", "worst_overhead", "lower",
          f"coded-bit overhead of the per-image worst rate attack at {HEADLINE} (attack.worst_rate: every rate "
          "attack of the protocol, gradient-based ones with full access to the model)",
          ("worst_extra_bits", "worst_accuracy_delta", "ce_accuracy", "corruption_inflation")),
    Board("blackbox", "blackbox.html", "Black-box rate attack", "blackbox_overhead", "lower",
          f"coded-bit overhead of attack.blackbox_rate at {HEADLINE}: a Square-Attack search that sees only the "
          "coded size of the real bitstream", ("blackbox_extra_bits", "blackbox_accuracy_delta", "worst_overhead"),
          optional=True),
    Board("corruptions", "corruptions.html", "Corruptions", "corruption_inflation", "lower",
          "corruption rate inflation: mean over the 19 corruptions × 5 severities (no-op cells excluded) of "
          "max(0, overhead); a corruption that lowers the rate counts as zero, never as a gain",
          ("corruption_overhead", "corruption_accuracy_delta", "worst_overhead")),
    Board("classification", "classification.html", "Classification attack", "ce_accuracy", "higher",
          f"top-1 accuracy (decoded) under attack.ce_pgd, untargeted cross-entropy PGD, at {HEADLINE}",
          ("ce_accuracy_delta", "ce_overhead", "worst_overhead")),
)
GROUPS = {"main": "Undefended · full protocol", "defended": "Defended: an input defense runs before encoding",
          "quick": "Quick protocol: fewer images and iterations, not comparable with the full protocol",
          "incomplete": "Incomplete: a required cell is missing (not ranked)",
          "degenerate": "Degenerate models: they look immune to attacks (not ranked)"}
RANKED = ("main", "defended", "quick")


def shown(boards: tuple[Board, ...], rows: list[dict]) -> tuple[Board, ...]:
    """The boards to build: optional ones only when some row has their metric."""
    return tuple(b for b in boards if not b.optional or any(not math.isnan(b.value(r)) for r in rows))


def group(row: dict) -> str:
    if row["degenerate"]:
        return "degenerate"
    if not row["complete"]:
        return "incomplete"
    return "quick" if row["protocol_quick"] else "defended" if row["defense"] != "none" else "main"


def _key(board: Board, row: dict) -> tuple:
    v = board.value(row)
    missing = v is None or math.isnan(v)
    return (missing, 0.0 if missing else v if board.better == "lower" else -v, row["id"])


def ranked(board: Board, rows: list[dict]) -> list[tuple[str, str, list[dict]]]:
    """(group key, title, rows) in group order; rows sorted on the board's metric, each with its ``rank``
    within the group (None in unranked groups and for a missing value). Several protocols rank apart."""
    protocols = sorted({r["protocol"] for r in rows})
    out = []
    for g, title in GROUPS.items():
        for protocol in protocols:
            members = sorted((r for r in rows if group(r) == g and r["protocol"] == protocol),
                             key=lambda r: _key(board, r))
            if not members:
                continue
            out.append((g, title + (f" · {protocol}" if len(protocols) > 1 else ""),
                        [{**r, "rank": i + 1 if g in RANKED and not math.isnan(board.value(r)) else None}
                         for i, r in enumerate(members)]))
    return out


def family_summary(board: Board, rows: list[dict], fmt) -> str | None:
    """A sentence on the entropy-model families of the ranked undefended full-protocol rows, e.g.
    'factorized entries are the most resilient on this board: median +3.0% vs. +53.7% for hyperprior;
    ranks 1-12 are all factorized.' None with fewer than two families."""
    main = next((rs for g, _, rs in ranked(board, rows) if g == "main"), [])
    main = [r for r in main if r["rank"] is not None]
    families = sorted({r["entropy_model"] for r in main})
    if len(families) < 2:
        return None
    medians = {f: statistics.median(board.value(r) for r in main if r["entropy_model"] == f) for f in families}
    best = sorted(families, key=lambda f: medians[f] if board.better == "lower" else -medians[f])[0]
    run = next((i for i, r in enumerate(main) if r["entropy_model"] != best), len(main))
    others = "; ".join(f"{fmt(medians[f])} for {f}" for f in families if f != best)
    tail = (f" ranks 1–{run} are all {best}." if run > 1 else f" rank 1 is {best}." if run == 1
            else f" rank 1 is {main[0]['entropy_model']}.")
    return (f"{best.capitalize()} entries are the most resilient on this board: median {fmt(medians[best])} "
            f"vs. {others};{tail}")

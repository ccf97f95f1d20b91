"""Tables: ``summary`` and ``per_image`` derived from a plan's committed parts.

Derived here, never stored in a part: ``prediction_kept`` (against the clean cell), the
``attack.worst_rate`` aggregate rows (per image, the rate-attack cell with the most coded bits),
and every summary row (metrics against the clean cell, degeneracy of the whole submission).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict

import pandas as pd

from erbench.cells import Cell
from erbench.data.manifest import load_manifest
from erbench.engine.plan import Plan
from erbench.metrics import cell_metrics, degeneracy
from erbench.protocol import PROTOCOLS, WORST_RATE
from erbench.results import PROVENANCE, SUBMISSION

STREAMS = {"factorized": 1, "hyperprior": 2}  # coded streams per image (y; y and z)
ROW_COLUMNS = [name for name, _, _ in SUBMISSION + PROVENANCE]


def _worst_case(per_image: pd.DataFrame, cells: list[Cell], groups: dict) -> tuple[list[Cell], list[pd.DataFrame]]:
    """``attack.worst_rate`` rows (kind 'aggregate'), one per (norm, eps) whose rate-attack cells all ran:
    per image, the row of the cell with the most coded bits (the first such cell on ties)."""
    ran = {cell: i for i, cell in enumerate(cells)}
    out_cells, frames = [], []
    for (norm, eps), need in groups.items():
        if not all(c in ran for c in need):
            continue
        rows = per_image[per_image["_cell"].isin([ran[c] for c in need])]
        rows = rows.sort_values(["image_index", "bits_coded", "_cell"], ascending=[True, False, True], kind="stable")
        worst = Cell(WORST_RATE, norm=norm, eps=eps)
        frame = rows.drop_duplicates("image_index").assign(**asdict(worst), kind="aggregate",
                                                           _cell=len(cells) + len(out_cells))
        out_cells.append(worst)
        frames.append(frame)
    return out_cells, frames


def _summarize(per_image: pd.DataFrame, cells: list[Cell], num_classes: int, n_streams: int) -> pd.DataFrame:
    clean = per_image[per_image["condition"] == "clean"].set_index("image_index")
    reason = degeneracy(clean["correct"].mean(), num_classes, clean["bits_coded"].mean(),
                        clean["bits_estimated"].mean(), n_streams)
    rows = []
    for i, group in per_image.groupby("_cell", sort=True):
        cell = cells[i]
        ref = clean.loc[group["image_index"]]
        first = group.iloc[0]
        row = {**asdict(cell), "kind": first["kind"], **{c: first[c] for c in ROW_COLUMNS}}
        row.update(cell_metrics(group["bits_coded"].to_numpy(), group["correct"].to_numpy(),
                                ref["bits_coded"].to_numpy(), ref["correct"].to_numpy()))
        row.update(
            bits_coded_hyper_mean=group["bits_coded_hyper"].mean(),
            bits_estimated_mean=group["bits_estimated"].mean(),
            decode_ok_all=bool(group["decode_ok"].all()),
            prediction_kept_rate=group["prediction_kept"].mean(),
            perturbation_linf_max=group["perturbation_linf"].max(),
            perturbation_l2_max=group["perturbation_l2"].max(),
            noop=cell.condition != "clean" and bool((group["perturbation_linf"] == 0).all()),
            degenerate=reason is not None, degenerate_reason=reason,
        )
        rows.append(row)
    return pd.DataFrame(rows)


def derive(plan: Plan, read: Callable[[str], pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary, per_image) of every cell of ``plan``, reading each committed part with ``read(key)``."""
    cells = [t.cell for t in plan.tasks]
    frames = [read(t.key).assign(_cell=i) for i, t in enumerate(plan.tasks)]
    per_image = pd.concat(frames, ignore_index=True)
    clean_pred = per_image.loc[per_image["condition"] == "clean"].set_index("image_index")["pred"]
    per_image["prediction_kept"] = per_image["pred"].to_numpy() == clean_pred.loc[per_image["image_index"]].to_numpy()
    identity = plan.identity
    groups = PROTOCOLS.get(identity["protocol"]).worst_case(identity["defense"] != "none")
    worst_cells, worst_frames = _worst_case(per_image, cells, groups)
    cells += worst_cells
    per_image = pd.concat([per_image, *worst_frames], ignore_index=True)
    summary = _summarize(per_image, cells, load_manifest(identity["dataset"]).num_classes,
                         STREAMS[per_image["entropy_model"].iloc[0]])
    return summary, per_image.drop(columns="_cell")

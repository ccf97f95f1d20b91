"""Evaluate one submission under a protocol: conditions -> codec -> metrics -> results tables."""

from __future__ import annotations

import warnings
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from erbench.codec import measure
from erbench.conditions import CONDITIONS, Cell, Context
from erbench.data.datasets import load_dataset
from erbench.data.manifest import manifest_sha256
from erbench.errors import ErbenchError
from erbench.metrics import cell_metrics, degeneracy
from erbench.models.loader import load_model
from erbench.protocol import DEFAULT_PROTOCOL, PROTOCOLS, WORST_RATE
from erbench.results import provenance, write_results
from erbench.spec import load_submission


@dataclass
class Evaluation:
    summary: pd.DataFrame
    per_image: pd.DataFrame
    path: Path | None = None


def _perturbation(images: np.ndarray, clean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    diff = (images.astype(np.float64) - clean.astype(np.float64)) / 255.0
    flat = diff.reshape(len(diff), -1)
    return np.abs(flat).max(1), np.sqrt((flat**2).sum(1))


def _run_cell(cell: Cell, ctx: Context) -> pd.DataFrame:
    condition = CONDITIONS.get(cell.condition)
    # only adaptive attacks see the submission's defense; it always runs when the images are coded
    with nullcontext() if getattr(condition, "adaptive", False) else ctx.model.without_defense():
        generated = condition.generate(cell, ctx)
    m = measure(ctx.model, generated.images, ctx.device, ctx.batch_size)
    bad = int((~m.pop("finite")).sum())
    if bad:
        raise ErbenchError(f"the model produced NaN/Inf under {cell.label()} on {bad} of {len(ctx.indices)} images")
    linf, l2 = _perturbation(generated.images, ctx.images)
    frame = pd.DataFrame({**asdict(cell), "kind": condition.kind, "image_index": ctx.indices,
                          "label": ctx.labels, **m, "perturbation_linf": linf, "perturbation_l2": l2,
                          **generated.extra})
    frame["correct"] = frame["pred"] == frame["label"]
    return frame


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
        row = {**asdict(cell), "kind": group["kind"].iloc[0]}
        row.update(cell_metrics(group["bits_coded"].to_numpy(), group["correct"].to_numpy(),
                                ref["bits_coded"].to_numpy(), ref["correct"].to_numpy()))
        row.update(
            bits_coded_hyper_mean=group["bits_coded_hyper"].mean(),
            bits_estimated_mean=group["bits_estimated"].mean(),
            decode_ok_all=bool(group["decode_ok"].all()),
            prediction_kept_rate=group["prediction_kept"].mean(),
            perturbation_linf_max=group["perturbation_linf"].max(),
            perturbation_l2_max=group["perturbation_l2"].max(),
            degenerate=reason is not None, degenerate_reason=reason,
        )
        rows.append(row)
    return pd.DataFrame(rows)


def evaluate(
    spec_path: str | Path,
    out_dir: str | Path | None = "results",
    *,
    protocol: str = DEFAULT_PROTOCOL,
    conditions: tuple[str, ...] = (),
    device: str = "cpu",
    batch_size: int = 64,
    limit: int | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> Evaluation:
    """Run the protocol's cells on a submission; write the two tables unless ``out_dir`` is None.

    Every user mistake raises ErbenchError before anything is written.
    """
    spec_path = Path(spec_path)
    sub = load_submission(spec_path)
    proto = PROTOCOLS.get(protocol, field="--protocol")
    defended = sub.defense is not None
    cells = list(proto.select(conditions, defended))
    if conditions and len(cells) == 1:
        raise ErbenchError(f"condition filter {' '.join(conditions)!r} matches no condition of {proto.name}",
                           field="--conditions")
    if batch_size < 1:
        raise ErbenchError("must be at least 1", field="--batch-size")
    model = load_model(sub, spec_path, device)
    data = load_dataset(sub.dataset, "test", file=str(spec_path))
    n = min(x for x in (len(data), limit, proto.max_images) if x is not None)
    ctx = Context(data, np.arange(n), model, device, batch_size, Path(cache_dir) if cache_dir else None, progress)
    # taken before the run: the checkout may change while a long battery runs
    prov = provenance(protocol=proto.name, quick=proto.quick, weights_sha256=sub.weights.sha256,
                      manifest_sha256=manifest_sha256(sub.dataset), dataset_sha256=data.sha256, device=device)

    frames = []
    for i, cell in enumerate(tqdm(cells, desc=sub.id, disable=not progress, unit="cell")):
        frame = _run_cell(cell, ctx)
        frame["_cell"] = i
        frames.append(frame)
    per_image = pd.concat(frames, ignore_index=True)
    clean_pred = per_image.loc[per_image["condition"] == "clean"].set_index("image_index")["pred"]
    per_image["prediction_kept"] = per_image["pred"].to_numpy() == clean_pred.loc[per_image["image_index"]].to_numpy()
    worst_cells, worst_frames = _worst_case(per_image, cells, proto.worst_case(defended))
    cells += worst_cells
    per_image = pd.concat([per_image, *worst_frames], ignore_index=True)

    summary = _summarize(per_image, cells, data.manifest.num_classes, len(model.entropy.latents))
    per_image = per_image.drop(columns="_cell")
    meta = {"submission_id": sub.id, "dataset": sub.dataset, "architecture": sub.model.architecture,
            "entropy_model": sub.entropy_model, "beta": sub.beta,
            "defense": sub.defense.label() if defended else "none"}
    for frame in (summary, per_image):
        for key, value in {**meta, **prov}.items():
            frame[key] = value
    if summary["degenerate"].iloc[0]:
        warnings.warn(f"{sub.id} is DEGENERATE ({summary['degenerate_reason'].iloc[0]}): "
                      "it will look immune to entropy attacks; do not read its overheads as robustness")
    path = write_results(Path(out_dir), sub.id, summary, per_image) if out_dir is not None else None
    return Evaluation(summary, per_image, path)

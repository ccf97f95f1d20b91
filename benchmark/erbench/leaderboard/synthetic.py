"""Synthetic results with the full battery, written through the real writer (tests, build benchmark).

Cells: clean, 19 corruptions x 5 severities, rate PGD (paper, strong, fgsm at L-inf 2/4/8/16;
l2 at 0.5/1/2), CE PGD, sign noise and stealth rate attacks at L-inf 2/4/8/16, and the per-image
worst-case rate row at every L-inf eps. The numbers are random but plausible and reproducible.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from erbench.conditions.corruptions import CORRUPTIONS, SEVERITIES
from erbench.metrics import cell_metrics
from erbench.results import PER_IMAGE_COLUMNS, SUMMARY_COLUMNS, write_results

LINF = tuple(e / 255 for e in (2, 4, 8, 16))
RATE_LINF = ("paper", "strong", "fgsm")
WORST = "attack.worst_rate"


def battery() -> list[dict]:
    """The cells, as dicts of the cell columns (kind included)."""
    cells = [dict(condition="clean", kind="clean")]
    cells += [dict(condition=f"corruption.{c}", kind="corruption", severity=s) for c in CORRUPTIONS for s in SEVERITIES]
    for eps in LINF:
        cells += [dict(condition="attack.rate_pgd", kind="attack", norm="linf", eps=eps, variant=v,
                       steps=1 if v == "fgsm" else 50) for v in RATE_LINF]
        cells += [dict(condition=c, kind="attack", norm="linf", eps=eps, steps=s)
                   for c, s in (("attack.ce_pgd", 50), ("attack.noise", None), ("attack.stealth_rate", 50))]
    cells += [dict(condition="attack.rate_pgd", kind="attack", norm="l2", eps=e, variant="l2", steps=50)
              for e in (0.5, 1.0, 2.0)]
    cells += [dict(condition=WORST, kind="aggregate", norm="linf", eps=eps) for eps in LINF]
    return cells


def _per_image(cell: dict, rng: np.random.Generator, clean_bits: np.ndarray, labels: np.ndarray,
               strength: float, worst: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    n = len(labels)
    if worst is not None:
        return worst
    if cell["kind"] == "clean":
        return clean_bits, rng.random(n) < 0.95
    scale = cell.get("severity") or (cell.get("eps") or 0) * (3 if cell.get("norm") == "l2" else 85)
    factor = 1 + strength * scale * rng.normal(0.08, 0.05) + rng.normal(0, 0.03, n)
    if cell["condition"] in ("attack.ce_pgd", "attack.noise"):
        factor = 1 + (factor - 1) * 0.2
    bits = np.maximum(64, (clean_bits * factor).round()).astype(np.int64)
    return bits, rng.random(n) < max(0.1, 0.95 - 0.04 * scale)


def synthetic_submission(out_dir: Path, sid: str, n_images: int = 32, seed: int = 0, drop: tuple[str, ...] = ()) -> Path:
    """Write ``out_dir/sid`` with the full battery; ``drop`` removes cells whose condition starts with a prefix."""
    rng = np.random.default_rng(seed)
    family = ("factorized", "hyperprior")[seed % 2]
    beta = (1e-3, 1e-4, 1e-5)[seed % 3]
    meta = dict(submission_id=sid, dataset="digits", architecture=f"small_cnn_{family}", entropy_model=family, beta=beta)
    prov = dict(schema_version="1", protocol="erbench-v1", protocol_quick=False, erbench_version="0.1.0",
                git_sha="0" * 40, weights_sha256=f"{seed:064x}", manifest_sha256="a" * 64, dataset_sha256="b" * 64,
                torch_version="2.14.1", compressai_version="1.2.8", device="cpu", created_utc="2026-01-01T00:00:00+00:00")
    labels = rng.integers(0, 10, n_images)
    clean_bits = rng.normal(300 + 400 * (seed % 5), 40, n_images).round().clip(64).astype(np.int64)
    strength = rng.uniform(0.2, 2.0)
    cells = [c for c in battery() if not c["condition"].startswith(drop or ("\0",))]
    generated: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
    summary, scalars, arrays = [], [], []
    for cell in cells:
        worst = None
        if cell["kind"] == "aggregate":
            rate = [v for k, v in generated.items()
                    if k[0] in ("attack.rate_pgd", "attack.stealth_rate") and k[1:3] == ("linf", cell["eps"])]
            stack = np.stack([b for b, _ in rate])
            pick = stack.argmax(0)
            worst = stack[pick, np.arange(n_images)], np.stack([c for _, c in rate])[pick, np.arange(n_images)]
        bits, correct = _per_image(cell, rng, clean_bits, labels, strength, worst)
        generated[(cell["condition"], cell.get("norm"), cell.get("eps"), cell.get("variant"))] = bits, correct
        clean_correct = generated[("clean", None, None, None)][1]
        cols = {**meta, "kind": cell["kind"], "condition": cell["condition"], "seed": 0,
                **{k: cell.get(k) for k in ("severity", "norm", "eps", "variant", "steps")}, **prov}
        m = cell_metrics(bits, correct, clean_bits, clean_correct)
        summary.append({**cols, **m, "bits_coded_hyper_mean": 0.0, "bits_estimated_mean": m["bits_coded_mean"] - 50,
                        "decode_ok_all": True, "prediction_kept_rate": float((correct == clean_correct).mean()),
                        "perturbation_linf_max": cell.get("eps") or 0.0, "perturbation_l2_max": 0.0,
                        "degenerate": False, "degenerate_reason": None})
        scalars.append(cols)
        arrays.append({"image_index": np.arange(n_images), "label": labels, "correct": correct,
                       "pred": np.where(correct, labels, (labels + 1) % 10), "prediction_kept": correct == clean_correct,
                       "bits_coded": bits, "bits_estimated": bits - 50.0,
                       "perturbation_linf": np.full(n_images, cell.get("eps") or 0.0)})
    per_image = pd.DataFrame(scalars)
    per_image = per_image.loc[per_image.index.repeat(n_images)].reset_index(drop=True)
    per_image = per_image.assign(**{k: np.concatenate([a[k] for a in arrays]) for k in arrays[0]},
                                 bits_coded_hyper=0, bits_estimated_hyper=0.0, decode_ok=True, perturbation_l2=0.0)
    summary = pd.DataFrame(summary).reindex(columns=[c for c, _, _ in SUMMARY_COLUMNS])
    per_image = per_image.reindex(columns=[c for c, _, _ in PER_IMAGE_COLUMNS])
    return write_results(out_dir, sid, summary, per_image)

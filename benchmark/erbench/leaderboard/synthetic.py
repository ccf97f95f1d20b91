"""Synthetic results of a protocol's full battery, written through the real writer (tests, build benchmark).

Every cell of the protocol plus the ``attack.worst_rate`` row of each (norm, eps), computed per
image from the rate attacks as the runner does. The numbers are random but plausible and reproducible.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from erbench.cells import Cell
from erbench.conditions.catalog import CONDITIONS
from erbench.metrics import cell_metrics
from erbench.protocol import DEFAULT_PROTOCOL, PROTOCOLS, WORST_RATE
from erbench.results import PER_IMAGE_COLUMNS, SCHEMA_VERSION, SUMMARY_COLUMNS, write_results


def battery(protocol: str = DEFAULT_PROTOCOL) -> list[tuple[Cell, str, tuple[Cell, ...]]]:
    """(cell, kind, rate-attack cells it is the worst case of) for every row of the protocol's results."""
    proto = PROTOCOLS.get(protocol)
    rows = [(c, CONDITIONS.meta(c.condition).kind, ()) for c in proto.cells]
    worst = proto.worst_case()
    return rows + [(Cell(WORST_RATE, norm=n, eps=e), "aggregate", group) for (n, e), group in worst.items()]


def _per_image(cell: Cell, kind: str, rng: np.random.Generator, clean_bits: np.ndarray, labels: np.ndarray,
               strength: float) -> tuple[np.ndarray, np.ndarray]:
    n = len(labels)
    if kind == "clean":
        return clean_bits, rng.random(n) < 0.95
    scale = cell.severity or (cell.eps or 0) * (3 if cell.norm == "l2" else 85)
    factor = 1 + strength * scale * rng.normal(0.08, 0.05) + rng.normal(0, 0.03, n)
    if cell.condition in ("attack.ce_pgd", "attack.noise"):
        factor = 1 + (factor - 1) * 0.2
    bits = np.maximum(64, (clean_bits * factor).round()).astype(np.int64)
    return bits, rng.random(n) < max(0.1, 0.95 - 0.04 * scale)


def synthetic_submission(out_dir: Path, sid: str, n_images: int = 32, seed: int = 0, drop: tuple[str, ...] = (),
                         protocol: str = DEFAULT_PROTOCOL, defense: str = "none", weights_seed: int | None = None,
                         created: str = "2026-01-01T00:00:00+00:00") -> Path:
    """Write ``out_dir/sid``; ``drop`` removes the cells whose condition starts with one of these prefixes.
    ``weights_seed`` (default ``seed``) sets the weights sha256: equal for a defended entry and its base."""
    rng = np.random.default_rng(seed)
    family = ("factorized", "hyperprior")[seed % 2]
    beta = (1e-3, 1e-4, 1e-5)[seed % 3]
    meta = dict(submission_id=sid, dataset="digits", architecture=f"small_cnn_{family}", entropy_model=family,
                beta=beta, defense=defense)  # columns the schema lacks are dropped by the reindex below
    prov = dict(schema_version=SCHEMA_VERSION, protocol=protocol, protocol_quick=PROTOCOLS.get(protocol).quick,
                erbench_version="0.1.0", git_sha="0" * 40, weights_sha256=f"{seed if weights_seed is None else weights_seed:064x}", manifest_sha256="a" * 64,
                dataset_sha256="b" * 64, torch_version="2.14.1", compressai_version="1.2.8", device="cpu",
                created_utc=created)
    labels = rng.integers(0, 10, n_images)
    clean_bits = rng.normal(300 + 400 * (seed % 5), 40, n_images).round().clip(64).astype(np.int64)
    strength = rng.uniform(0.2, 2.0)
    generated: dict[Cell, tuple[np.ndarray, np.ndarray]] = {}
    summary, scalars, arrays = [], [], []
    for cell, kind, group in battery(protocol):
        if cell.condition.startswith(drop or ("\0",)) or not all(c in generated for c in group):
            continue
        if group:  # per image, the rate attack with the most coded bits (the first on ties)
            bits_all, correct_all = (np.stack([generated[c][i] for c in group]) for i in (0, 1))
            pick = bits_all.argmax(0)
            bits, correct = bits_all[pick, np.arange(n_images)], correct_all[pick, np.arange(n_images)]
        else:
            bits, correct = _per_image(cell, kind, rng, clean_bits, labels, strength)
        generated[cell] = bits, correct
        change = cell.eps or 0.05 * (cell.severity or 0)  # a synthetic perturbation size; 0 only for clean
        clean_correct = generated[Cell("clean")][1]
        cols = {**meta, **asdict(cell), "kind": kind, **prov}
        m = cell_metrics(bits, correct, clean_bits, clean_correct)
        summary.append({**cols, **m, "bits_coded_hyper_mean": 0.0, "bits_estimated_mean": m["bits_coded_mean"] - 50,
                        "decode_ok_all": True, "prediction_kept_rate": float((correct == clean_correct).mean()),
                        "perturbation_linf_max": change, "perturbation_l2_max": 0.0, "noop": False,
                        "degenerate": False, "degenerate_reason": None})
        scalars.append(cols)
        arrays.append({"image_index": np.arange(n_images), "label": labels, "correct": correct,
                       "pred": np.where(correct, labels, (labels + 1) % 10),
                       "prediction_kept": correct == clean_correct,
                       "bits_coded": bits, "bits_estimated": bits - 50.0,
                       "perturbation_linf": np.full(n_images, change)})
    per_image = pd.DataFrame(scalars)
    per_image = per_image.loc[per_image.index.repeat(n_images)].reset_index(drop=True)
    per_image = per_image.assign(**{k: np.concatenate([a[k] for a in arrays]) for k in arrays[0]},
                                 bits_coded_hyper=0, bits_estimated_hyper=0.0, decode_ok=True, perturbation_l2=0.0)
    summary = pd.DataFrame(summary).reindex(columns=[c for c, _, _ in SUMMARY_COLUMNS])
    per_image = per_image.reindex(columns=[c for c, _, _ in PER_IMAGE_COLUMNS])
    return write_results(out_dir, sid, summary, per_image)

"""Worker: one cell of one submission -> its per-image rows (a pure function of the job).

A worker process keeps the submission's model and dataset loaded between cells (``context``);
the job carries everything else. Executors decide only where this runs.
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from erbench.codec import measure
from erbench.conditions import CONDITIONS, Context
from erbench.data.datasets import load_dataset
from erbench.engine.plan import Task
from erbench.errors import ErbenchError
from erbench.models.loader import load_model
from erbench.spec import load_submission


@dataclass(frozen=True)
class Settings:
    """How cells are computed. The device enters every cell's key; the batch size, the threads and
    the cache directory change no row (tests/test_reproducibility.py); the data root of a real track
    neither (the dataset's sha256 is in the key), nor the root of a pre-rendered corruption set (each
    row records the sha256 of what it read)."""

    device: str = "cpu"
    batch_size: int = 64
    cache_dir: str | None = None
    threads: int = 1
    data_root: str | None = None
    corruption_root: str | None = None


@dataclass(frozen=True)
class Job:
    spec_path: str
    task: Task
    n_images: int
    settings: Settings
    columns: dict  # submission and provenance columns of every row


def set_threads(threads: int) -> None:
    """torch's intra-op threads for this process (one per worker by default: small convolutions on
    an oversubscribed machine run several times slower with more)."""
    torch.set_num_threads(threads)


def forget() -> None:
    """Drop the loaded submission: the next ``context`` loads (and verifies) it again."""
    _loaded.cache_clear()
    context.cache_clear()


@lru_cache(maxsize=1)
def _loaded(spec_path: str, device: str, data_root: str | None):
    sub = load_submission(spec_path)
    return load_model(sub, spec_path, device), load_dataset(sub.dataset, "test", file=spec_path, root=data_root)


@lru_cache(maxsize=1)
def context(spec_path: str, n_images: int, settings: Settings) -> Context:
    """The submission's loaded model and dataset on its first ``n_images`` test images, built once per process."""
    model, data = _loaded(spec_path, settings.device, settings.data_root)
    cache = Path(settings.cache_dir) if settings.cache_dir else None
    return Context(data, np.arange(n_images), model, settings.device, settings.batch_size, cache, progress=False,
                   corruption_root=Path(settings.corruption_root) if settings.corruption_root else None)


def _perturbation(images: np.ndarray, clean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    diff = (images.astype(np.float64) - clean.astype(np.float64)) / 255.0
    flat = diff.reshape(len(diff), -1)
    return np.abs(flat).max(1), np.sqrt((flat**2).sum(1))


def run_cell(cell, ctx: Context) -> pd.DataFrame:
    """The per-image rows of one cell (without the submission and provenance columns)."""
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
                          "queries": pd.array([None] * len(linf), dtype="Int64"),
                          "corruption_sha256": np.full(len(linf), None, dtype=object), **generated.extra})
    frame["correct"] = frame["pred"] == frame["label"]
    return frame


def run(job: Job) -> pd.DataFrame:
    """Compute one job's rows, submission and provenance columns included; ``attrs["seconds"]`` is
    the cell's compute time (stored with the part, it calibrates the plan's costs)."""
    ctx = context(job.spec_path, job.n_images, job.settings)
    start = time.perf_counter()
    frame = run_cell(job.task.cell, ctx)
    for name, value in job.columns.items():
        frame[name] = value
    frame.attrs["seconds"] = time.perf_counter() - start
    return frame


# --- worker processes -----------------------------------------------------------------------------

def init_process(threads: int, parent: int) -> None:
    """Initializer of a worker process: its thread count, and exit when the parent is gone (a killed
    driver must not leave workers computing cells nobody will commit)."""
    set_threads(threads)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()

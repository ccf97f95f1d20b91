"""The 19 ``imagecorruptions`` corruptions at severities 1-5, reproducible and cached.

Every image is corrupted with NumPy's global generator seeded from (corruption, severity,
dataset index), so the same image, corruption and severity give the same pixels on every run and
for any subset or batch size. Corrupted images are cached on disk in chunks (``--cache-dir``),
keyed by the dataset's sha256, so ``glass_blur`` is computed once per machine, not per model.
"""

from __future__ import annotations

import os
import tempfile
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from erbench.conditions.base import Cell, Context, Generated
from erbench.conditions.catalog import CORRUPTIONS, SEVERITIES  # noqa: F401  (re-exported)
from erbench.conditions.imagecorruptions_compat import imagecorruptions

CACHE_CHUNK = 64
CACHE_VERSION = "ic1.1.2-compat2"


def corruption_seed(name: str, severity: int, index: int) -> int:
    return zlib.crc32(f"{name}:{severity}:{index}".encode())


def corrupt_one(image: np.ndarray, name: str, severity: int, index: int) -> np.ndarray:
    np.random.seed(corruption_seed(name, severity, index))
    out = imagecorruptions().corrupt(image, severity=severity, corruption_name=name)
    return out.astype(np.uint8, copy=False)


def _corrupt_chunk(images: np.ndarray, indices: np.ndarray, name: str, severity: int) -> np.ndarray:
    return np.stack([corrupt_one(img, name, severity, int(i)) for img, i in zip(images, indices)])


def _atomic_save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        np.save(f, array)
    os.replace(tmp, path)


class Corruption:
    kind = "corruption"

    def __init__(self, name: str):
        self.name = name
        self.summary = f"imagecorruptions '{name}' (Hendrycks & Dietterich), severity 1-5"

    def generate(self, cell: Cell, ctx: Context) -> Generated:
        out = np.empty_like(ctx.images)
        # chunks are aligned on dataset indices, so a --limit run reuses (and fills) the same cache
        chunk_ids = ctx.indices // CACHE_CHUNK
        for chunk in np.unique(chunk_ids):
            where = chunk_ids == chunk
            out[where] = self._chunk(ctx, int(chunk), cell.severity)[ctx.indices[where] - chunk * CACHE_CHUNK]
        return Generated(out)

    def _chunk(self, ctx: Context, chunk: int, severity: int) -> np.ndarray:
        lo, hi = chunk * CACHE_CHUNK, min((chunk + 1) * CACHE_CHUNK, len(ctx.dataset))
        path = None
        if ctx.cache_dir is not None:
            path = (Path(ctx.cache_dir) / "corruptions" / f"{ctx.dataset.sha256[:16]}-{CACHE_VERSION}"
                    / f"{self.name}-s{severity}-c{chunk:04d}.npy")
            if path.is_file():
                return np.load(path)
        result = _corrupt_chunk(ctx.dataset.images[lo:hi], np.arange(lo, hi), self.name, severity)
        if path is not None:
            _atomic_save(path, result)
        return result


# registered as "corruption.<name>" in catalog.py (target "erbench.conditions.corruptions:BY_NAME.<name>")
BY_NAME = SimpleNamespace(**{name: Corruption(name) for name in CORRUPTIONS})

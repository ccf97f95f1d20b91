"""The 19 ``imagecorruptions`` corruptions at severities 1-5, reproducible and cached.

Every image is corrupted with NumPy's global generator seeded from (corruption, severity,
dataset index), so the same image, corruption and severity give the same pixels on every run and
for any subset or batch size. Corrupted images are cached on disk in chunks (``--cache-dir``),
keyed by the dataset's sha256, so ``glass_blur`` is computed once per machine, not per model;
each file carries a checksum of its bytes in its name and is recomputed when it does not match.
A cell whose ``corruption_source`` is a pre-rendered set reads that set's files instead (prerendered.py).
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from erbench.cells import RENDERED
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


def _load_verified(directory: Path, stem: str) -> np.ndarray | None:
    """The cached chunk ``<stem>.<sha256[:16]>.npy`` if its bytes match the checksum in its name; a
    corrupted one is deleted (and recomputed by the caller), never used."""
    for path in directory.glob(f"{stem}.*.npy"):
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest().startswith(path.name.split(".")[1]):
            return np.load(io.BytesIO(data))
        path.unlink(missing_ok=True)
    return None


def _save_verified(directory: Path, stem: str, array: np.ndarray) -> None:
    """Write by an atomic rename, the checksum in the name (staging files are named ``.tmp-*``:
    never read, so one left by a killed run is harmless)."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    data = buffer.getvalue()
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".npy")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, directory / f"{stem}.{hashlib.sha256(data).hexdigest()[:16]}.npy")


class Corruption:
    kind = "corruption"

    def __init__(self, name: str):
        self.name = name
        self.summary = f"imagecorruptions '{name}' (Hendrycks & Dietterich), severity 1-5"

    def generate(self, cell: Cell, ctx: Context) -> Generated:
        if cell.corruption_source != RENDERED:
            from erbench.conditions import prerendered

            images, sha256 = prerendered.read(cell, ctx.dataset, ctx.indices, ctx.corruption_root)
            return Generated(images, {"corruption_sha256": np.full(len(images), sha256, dtype=object)})
        out = np.empty_like(ctx.images)
        # chunks are aligned on dataset indices, so a --limit run reuses (and fills) the same cache
        chunk_ids = ctx.indices // CACHE_CHUNK
        for chunk in np.unique(chunk_ids):
            where = chunk_ids == chunk
            out[where] = self._chunk(ctx, int(chunk), cell.severity)[ctx.indices[where] - chunk * CACHE_CHUNK]
        return Generated(out)

    def _chunk(self, ctx: Context, chunk: int, severity: int) -> np.ndarray:
        lo, hi = chunk * CACHE_CHUNK, min((chunk + 1) * CACHE_CHUNK, len(ctx.dataset))
        stem = f"{self.name}-s{severity}-c{chunk:04d}"
        directory = None
        if ctx.cache_dir is not None:
            directory = Path(ctx.cache_dir) / "corruptions" / f"{ctx.dataset.sha256[:16]}-{CACHE_VERSION}"
            cached = _load_verified(directory, stem)
            if cached is not None:
                return cached
        result = _corrupt_chunk(ctx.dataset.images[lo:hi], np.arange(lo, hi), self.name, severity)
        if directory is not None:
            _save_verified(directory, stem, result)
        return result


# registered as "corruption.<name>" in catalog.py (target "erbench.conditions.corruptions:BY_NAME.<name>")
BY_NAME = SimpleNamespace(**{name: Corruption(name) for name in CORRUPTIONS})

"""Dataset registry: each entry builds (images uint8 NHWC, labels) per split, checked against its manifest."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from erbench.data.manifest import Manifest, arrays_sha256, load_manifest, manifest_path
from erbench.errors import ErbenchError
from erbench.registry import Registry

# id -> an embedded track's builder (returning {split: (images, labels)}) or a real track's LocalTrack
# (data/local.py), as the manifest says; imported on first use
DATASETS: Registry = Registry("dataset")
DATASETS.register("digits", target="erbench.data.digits:build_digits")
DATASETS.register("cifar10", target="erbench.data.cifar10:TRACK")
DATASETS.register("imagenet-val-5k", target="erbench.data.imagenet:TRACK")


@dataclass(frozen=True)
class Dataset:
    id: str
    manifest: Manifest
    images: np.ndarray  # (N, H, W, 3) uint8
    labels: np.ndarray  # (N,) int64
    sha256: str  # of images + labels, as pinned by the manifest (or its lock)

    def __len__(self) -> int:
        return len(self.labels)


@lru_cache(maxsize=4)
def _build(dataset_id: str):
    return DATASETS.get(dataset_id)()


def load_dataset(dataset_id: str, split: str = "test", *, file: str | None = None,
                 root: str | Path | None = None) -> Dataset:
    """Build a split and verify it against the manifest's sha256; a real track reads its files
    under ``root`` (or its environment variable) and verifies them on every call."""
    DATASETS.get(dataset_id, file=file, field="dataset")
    manifest = load_manifest(dataset_id)
    if manifest.local is not None:
        from erbench.data.local import load_local

        if split != "test":
            raise ErbenchError(f"{dataset_id} has only a test split", file=file, field="dataset")
        images, labels, actual = load_local(manifest, DATASETS.get(dataset_id), root)
        return Dataset(dataset_id, manifest, images, labels, actual)
    images, labels = _build(dataset_id)[split]
    actual = arrays_sha256(images, labels)
    expected = getattr(manifest, f"{split}_sha256")
    if actual != expected:
        raise ErbenchError(
            f"{split} set sha256 mismatch: expected {expected}, got {actual}",
            file=manifest_path(dataset_id), field=f"{split}_sha256",
        )
    return Dataset(dataset_id, manifest, images, labels, actual)

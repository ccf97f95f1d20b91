"""Dataset registry: each entry builds (images uint8 NHWC, labels) per split, checked against its manifest."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from erbench.data.manifest import Manifest, arrays_sha256, load_manifest, manifest_path
from erbench.errors import ErbenchError
from erbench.registry import Registry

# id -> builder returning {split: (images, labels)}; imported on first use (builders may use torch)
DATASETS: Registry = Registry("dataset")
DATASETS.register("digits", target="erbench.data.digits:build_digits")


@dataclass(frozen=True)
class Dataset:
    id: str
    manifest: Manifest
    images: np.ndarray  # (N, H, W, 3) uint8
    labels: np.ndarray  # (N,) int64
    sha256: str  # of images + labels, as pinned by the manifest

    def __len__(self) -> int:
        return len(self.labels)


@lru_cache(maxsize=4)
def _build(dataset_id: str):
    return DATASETS.get(dataset_id)()


def load_dataset(dataset_id: str, split: str = "test", *, file: str | None = None) -> Dataset:
    """Build a split and verify it against the manifest's sha256."""
    DATASETS.get(dataset_id, file=file, field="dataset")
    manifest = load_manifest(dataset_id)
    images, labels = _build(dataset_id)[split]
    actual = arrays_sha256(images, labels)
    expected = getattr(manifest, f"{split}_sha256")
    if actual != expected:
        raise ErbenchError(
            f"{split} set sha256 mismatch: expected {expected}, got {actual}",
            file=manifest_path(dataset_id), field=f"{split}_sha256",
        )
    return Dataset(dataset_id, manifest, images, labels, actual)

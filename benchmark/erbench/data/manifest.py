"""Data manifests: what a dataset is, how it is built, and the sha256 that pins it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from erbench.errors import ErbenchError

MANIFEST_DIR = Path(__file__).resolve().parents[3] / "data_manifests"


class Split(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rule: str
    train: int
    test: int


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    title: str
    source: str
    transform: str
    split: Split
    num_classes: int
    image_size: tuple[int, int]
    test_sha256: str
    train_sha256: str


def manifest_path(dataset_id: str) -> Path:
    return MANIFEST_DIR / f"{dataset_id}.yaml"


def load_manifest(dataset_id: str) -> Manifest:
    path = manifest_path(dataset_id)
    try:
        raw = yaml.safe_load(path.read_text())
        return Manifest.model_validate(raw)
    except FileNotFoundError:
        raise ErbenchError("data manifest not found", file=path) from None
    except (yaml.YAMLError, ValidationError) as exc:
        raise ErbenchError(f"invalid data manifest: {exc}".splitlines()[0], file=path) from None


def manifest_sha256(dataset_id: str) -> str:
    """sha256 of the manifest file itself (recorded as provenance)."""
    return hashlib.sha256(manifest_path(dataset_id).read_bytes()).hexdigest()


def arrays_sha256(images: np.ndarray, labels: np.ndarray) -> str:
    """sha256 over uint8 images (N, H, W, 3, C order) followed by int64 labels."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(images, dtype=np.uint8).tobytes())
    h.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    return h.hexdigest()

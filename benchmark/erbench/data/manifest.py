"""Data manifests: what a dataset is, how it is built, and the checksums that pin it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from erbench.errors import ErbenchError

MANIFEST_DIR = Path(__file__).resolve().parents[3] / "data_manifests"
# a directory used instead of data_manifests/ (tests on fake data; a maintainer drafting a manifest)
MANIFESTS_ENV = "ERBENCH_MANIFESTS"


class Split(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rule: str
    train: int
    test: int


class ListFile(BaseModel):
    """A committed data file next to the manifest, pinned by its sha256."""

    model_config = ConfigDict(extra="forbid")
    file: str
    sha256: str


class Local(BaseModel):
    """A real track: the user's own copy under a data root, never downloaded."""

    model_config = ConfigDict(extra="forbid")
    layout: str  # the expected files under the data root, quoted in every layout error
    md5: dict[str, str] = {}  # file under the data root -> its published md5, checked before it is read
    images: ListFile | None = None  # the selected files under the data root, one a line, in image_index order
    classes: ListFile | None = None  # class ids, one a line: label = line index
    lock: bool = False  # sha256 of every selected file and of the decoded arrays pinned by `erbench data lock`


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    title: str
    source: str
    transform: str
    split: Split
    num_classes: int
    image_size: tuple[int, int]
    test_sha256: str | None = None  # sha256 of the decoded arrays (arrays_sha256), if known when committed
    train_sha256: str | None = None
    local: Local | None = None  # None: an embedded track, built from data installed with erbench

    @model_validator(mode="after")
    def _pinned(self) -> Manifest:
        if self.local is None and (self.test_sha256 is None or self.train_sha256 is None):
            raise ValueError("an embedded track pins test_sha256 and train_sha256")
        return self


def manifest_dir() -> Path:
    return Path(os.environ.get(MANIFESTS_ENV) or MANIFEST_DIR)


def manifest_path(dataset_id: str) -> Path:
    return manifest_dir() / f"{dataset_id}.yaml"


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


def read_list(listed: ListFile) -> list[str]:
    """The lines of a committed list file, after checking its sha256."""
    path = manifest_dir() / listed.file
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ErbenchError("list file named by the data manifest not found", file=path) from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != listed.sha256:
        raise ErbenchError(f"sha256 mismatch: expected {listed.sha256}, got {actual}", file=path)
    return data.decode().splitlines()


def arrays_sha256(images: np.ndarray, labels: np.ndarray) -> str:
    """sha256 over uint8 images (N, H, W, 3, C order) followed by int64 labels."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(images, dtype=np.uint8).tobytes())
    h.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    return h.hexdigest()

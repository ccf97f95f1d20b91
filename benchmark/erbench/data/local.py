"""Real tracks: the user's local copy of a dataset under a data root, verified before it is decoded.

A track's data root comes from ``--data-root DIR`` or ``$ERBENCH_DATA_<ID>`` (``cifar10`` ->
``ERBENCH_DATA_CIFAR10``, ``imagenet-val-5k`` -> ``ERBENCH_DATA_IMAGENET_VAL_5K``). It never enters a
cell key: the decoded arrays' sha256 does. Files with a published md5 (the manifest's ``md5``) are
checked against it; a track with ``lock: true`` is checked against ``<id>.lock.json`` next to its
manifest, written once by ``erbench data lock`` (the sha256 of every selected file and of the
decoded arrays, so another JPEG decoder is detected too).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from erbench.data.manifest import Manifest, arrays_sha256, manifest_dir, manifest_path, manifest_sha256
from erbench.errors import ErbenchError

Blobs = Iterator[tuple[Path, bytes]]  # (path, verified content) of each selected file, in order


@dataclass(frozen=True)
class LocalTrack:
    files: Callable[[Manifest], list[str]]  # the selected files under the data root, in order
    decode: Callable[[Manifest, Blobs], tuple[np.ndarray, np.ndarray]]  # -> images (N,H,W,3) uint8, labels int64
    decoder: Callable[[], str] = lambda: "none"  # the decoding library and version, recorded in a lock


class Lock(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset: str
    manifest_sha256: str  # the manifest the lock was made for
    decoder: str
    arrays_sha256: str
    files: dict[str, str]  # file under the data root -> sha256, in image_index order


def env_var(dataset_id: str) -> str:
    return "ERBENCH_DATA_" + re.sub(r"[^A-Z0-9]", "_", dataset_id.upper())


def _hint(manifest: Manifest) -> str:
    return f"expected {manifest.local.layout}; pass --data-root DIR or set {env_var(manifest.id)}"


def data_root(manifest: Manifest, root: str | Path | None) -> Path:
    """The track's data root: ``root``, else its environment variable; a directory."""
    root = root or os.environ.get(env_var(manifest.id))
    if not root:
        raise ErbenchError(f"{manifest.id}: no data root given ({_hint(manifest)})", field="--data-root")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise ErbenchError(f"{manifest.id}: data root is not a directory ({_hint(manifest)})", file=path,
                           field="--data-root")
    return path


def lock_path(dataset_id: str) -> Path:
    return manifest_dir() / f"{dataset_id}.lock.json"


def read_lock(manifest: Manifest) -> Lock:
    path = lock_path(manifest.id)
    if not path.exists():
        raise ErbenchError(f"{manifest.id} is not locked yet: a maintainer with the data runs `erbench data lock "
                           f"{manifest.id} --root DIR` once and commits {path.name}", file=path)
    try:
        lock = Lock.model_validate_json(path.read_text())
    except ValidationError as exc:
        raise ErbenchError(f"invalid lock file: {exc}".splitlines()[0], file=path) from None
    if lock.manifest_sha256 != manifest_sha256(manifest.id):
        raise ErbenchError(f"the lock was made for another version of {manifest.id}.yaml: run `erbench data lock "
                           f"{manifest.id} --root DIR` again", file=path)
    return lock


def _present(manifest: Manifest, root: Path, files: list[str]) -> None:
    missing = [f for f in files if not (root / f).is_file()]
    if len(missing) == len(files):
        what = f"{files[0]} is" if len(files) == 1 else f"none of its {len(files)} files is"
        raise ErbenchError(f"{manifest.id}: {what} not here ({_hint(manifest)})", file=root, field="--data-root")
    if missing:
        raise ErbenchError(f"missing, the first of {len(missing)} of the {len(files)} files {manifest.id} selects "
                           f"(expected {manifest.local.layout})", file=root / missing[0])


def _blobs(manifest: Manifest, root: Path, files: list[str], sha256: dict[str, str] | None) -> Blobs:
    """Each file's content once its published md5 and locked sha256 (if any) match."""
    for name in files:
        path = root / name
        data = path.read_bytes()
        for algorithm, expected in (("md5", manifest.local.md5.get(name)), ("sha256", (sha256 or {}).get(name))):
            actual = hashlib.new(algorithm, data).hexdigest() if expected is not None else None
            if actual != expected:
                source = "published" if algorithm == "md5" else f"locked in {lock_path(manifest.id).name}"
                raise ErbenchError(f"{algorithm} mismatch: expected {expected} ({source}), got {actual}", file=path)
        yield path, data


def _check_arrays(manifest: Manifest, images: np.ndarray, labels: np.ndarray) -> None:
    h, w = manifest.image_size
    if images.shape != (manifest.split.test, h, w, 3) or images.dtype != np.uint8 or labels.shape != (len(images),):
        raise ErbenchError(f"{manifest.id} decoded to images {images.shape} {images.dtype}, labels {labels.shape}; "
                           f"the manifest declares {manifest.split.test} images of {h}x{w}x3 uint8")
    if labels.min() < 0 or labels.max() >= manifest.num_classes:
        raise ErbenchError(f"{manifest.id}: labels outside 0..{manifest.num_classes - 1}")


def load_local(manifest: Manifest, track: LocalTrack, root: str | Path | None) -> tuple[np.ndarray, np.ndarray, str]:
    """Verify and decode a real track's test set: (images, labels, arrays sha256)."""
    lock = read_lock(manifest) if manifest.local.lock else None
    root = data_root(manifest, root)
    files = track.files(manifest)
    _present(manifest, root, files)
    if lock is not None and list(lock.files) != files:
        raise ErbenchError(f"the lock lists other files than {manifest.id}.yaml selects: lock again",
                           file=lock_path(manifest.id))
    images, labels = track.decode(manifest, _blobs(manifest, root, files, lock.files if lock else None))
    _check_arrays(manifest, images, labels)
    actual = arrays_sha256(images, labels)
    expected = lock.arrays_sha256 if lock else manifest.test_sha256
    if expected is not None and actual != expected:
        where = f"locked with {lock.decoder}; here {track.decoder()}" if lock else "pinned by the manifest"
        raise ErbenchError(f"decoded arrays sha256 mismatch: expected {expected[:16]}.., got {actual[:16]}.. ({where})",
                           file=lock_path(manifest.id) if lock else manifest_path(manifest.id),
                           field="arrays_sha256" if lock else "test_sha256")
    return images, labels, actual


def write_lock(manifest: Manifest, track: LocalTrack, root: str | Path | None) -> tuple[Lock, Path]:
    """Record the sha256 of every selected file and of the decoded arrays in ``<id>.lock.json``."""
    if not manifest.local.lock:
        raise ErbenchError(f"{manifest.id} needs no lock: its files are pinned by the published checksums in "
                           f"{manifest.id}.yaml", field="TRACK")
    root = data_root(manifest, root)
    files = track.files(manifest)
    _present(manifest, root, files)
    digests: dict[str, str] = {}

    def hashed() -> Blobs:
        for name, (path, data) in zip(files, _blobs(manifest, root, files, None)):
            digests[name] = hashlib.sha256(data).hexdigest()
            yield path, data

    images, labels = track.decode(manifest, hashed())
    _check_arrays(manifest, images, labels)
    result = Lock(dataset=manifest.id, manifest_sha256=manifest_sha256(manifest.id), decoder=track.decoder(),
                  arrays_sha256=arrays_sha256(images, labels), files=digests)
    path = lock_path(manifest.id)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result.model_dump(), indent=1) + "\n")
    os.replace(tmp, path)
    return result, path

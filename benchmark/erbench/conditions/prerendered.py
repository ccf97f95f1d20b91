"""Pre-rendered corruption sets, read from the user's local copy (never downloaded): the alternative
source of a track's corruption cells (``erbench evaluate --corruption-source prerendered``).

* CIFAR-10-C (cifar10): ``<root>/CIFAR-10-C/labels.npy`` and ``<corruption>.npy``, each (5N, 32, 32, 3)
  uint8: severity s is rows (s-1)N .. sN-1, the N test images in test-set order (what
  ``robustbench.data.load_cifar10c`` reads, with N = 10,000 there). All 19 corruptions are published.
* ImageNet-C (imagenet-val-5k): ``<root>/ImageNet-C/<corruption>/<severity>/<wnid>/<file>.JPEG``, the
  track's own files (robustbench's ImageNet-C loader selects the same 5,000-file list), already 224x224:
  decoded as robustbench's loader decodes a file (PIL open, ``convert("RGB")``) and used as they are, no
  second resize. The 4 extra corruptions (speckle_noise, gaussian_blur, spatter, saturate) are a separate
  download; a corruption that is not there is an error naming it (select cells with ``-c``).

The pixels are the files' uint8 values exactly (robustbench's loaders give x / 255 as float32; the tests
compare through the exact round trip). Files are checked before any cell runs (``check``); each row
records what it read in ``corruption_sha256``. The set's root comes from ``--corruption-root`` or
``$ERBENCH_DATA_CIFAR_10_C`` / ``$ERBENCH_DATA_IMAGENET_C``; it enters no key (the rows' hashes say what
was read).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from erbench.cells import Cell
from erbench.data.datasets import Dataset
from erbench.data.local import env_var
from erbench.data.manifest import read_list
from erbench.errors import ErbenchError
from erbench.files import file_sha256

OPTION = "--corruption-root"


@dataclass(frozen=True)
class CorruptionSet:
    name: str  # the directory under the root, and the rows' corruption_source
    layout: str

    def hint(self) -> str:
        return f"expected {self.layout}; pass {OPTION} DIR or set {env_var(self.name)}"


SETS = {
    "cifar10": CorruptionSet("CIFAR-10-C", "<root>/CIFAR-10-C/{labels.npy,<corruption>.npy}"),
    "imagenet-val-5k": CorruptionSet("ImageNet-C", "<root>/ImageNet-C/<corruption>/<severity>/<wnid>/<file>.JPEG"),
}
BY_NAME = {s.name: s for s in SETS.values()}


def corruption_set(dataset_id: str) -> CorruptionSet:
    if dataset_id not in SETS:
        tracks = ", ".join(f"{s.name} for {t}" for t, s in SETS.items())
        raise ErbenchError(f"{dataset_id} has no pre-rendered corruption set ({tracks})", field="--corruption-source")
    return SETS[dataset_id]


def set_root(cset: CorruptionSet, root: str | Path | None) -> Path:
    """The directory holding ``<root>/<set name>``: ``root``, else the set's environment variable."""
    root = root or os.environ.get(env_var(cset.name))
    if not root:
        raise ErbenchError(f"{cset.name}: no corruption root given ({cset.hint()})", field=OPTION)
    if not (Path(root) / cset.name).is_dir():
        raise ErbenchError(f"no {cset.name} directory here ({cset.hint()})", file=root, field=OPTION)
    return Path(root)


def _names(dataset: Dataset) -> list[str]:
    return read_list(dataset.manifest.local.images)


def _cifar_file(root: Path, name: str, n: int) -> np.ndarray:
    """The (5N, 32, 32, 3) uint8 array of a CIFAR-10-C file, memory-mapped (its header checked)."""
    path = root / "CIFAR-10-C" / f"{name}.npy"
    if not path.is_file():
        raise ErbenchError(f"CIFAR-10-C has no {name}.npy (expected <root>/CIFAR-10-C/{name}.npy)", file=path,
                           field=OPTION)
    try:
        array = np.load(path, mmap_mode="r")
    except ValueError as exc:
        raise ErbenchError(f"not a .npy array: {exc}", file=path) from None
    if array.shape != (5 * n, 32, 32, 3) or array.dtype != np.uint8:
        raise ErbenchError(f"is {array.shape} {array.dtype}; expected ({5 * n}, 32, 32, 3) uint8: severities "
                           f"1-5 x the {n} test images", file=path)
    return array


def _imagenet_dir(root: Path, cell: Cell) -> Path:
    return root / "ImageNet-C" / cell.condition.removeprefix("corruption.") / str(cell.severity)


def check(dataset: Dataset, cset: CorruptionSet, root: Path, cells: tuple[Cell, ...], n: int) -> None:
    """Before any cell runs: every needed file is there, shaped as the track, its labels the track's."""
    corruption = [c for c in cells if c.condition.startswith("corruption.")]
    if cset.name == "CIFAR-10-C":
        labels_path = root / "CIFAR-10-C" / "labels.npy"
        if not labels_path.is_file():
            raise ErbenchError(f"CIFAR-10-C has no labels.npy ({cset.hint()})", file=labels_path, field=OPTION)
        labels = np.load(labels_path)
        expected = np.tile(dataset.labels, 5)
        if labels.shape != expected.shape or not np.array_equal(labels, expected):
            raise ErbenchError(f"labels.npy is not the {dataset.id} test labels for each of the 5 severities "
                               f"({labels.shape[0]} labels, {expected.shape[0]} expected)", file=labels_path)
        for name in sorted({c.condition.removeprefix("corruption.") for c in corruption}):
            _cifar_file(root, name, len(dataset))
        return
    names = _names(dataset)[:n]
    for cell in corruption:
        directory = _imagenet_dir(root, cell)
        missing = next((f for f in names if not (directory / f).is_file()), None)
        if missing is not None:
            what = "" if directory.is_dir() else f" (no {directory.parent.name}/{directory.name} at all)"
            raise ErbenchError(f"missing from ImageNet-C{what}: {cset.hint()}", file=directory / missing, field=OPTION)


@lru_cache(maxsize=32)
def _file_sha256(path: Path, size: int, mtime_ns: int) -> str:
    """``file_sha256``, once per file version (size and mtime in the cache key)."""
    return file_sha256(path)


def read_cifar10c(root: Path, cell: Cell, indices: np.ndarray, n: int) -> tuple[np.ndarray, str]:
    """The images of dataset ``indices`` at the cell's severity, and the file's sha256."""
    name = cell.condition.removeprefix("corruption.")
    array = _cifar_file(root, name, n)
    stat = (root / "CIFAR-10-C" / f"{name}.npy").stat()
    images = np.ascontiguousarray(array[(cell.severity - 1) * n + indices])
    return images, _file_sha256(root / "CIFAR-10-C" / f"{name}.npy", stat.st_size, stat.st_mtime_ns)


def read_imagenetc(root: Path, cell: Cell, files: list[str], size: tuple[int, int]) -> tuple[np.ndarray, str]:
    """The decoded JPEGs ``files`` of the cell's directory, as they are, and the sha256 of their
    ``sha256sum`` listing (``<sha256>  <wnid>/<file>`` lines in image order)."""
    from PIL import Image, UnidentifiedImageError

    directory = _imagenet_dir(root, cell)
    images = np.empty((len(files), size[0], size[1], 3), dtype=np.uint8)
    listing = hashlib.sha256()
    for i, name in enumerate(files):
        path = directory / name
        data = path.read_bytes()
        listing.update(f"{hashlib.sha256(data).hexdigest()}  {name}\n".encode())
        try:
            with Image.open(path) as image:
                rgb = image.convert("RGB")
        except (UnidentifiedImageError, OSError) as exc:
            raise ErbenchError(f"cannot decode the image: {exc}", file=path) from None
        if rgb.size != (size[1], size[0]):
            raise ErbenchError(f"is {rgb.size[0]}x{rgb.size[1]}; ImageNet-C images are {size[1]}x{size[0]} and "
                               "erbench does not resize them (docs/real_scale.md)", file=path)
        images[i] = np.asarray(rgb, dtype=np.uint8)
    return images, listing.hexdigest()


def read(cell: Cell, dataset: Dataset, indices: np.ndarray, root: Path | None) -> tuple[np.ndarray, str]:
    """A pre-rendered corruption cell's images (uint8 NHWC) and what they were read from (sha256)."""
    cset = BY_NAME[cell.corruption_source]
    root = set_root(cset, root)
    if cset.name == "CIFAR-10-C":
        return read_cifar10c(root, cell, indices, len(dataset))
    names = _names(dataset)
    return read_imagenetc(root, cell, [names[i] for i in indices], dataset.manifest.image_size)

"""CIFAR-10 test set from the python version, as torchvision's ``CIFAR10(root)`` keeps it.

``<root>/cifar-10-batches-py/test_batch`` is a protocol-2 pickle (written by Python 2) of a dict:
``data`` (10000, 3072) uint8, each row one image as 1024 red, 1024 green, 1024 blue values (rows of
32, top to bottom), ``labels`` (10000 ints), ``batch_label``, ``filenames``. Its published md5 is
checked before it is read; it is then unpickled with an unpickler that can build nothing but numpy
arrays, so even a file with that md5 could not run code.
"""

from __future__ import annotations

import io
import pickle

import numpy as np

from erbench.data.local import Blobs, LocalTrack
from erbench.data.manifest import Manifest
from erbench.errors import ErbenchError

TEST_BATCH = "cifar-10-batches-py/test_batch"

# the only globals a pickled numpy array refers to (numpy 2 moved numpy.core to numpy._core)
_ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"), ("numpy", "dtype")}


class SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed")
        return super().find_class(module, name)


def unpickle_batch(data: bytes) -> dict:
    """A CIFAR python batch: a dict of bytes keys (Python 2 strings read as bytes)."""
    return SafeUnpickler(io.BytesIO(data), encoding="bytes").load()


def _decode(manifest: Manifest, blobs: Blobs) -> tuple[np.ndarray, np.ndarray]:
    ((path, blob),) = blobs
    try:
        batch = unpickle_batch(blob)
    except Exception as exc:  # noqa: BLE001 -- anything a malformed pickle raises is the file's fault
        raise ErbenchError(f"refused as a CIFAR-10 python batch: {exc}", file=path) from None
    data = batch.get(b"data") if isinstance(batch, dict) else None
    labels = batch.get(b"labels") if isinstance(batch, dict) else None
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 \
            or not isinstance(labels, list) or len(labels) != len(data):
        raise ErbenchError("not a CIFAR-10 python batch: expected b'data' (N, 3072) uint8 and N b'labels'", file=path)
    images = np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return images, np.asarray(labels, dtype=np.int64)


TRACK = LocalTrack(files=lambda manifest: [TEST_BATCH], decode=_decode)

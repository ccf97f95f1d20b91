"""A submission's weights file, checked without torch: sha256, the safetensors header, finite values.

A .safetensors file is an 8-byte little-endian header length, a JSON header (tensor name ->
dtype, shape, byte offsets) and the tensors' bytes. erbench reads float32 ("F32") tensors only, but
for BatchNorm's step counters (``num_batches_tracked``: int64, "I64").
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from erbench.errors import ErbenchError, shorten

HEADER_MAX_BYTES = 1 << 20
DTYPE, COUNTER_DTYPE, COUNTERS = "F32", "I64", ("num_batches_tracked",)
_ITEMSIZE = {DTYPE: 4, COUNTER_DTYPE: 8}
_NAME = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")


@dataclass(frozen=True)
class Weights:
    path: Path
    data: bytes  # the whole file, read once: what is hashed is what is loaded
    shapes: dict[str, tuple[int, ...]]  # from the header


def _tensor(name: object, info: object, payload: int, start: int) -> tuple[str, tuple[int, ...], int]:
    """(dtype, shape, offset in the file) of one header entry; ValueError says what is wrong with it."""
    if not isinstance(name, str) or len(name) > 200 or not _NAME.match(name):
        raise ValueError(f"tensor name {shorten(repr(name))} is not a dotted module path")
    if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
        raise ValueError(f"tensor '{name}' has no dtype, shape and data_offsets")
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not (isinstance(shape, list) and all(type(n) is int and n >= 0 for n in shape) and len(shape) <= 8):
        raise ValueError(f"tensor '{name}' has shape {shorten(shape)}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(n) is int for n in offsets)
            and 0 <= offsets[0] <= offsets[1] <= payload):
        raise ValueError(f"tensor '{name}' has data_offsets {shorten(offsets)} outside the file")
    if dtype in _ITEMSIZE and offsets[1] - offsets[0] != _ITEMSIZE[dtype] * math.prod(shape):
        raise ValueError(f"tensor '{name}' has {offsets[1] - offsets[0]} bytes for shape {tuple(shape)}")
    return str(dtype), tuple(shape), start + offsets[0]


def expected_dtype(name: str) -> str:
    return COUNTER_DTYPE if name.rsplit(".", 1)[-1] in COUNTERS else DTYPE


def header(data: bytes, *, file: str | Path) -> dict[str, tuple[str, tuple[int, ...], int]]:
    """Tensor name -> (dtype, shape, offset of its bytes in ``data``), from a .safetensors file's bytes."""
    n = int.from_bytes(data[:8], "little")
    if len(data) < 8 or n > HEADER_MAX_BYTES or 8 + n > len(data):
        raise ErbenchError(f"not a .safetensors file (header length {n:,} for a file of {len(data):,} bytes; "
                           f"at most {HEADER_MAX_BYTES >> 20} MiB)", file=file, field="weights.file")
    try:
        entries = json.loads(data[8:8 + n].decode("utf-8"))
        if not isinstance(entries, dict):
            raise ValueError("the header is not a JSON object")
        entries.pop("__metadata__", None)
        return {name: _tensor(name, info, len(data) - 8 - n, 8 + n) for name, info in entries.items()}
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ErbenchError(f"not a .safetensors file: {shorten(exc, 120)}", file=file, field="weights.file") from None


def read_weights(path: Path, data: bytes, sha256: str, *, spec: str | Path) -> tuple[Weights, list[ErbenchError]]:
    """The weights and every problem found: sha256 mismatch (expected vs actual), unreadable header,
    tensors that are not float32 or hold NaN or infinite values. ``data``: the file's bytes."""
    problems = []
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        problems.append(ErbenchError(f"sha256 mismatch: expected {sha256}, got {actual}", file=spec,
                                     field="weights.sha256"))
    try:
        tensors = header(data, file=spec)
    except ErbenchError as exc:
        return Weights(path, data, {}), [*problems, exc]
    other = sorted(name for name, (dtype, _, _) in tensors.items() if dtype != expected_dtype(name))
    if other:
        problems.append(ErbenchError(
            f"dtype {shorten(tensors[other[0]][0], 20)}; erbench loads float32 ({DTYPE}) weights only "
            f"({len(other)} of {len(tensors)} tensors are not; {COUNTERS[0]}: {COUNTER_DTYPE})", file=path,
            field=other[0]))
    for name, (dtype, shape, offset) in sorted(tensors.items()):
        if dtype != DTYPE or not math.prod(shape):
            continue
        values = np.frombuffer(data, "<f4", math.prod(shape), offset)
        bad = values.size - int(np.isfinite(values).sum())
        if bad:
            problems.append(ErbenchError(f"{bad} of {values.size} values are NaN or infinite", file=path, field=name))
            break
    return Weights(path, data, {name: shape for name, (_, shape, _) in tensors.items()}), problems

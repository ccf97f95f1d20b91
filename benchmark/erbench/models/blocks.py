"""Per-image results that do not depend on the batch: run the model on blocks of a fixed row count.

On the CPU, torch picks its convolution (oneDNN) and matrix-product (MKL) kernels by the tensors'
shapes, so an image's outputs and input gradients round differently in a batch of 1, 7 or 64.
Between batch 1 and 64 every image's input gradient of the rate differed in its last bits (the
small, residual and GDN digits heads), and so did the estimated bits of 3 (factorized) and 41
(hyperprior) of 64 images (the bottleneck's matrix products, the hyperprior's last analysis
convolution); the latent y did not. Within a batch of a *fixed* number of rows, a row's results
were bit-identical whatever its position, whatever the other rows held (other images, or copies
used as padding) and with 1 or 2 torch threads (benchmarks/reproducibility.py, ``--diagnose``),
provided the block keeps the memory layout: the same rows laid out contiguous instead of
channels-last round differently.

``rowwise`` therefore evaluates a per-row function on blocks of exactly ``BLOCK_ROWS`` rows,
padding the last block with copies of its last row, and returns only the real rows. Autograd sees
the blocks as separate graphs, so gradients are computed block by block with the same shapes.
``BLOCK_ROWS`` is 64, the default ``--batch-size``: at that batch size every block is a whole
batch and the results are those erbench computed before blocks existed; a smaller batch size
only costs time (a batch of 7 is padded to 64 rows).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

BLOCK_ROWS = 64


def _pad(arg: Any, n: int, rows: int) -> Any:
    if n == rows:
        return arg
    if isinstance(arg, Tensor):
        # indexing keeps the memory layout (torch.cat would not): CPU kernels are chosen by it too,
        # and images come channels-last from ``codec.to_tensor``
        return arg[torch.arange(rows, device=arg.device).clamp(max=n - 1)]
    return list(arg) + [None] * (rows - n)  # a per-row list (e.g. generators): the caller fills None


def _take(out: Any, n: int) -> Any:
    if isinstance(out, (Tensor, np.ndarray)):
        return out[:n]
    if isinstance(out, dict):
        return {k: _take(v, n) for k, v in out.items()}
    if isinstance(out, (tuple, list)):
        return type(out)(_take(v, n) for v in out)
    raise TypeError(f"rowwise: cannot split a {type(out).__name__} by rows")


def _cat(parts: list[Any]) -> Any:
    first = parts[0]
    if len(parts) == 1:
        return first
    if isinstance(first, Tensor):
        return torch.cat(parts)
    if isinstance(first, np.ndarray):
        return np.concatenate(parts)
    if isinstance(first, dict):
        return {k: _cat([p[k] for p in parts]) for k in first}
    return type(first)(_cat(list(group)) for group in zip(*parts))


def rowwise(fn: Callable[..., Any], *args: Any, rows: int = BLOCK_ROWS) -> Any:
    """``fn(*args)`` for a function whose output rows depend only on the same input rows, computed
    on blocks of exactly ``rows`` rows: a row's result does not depend on how many rows ``args``
    have. ``args`` are tensors (split on dim 0; the last block is padded with copies of its last
    row) or per-row lists (padded with None). The output is a tensor, an array, or a tuple, list
    or dict of them, with one row per input row."""
    n = len(args[0])
    if n == 0:
        return fn(*args)
    parts = []
    for lo in range(0, n, rows):
        block = [a[lo : lo + rows] for a in args]
        m = len(block[0])
        parts.append(_take(fn(*(_pad(a, m, rows) for a in block)), m))
    return _cat(parts)

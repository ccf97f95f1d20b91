"""Perturbation budgets: projection onto the eps-ball, the 8-bit grid, and the final check.

A perturbation is measured in [0, 1] pixel units. The attacks optimize in continuous pixel space;
what gets coded is an 8-bit image, so every adversarial image is moved onto the 8-bit grid
*inside* the ball: each pixel offset is rounded to the nearest grey level, and offsets whose
rounding would leave the ball are truncated toward zero instead (truncation never increases
|offset|, so the result always fits). For L2 only as many offsets as needed are truncated, those
with the smallest fractional part first (ties: the lower pixel index first), so the rounded image
stays as close as possible.

Per-image results do not depend on the batch: norms are taken on blocks of a fixed row count
(``erbench.models.blocks``), and the L2 rounding sums integers in float64, exactly, so in any order.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from erbench.errors import ErbenchError
from erbench.models.blocks import rowwise

NORMS = ("linf", "l2")
TOLERANCE = 1e-9  # float slack of the final check, [0, 1] units


def check_norm(norm: str | None) -> str:
    if norm not in NORMS:
        raise ErbenchError(f"unknown norm {norm!r}; expected one of {NORMS}", field="norm")
    return norm


def _flat_norm(d: Tensor) -> Tensor:
    # in fixed-size blocks: a long row's reduction is split over threads when the batch is small
    return rowwise(lambda b: b.flatten(1).norm(dim=1), d).reshape(-1, *([1] * (d.dim() - 1)))


def project(x: Tensor, x0: Tensor, eps: float, norm: str) -> Tensor:
    """Closest point of the eps-ball around x0 (then clipped to [0, 1], which stays in the ball)."""
    d = x - x0
    if norm == "linf":
        d = d.clamp(-eps, eps)
    else:
        d = d * (eps / _flat_norm(d).clamp_min(1e-12)).clamp(max=1.0)
    return (x0 + d).clamp(0.0, 1.0)


def direction(g: Tensor, norm: str) -> Tensor:
    """Steepest-ascent direction of unit norm: sign for L-inf, normalized gradient for L2."""
    if norm == "linf":
        return g.sign()
    return g / _flat_norm(g).clamp_min(1e-12)


def random_point(x0: Tensor, eps: float, norm: str, gens: list[torch.Generator]) -> Tensor:
    """A per-image random point of the ball: uniform in the L-inf cube, uniform in the L2 ball."""
    shape = x0.shape[1:]
    if norm == "linf":
        d = torch.stack([torch.rand(shape, generator=g) * 2 - 1 for g in gens]).to(x0) * eps
    else:
        d = torch.stack([torch.randn(shape, generator=g) for g in gens]).to(x0)
        radius = torch.stack([torch.rand((), generator=g) for g in gens]).to(x0) ** (1.0 / shape.numel())
        d = d / _flat_norm(d) * radius.reshape(-1, *([1] * len(shape))) * eps
    return project(x0 + d, x0, eps, norm)


def to_grid(x: Tensor, clean: Tensor, eps: float, norm: str) -> Tensor:
    """Round x (in the ball around ``clean``, an 8-bit image) onto the 8-bit grid, inside the ball.

    Returns grey levels (float tensor of integers in [0, 255]).
    """
    c = torch.round(clean * 255)
    d = (x * 255 - c).clamp(-c, 255 - c)  # offsets in grey levels; c + d in [0, 255]
    r, t = torch.round(d), torch.trunc(d)
    radius = eps * 255 * (1 + 1e-12)
    if norm == "linf":
        return c + torch.where(r.abs() > radius, t, r)
    flat_r, flat_t = r.flatten(1), t.flatten(1)
    # whole grey levels, squared and summed in float64: exact, so independent of summation order
    r2, t2 = flat_r.double() ** 2, flat_t.double() ** 2
    excess = r2.sum(1) - radius**2
    # truncating an offset that was rounded away from zero lowers the squared norm by r^2 - t^2
    gain = r2 - t2
    frac = (d.abs() - t.abs()).flatten(1).masked_fill(gain == 0, float("inf"))
    order = frac.argsort(dim=1, stable=True)  # equal fractions: the lower pixel index first
    cum = gain.gather(1, order).cumsum(1)
    needed = (cum < excess[:, None]).sum(1) + 1  # shortest prefix whose gain covers the excess
    take = torch.arange(order.size(1), device=x.device)[None] < torch.where(excess > 0, needed, 0)[:, None]
    truncate = torch.zeros_like(take).scatter(1, order, take)
    return c + torch.where(truncate, flat_t, flat_r).reshape(d.shape)


def verify(adv: np.ndarray, clean: np.ndarray, eps: float, norm: str) -> np.ndarray:
    """Check 8-bit adversarial images lie in the ball; returns the per-image perturbation norm."""
    if adv.dtype != np.uint8 or adv.shape != clean.shape:
        raise RuntimeError(f"attack produced {adv.dtype} {adv.shape}, expected uint8 {clean.shape}")
    d = (adv.astype(np.float64) - clean.astype(np.float64)).reshape(len(adv), -1) / 255.0
    size = np.abs(d).max(1) if norm == "linf" else np.sqrt((d**2).sum(1))
    if len(size) and size.max() > eps + TOLERANCE:
        raise RuntimeError(f"attack bug: perturbation {size.max():.6g} exceeds the {norm} budget {eps:.6g}")
    return size

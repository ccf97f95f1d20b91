"""Adaptive rate attacks: attacks that know the submission's input defense (docs/defense.md).

Every other condition is generated against the *undefended* model (the runner hides the defense
from conditions without ``adaptive = True``; the defense still runs when the images are coded).
These three see the defended model:

* ``attack.bpda_rate`` -- the ``strong`` rate recipe with the gradient taken through the defense
  (BPDA): variant ``unrolled`` differentiates through the likelihood mask and every denoising
  iteration, ``identity`` uses the defense's output forward and the identity backward. The
  defense is deterministic; the only randomness is the rate surrogate's quantization noise, which
  ``strong`` already averages over draws (EOT over what is random).
* ``attack.dct_rate`` -- the perturbation is restricted to the lowest frequencies: per image and
  channel, its 2-D orthonormal DCT over the (H, W) axes is zero outside the top-left
  ``ceil(f H) x ceil(f W)`` block (variant ``quarter``: f = 1/4, ``eighth``: f = 1/8). Total
  variation removes high frequencies; a smooth perturbation should pass the denoiser.
* ``attack.likelihood_weighted_rate`` -- the per-pixel budget is ``eps * m``, with ``m`` the
  defense's own mask of the clean image (its normalized, upsampled rate map): the perturbation
  goes where the latent costs the most bits, which is where the defense smooths the least.

All three keep, per image, the 8-bit iterate with the most bits the *defended* model's coder
would see (the rounded rate through the defense). On a model without a defense they run as
plain attacks of the same shape (bpda_rate is then the ``strong`` recipe).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import lru_cache

import torch
from torch import Tensor

from erbench.conditions.attacks import Attack, Variant
from erbench.conditions.attacks.recipes import STRONG_COPIES, Target, cosine, strong
from erbench.conditions.attacks.surrogate import rate
from erbench.defense import likelihood_mask
from erbench.models.blocks import rowwise

DCT_FRACTIONS = {"quarter": 1 / 4, "eighth": 1 / 8}
PROJECTION_ROUNDS = 100  # Dykstra rounds between the DCT subspace and the pixel box


# --- BPDA -------------------------------------------------------------------------------------

@dataclass
class DefendedTarget(Target):
    """A Target whose rate surrogates run the defense once (gradient ``gradient``) and the
    undefended model on its output, so noise copies do not re-run the denoiser."""

    gradient: str = "unrolled"

    def defended(self, x: Tensor) -> Tensor:
        defense = self.model.defense
        if defense is None:
            return x
        with defense.gradient_mode(self.gradient):
            return defense(x, self.model)

    def rate(self, quant: str, copies: int = 1, latents: tuple[str, ...] | None = None):
        def block(x: Tensor, gens: list) -> Tensor:
            d = self.defended(x)
            with self.model.without_defense():
                return rate(self.model, d, quant, gens, copies, latents)

        # the defense runs over the whole block too, so an image's result does not depend on the batch
        return lambda x: rowwise(block, x, self.gens)


def defended_target(t: Target, gradient: str) -> DefendedTarget:
    return DefendedTarget(**{f.name: getattr(t, f.name) for f in fields(Target) if f.init}, gradient=gradient)


def bpda(gradient: str) -> Callable[[Target, int], Tensor]:
    def run(t: Target, steps: int) -> Tensor:
        return strong(defended_target(t, gradient), steps)
    run.__doc__ = f"``strong`` with BPDA-{gradient} gradients through the defense."
    return run


# --- structured perturbations -----------------------------------------------------------------

@dataclass
class Constraint:
    """A perturbation set inside the L-inf eps-ball: projection, ascent direction, 8-bit rounding."""

    project: Callable[[Tensor], Tensor]  # perturbation -> feasible perturbation
    direction: Callable[[Tensor], Tensor]  # gradient w.r.t. the image -> ascent direction, max |.| = 1
    to_grid: Callable[[Tensor], Tensor]  # feasible perturbation -> 8-bit image in [0, 1]


def _per_image_max(t: Tensor) -> Tensor:
    return t.abs().flatten(1).max(1).values.reshape(-1, *([1] * (t.dim() - 1))).clamp_min(1e-12)


def round_in_box(x0: Tensor, delta: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
    """x0 + delta on the 8-bit grid with the offset kept in [lo, hi] (per pixel, [0, 1] units):
    offsets are rounded, and truncated toward zero where rounding would leave the box."""
    c = torch.round(x0 * 255)
    d = (x0 + delta) * 255 - c
    r, t = torch.round(d), torch.trunc(d)
    outside = (r < lo * 255 * (1 + 1e-12) - 1e-9) | (r > hi * 255 * (1 + 1e-12) + 1e-9)
    return (c + torch.where(outside, t, r)) / 255


@lru_cache(maxsize=16)
def dct_matrix(n: int) -> Tensor:
    """Orthonormal DCT-II matrix (n, n): X = D x, x = D^T X."""
    k = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(n, dtype=torch.float64)[None]
    d = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2 / n)
    d[0] /= math.sqrt(2)
    return d


def dct2(x: Tensor) -> Tensor:
    """2-D orthonormal DCT over the last two axes (H, W), per image and channel."""
    dh, dw = dct_matrix(x.shape[-2]).to(x), dct_matrix(x.shape[-1]).to(x)
    return dh @ x @ dw.T


def idct2(c: Tensor) -> Tensor:
    dh, dw = dct_matrix(c.shape[-2]).to(c), dct_matrix(c.shape[-1]).to(c)
    return dh.T @ c @ dw


def low_frequency_mask(height: int, width: int, fraction: float) -> Tensor:
    """(H, W) mask of the DCT coefficients kept: 1 on the top-left ceil(f H) x ceil(f W) block.

    It broadcasts over (N, C, H, W) on the frequency axes H and W, never on N or C.
    """
    kh, kw = math.ceil(fraction * height), math.ceil(fraction * width)
    mask = torch.zeros(height, width)
    mask[:kh, :kw] = 1
    return mask


@lru_cache(maxsize=16)
def _low_pass_matrix(n: int, fraction: float) -> Tensor:
    """(n, n) orthogonal projection onto the first ceil(f n) DCT basis vectors: D^T diag(1..1 0..0) D."""
    d = dct_matrix(n)[: math.ceil(fraction * n)]
    return d.T @ d


def low_pass(x: Tensor, fraction: float) -> Tensor:
    """Orthogonal projection onto the low-frequency subspace: the DCT of the result is zero
    outside the ``low_frequency_mask`` block (it equals ``idct2(dct2(x) * mask)``, faster)."""
    ph = _low_pass_matrix(x.shape[-2], fraction).to(x)
    pw = _low_pass_matrix(x.shape[-1], fraction).to(x)
    return ph @ x @ pw


def dct_constraint(x0: Tensor, eps: float, fraction: float) -> Constraint:
    """Low-frequency perturbations with |delta| <= eps and x0 + delta in [0, 1].

    Projection: Dykstra's algorithm between the low-frequency subspace and the pixel box
    (PROJECTION_ROUNDS rounds), ending in the box; what remains outside the subspace is the
    algorithm's residual (a test bounds it far below the 8-bit rounding error).
    """
    lo, hi = (-x0).clamp(min=-eps), (1 - x0).clamp(max=eps)

    def project(d: Tensor) -> Tensor:
        q = torch.zeros_like(d)
        for _ in range(PROJECTION_ROUNDS):
            y = low_pass(d, fraction)
            d = torch.minimum(torch.maximum(y + q, lo), hi)
            q = y + q - d
        return d

    def direction(g: Tensor) -> Tensor:
        g = low_pass(g, fraction)
        return g / _per_image_max(g)

    return Constraint(project, direction, lambda d: round_in_box(x0, d, lo, hi))


def weighted_constraint(x0: Tensor, budget: Tensor) -> Constraint:
    """|delta| <= budget per pixel (a map broadcast over channels) and x0 + delta in [0, 1]."""
    lo, hi = torch.maximum(-budget, -x0), torch.minimum(budget, 1 - x0)
    return Constraint(lambda d: torch.minimum(torch.maximum(d, lo), hi), torch.sign,
                      lambda d: round_in_box(x0, d, lo, hi))


def structured_ascent(t: Target, steps: int, constraint: Constraint, objective_target: Target) -> Tensor:
    """``strong``'s three phases (2 eps to the boundary and eps/2 cosine on the noise surrogate,
    eps/4 cosine on straight-through rounding) inside ``constraint``; each image keeps its 8-bit
    iterate with the highest rounded rate through the defended model."""
    n1 = max(1, round(steps / 10))
    n2 = (steps - n1 + 1) // 2
    noise, ste = objective_target.rate("noise", STRONG_COPIES), objective_target.rate("ste")
    phases = (([2 * t.eps] * n1, noise), (cosine(t.eps / 2, n2), noise), (cosine(t.eps / 4, steps - n1 - n2), ste))
    best_x, best_s = t.x0, t.rounded_rate(t.x0)
    best_delta = torch.zeros_like(t.x0)  # the feasible perturbation each best grid point was rounded from
    for schedule, objective in phases:
        delta = best_delta  # each phase starts from the best point so far
        for step in schedule:
            delta.requires_grad_(True)
            (grad,) = torch.autograd.grad(objective(t.x0 + delta).sum(), delta)
            delta = constraint.project(delta.detach() + step * constraint.direction(grad))
            candidate = constraint.to_grid(delta)
            s = t.rounded_rate(candidate)
            better = (s > best_s)[:, None, None, None]
            best_x, best_delta = torch.where(better, candidate, best_x), torch.where(better, delta, best_delta)
            best_s = torch.maximum(s, best_s)
    return best_x


def dct(fraction: float) -> Callable[[Target, int], Tensor]:
    def run(t: Target, steps: int) -> Tensor:
        return structured_ascent(t, steps, dct_constraint(t.x0, t.eps, fraction), defended_target(t, "unrolled"))
    run.__doc__ = f"rate ascent restricted to the lowest {fraction:g} of DCT frequencies per axis."
    return run


@torch.no_grad()
def likelihood_budget(t: Target) -> Tensor:
    """(N, 1, H, W) per-pixel budget eps * m, m the defense's mask of the clean image (the same
    function the defense computes; it reads the head and entropy model, never the defense)."""
    return t.eps * rowwise(lambda x: likelihood_mask(t.model, x), t.x0)


def likelihood_weighted(t: Target, steps: int) -> Tensor:
    return structured_ascent(t, steps, weighted_constraint(t.x0, likelihood_budget(t)), defended_target(t, "unrolled"))


class AdaptiveAttack(Attack):
    """An attack generated against the defended model (the runner shows it the defense)."""

    adaptive = True


# registered under their names in conditions/catalog.py (which declares the same summary and flags)
BPDA_RATE = AdaptiveAttack(
    "attack.bpda_rate", "rate attack with BPDA gradients through the defense (variants unrolled, identity)",
    {"unrolled": Variant(bpda("unrolled"), None, "iterations"), "identity": Variant(bpda("identity"), None, "iterations")},
    rate_attack=True)
DCT_RATE = AdaptiveAttack(
    "attack.dct_rate", "rate attack restricted to low DCT frequencies (variants quarter, eighth)",
    {k: Variant(dct(f), "linf", "iterations") for k, f in DCT_FRACTIONS.items()}, rate_attack=True)
LIKELIHOOD_WEIGHTED_RATE = AdaptiveAttack(
    "attack.likelihood_weighted_rate",
    "rate attack with a per-pixel budget eps x the defense's likelihood mask of the clean image",
    {None: Variant(likelihood_weighted, "linf", "iterations")}, rate_attack=True)
ADAPTIVE_ATTACKS = (BPDA_RATE, DCT_RATE, LIKELIHOOD_WEIGHTED_RATE)

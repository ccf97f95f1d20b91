"""The attack recipes. Each maps a batch under attack to adversarial images on the 8-bit grid.

All work in [0, 1] pixel space (before the model's normalization) and return grey levels / 255,
inside the eps-ball. Step sizes are in [0, 1] pixel units. See docs/attacks.md for the
definitions and the measurements behind the choices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor

from erbench.conditions.attacks.grid import project, random_point, to_grid
from erbench.conditions.attacks.pgd import ascend
from erbench.conditions.attacks.surrogate import (coded_bits, cross_entropy, prediction, rate, rounded_rate,
                                                  rounded_rate_and_prediction)
from erbench.models.split import SplitModel

PAPER_STEP = 0.1  # the published recipe's signed step, clipped back into the ball
PAPER_COPIES = 16  # noise draws averaged per step, published recipe and FGSM
STRONG_COPIES = 2  # noise draws per step of strong (2 matched or beat 4, docs/attacks.md)
CE_STEP = 2.5  # ce_pgd step = CE_STEP * eps / steps (Madry et al.)


@dataclass
class Target:
    """One batch under attack: clean images x0 in [0, 1], labels, one generator per image."""

    model: SplitModel
    x0: Tensor
    labels: Tensor
    gens: list[torch.Generator]
    eps: float
    norm: str

    @cached_property
    def clean(self) -> tuple[Tensor, Tensor]:
        """Coded bits and prediction of the clean images."""
        return coded_bits(self.model, self.x0), prediction(self.model, self.x0)

    def rate(self, quant: str, copies: int = 1, latents: tuple[str, ...] | None = None):
        return lambda x: rate(self.model, x, quant, self.gens, copies, latents)

    def rounded_rate(self, x: Tensor) -> Tensor:
        """The real rounded rate (coded bits, ties broken by estimated bits): what ``strong`` keeps."""
        return rounded_rate(self.model, x)


def paper(t: Target, steps: int) -> Tensor:
    """Zhang et al. (ECCV 2024): signed steps of 0.1 from the clean image, mean -log2 p(y) under
    additive noise averaged over 16 draws, last iterate."""
    return ascend(t.x0, t.x0, t.eps, t.norm, [PAPER_STEP] * steps, t.rate("noise", PAPER_COPIES, ("y",)))[0]


def fgsm(t: Target, steps: int) -> Tensor:
    """One step to the boundary along the gradient of the total rate (noise, 16 draws)."""
    return ascend(t.x0, t.x0, t.eps, t.norm, [2 * t.eps] * steps, t.rate("noise", PAPER_COPIES))[0]


def cosine(start: float, n: int) -> list[float]:
    """n step sizes start * (cos-decay from 1 to ~0, plus 1/n): from start * (1 + 1/n) to ~start / n."""
    return [start * (0.5 * (1 + math.cos(math.pi * i / n)) + 1 / n) for i in range(n)]


def strong(t: Target, steps: int, penalty=None, score=None) -> Tensor:
    """Total rate, three phases, each image keeping its best 8-bit iterate by real coded bits.

    1. ``steps / 10`` steps of 2 eps (to the boundary) from the clean image, noise surrogate;
    2. half the rest with cosine-decaying steps from eps / 2, noise surrogate (2 draws);
    3. the rest with cosine-decaying steps from eps / 4, straight-through rounding.
    Phases 2 and 3 start from the best point so far. ``penalty(x) -> (B,)`` is subtracted from
    the objective; ``score`` replaces the coded bits as the selection criterion.
    """
    score = score or t.rounded_rate
    n1 = max(1, round(steps / 10))
    n2 = (steps - n1 + 1) // 2
    phases = (([2 * t.eps] * n1, t.rate("noise", STRONG_COPIES)),
              (cosine(t.eps / 2, n2), t.rate("noise", STRONG_COPIES)),
              (cosine(t.eps / 4, steps - n1 - n2), t.rate("ste")))
    best = None
    for schedule, objective in phases:
        if penalty is not None:
            objective = (lambda f: lambda x: f(x) - penalty(x))(objective)
        best = ascend(t.x0, t.x0 if best is None else best[0], t.eps, t.norm, schedule, objective, score, best)
    return best[0]


def stealth(t: Target, steps: int) -> Tensor:
    """``strong`` on rate - clean_bits * relu(CE(clean prediction) - ln 2), keeping only iterates
    whose rounded prediction equals the clean one (the clean image itself qualifies)."""
    bits, pred = t.clean

    def penalty(x: Tensor) -> Tensor:
        return bits.to(x) * (cross_entropy(t.model, x, pred) - math.log(2)).clamp_min(0)

    def score(x: Tensor) -> Tensor:
        b, p = rounded_rate_and_prediction(t.model, x)
        return torch.where(p == pred, b, torch.full_like(b, -math.inf))

    return strong(t, steps, penalty, score)


def ce_pgd(t: Target, steps: int) -> Tensor:
    """Untargeted PGD on the cross-entropy to the true label (straight-through rounding), random
    start, step 2.5 eps / steps, last iterate."""
    start = random_point(t.x0, t.eps, t.norm, t.gens)
    objective = lambda x: cross_entropy(t.model, x, t.labels)  # noqa: E731
    return ascend(t.x0, start, t.eps, t.norm, [CE_STEP * t.eps / steps] * steps, objective)[0]


def noise(t: Target, steps: None = None) -> Tensor:
    """Random perturbation on the ball's boundary: +-eps per pixel (L-inf), or a uniformly random
    direction of length eps (L2)."""
    shape = t.x0.shape[1:]
    if t.norm == "linf":
        d = torch.stack([torch.randint(0, 2, shape, generator=g) * 2.0 - 1 for g in t.gens]).to(t.x0) * t.eps
    else:
        d = torch.stack([torch.randn(shape, generator=g) for g in t.gens]).to(t.x0)
        d = d / d.flatten(1).norm(dim=1).clamp_min(1e-12).reshape(-1, *([1] * len(shape))) * t.eps
    return to_grid(project(t.x0 + d, t.x0, t.eps, t.norm), t.x0, t.eps, t.norm) / 255

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
from erbench.conditions.attacks.surrogate import (coded_bits, cross_entropy, latent_bits, prediction, rate,
                                                  rounded_rate, rounded_rate_and_prediction, seeded_noise)
from erbench.models.split import SplitModel

PAPER_STEP = 0.1  # the published recipe's signed step (EntropyR pgd.py lr), clipped back into the ball
PAPER_COPIES = 16  # the published recipe's copies per step (n_sample); also noise_y's and FGSM's draws
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


def published_rate(model: SplitModel, x: Tensor, gens: list[torch.Generator]) -> Tensor:
    """-log2 p(y) per row as the published attack computes it (EntropyR model_wrapper.AuxModule, the
    model in eval mode): a hyperprior's y hard-rounded around the predicted means (no gradient
    through the rounding: it reaches the image only through the predicted scales) with additive
    noise on z; a factorized prior's y with additive noise. Rows are copy-major (``seeded_noise``)."""
    y = model.encode(x)
    with seeded_noise(gens):
        if model.entropy.family == "hyperprior":
            likelihoods = model.entropy(y, "round", "round", hyper_quant="noise")[1]
        else:
            likelihoods = model.entropy(y, "noise", "noise")[1]
    return latent_bits(likelihoods, ("y",))


def paper(t: Target, steps: int) -> Tensor:
    """Zhang et al. (ECCV 2024), EntropyR pgd.py: ``published_iterate`` moved onto the 8-bit grid
    (erbench's one deviation: what gets coded is an 8-bit image; docs/attacks.md measures it)."""
    return to_grid(published_iterate(t, steps), t.x0, t.eps, t.norm) / 255


def published_iterate(t: Target, steps: int) -> Tensor:
    """The published attack's last iterate, in continuous pixel space: from the clean image, each
    step repeats the image 16 times, takes a signed step of 0.1 on every copy along the gradient of
    that copy's ``published_rate``, averages the 16 stepped copies and clips to the eps-ball and [0, 1].

    One image at a time, as the published loop runs: its 16 copies are the batch, so an image's
    result never depends on the batch size or on the other images (torch's CPU kernels round a
    row's results differently in batches of different sizes; erbench.models.blocks)."""
    return torch.cat([_published_one(t.model, t.x0[i : i + 1], t.eps, steps, t.gens[i]) for i in range(len(t.x0))])


def _published_one(model: SplitModel, x0: Tensor, eps: float, steps: int, gen: torch.Generator) -> Tensor:
    lower, upper = (x0 - eps).clamp(min=0.0), (x0 + eps).clamp(max=1.0)
    x = x0
    for _ in range(steps):
        copies = x.repeat(PAPER_COPIES, *([1] * (x.dim() - 1))).requires_grad_(True)
        (grad,) = torch.autograd.grad(published_rate(model, copies, [gen]).sum(), copies)
        stepped = (copies.detach() + PAPER_STEP * grad.sign()).mean(0, keepdim=True)
        x = torch.min(torch.max(stepped, lower), upper)
    return x


def noise_y(t: Target, steps: int) -> Tensor:
    """erbench-v1's ``paper``: the published step, schedule and y-only loss, but additive noise on
    every latent (y included, which makes it much stronger on hyperpriors) and one signed step along
    the gradient of the loss averaged over the 16 draws, instead of 16 per-copy steps averaged."""
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

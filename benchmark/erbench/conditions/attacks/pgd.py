"""Projected gradient ascent in [0, 1] pixel space, optionally keeping each image's best iterate.

``objective(x) -> (B,)`` is maximized (summed over the batch for the gradient, so each image's
step depends only on its own objective). Steps are signed (L-inf) or normalized (L2) gradient
steps followed by projection onto the eps-ball and [0, 1]. With ``score``, every iterate is
moved onto the 8-bit grid and scored (e.g. by the real rounded rate); each image keeps its best
grid point, starting from the clean image.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from erbench.conditions.attacks.grid import direction, project, to_grid

Objective = Callable[[Tensor], Tensor]


def ascend(x0: Tensor, start: Tensor, eps: float, norm: str, schedule: list[float], objective: Objective,
           score: Objective | None = None, best: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor | None]:
    """Run one ascent step per entry of ``schedule`` (the step sizes) from ``start``. Returns the last iterate (on the 8-bit grid, as
    grey levels / 255) or, with ``score``, the best grid point and its score (updating ``best``)."""
    x = start.detach()
    if score is not None and best is None:
        best = (x0.clone(), score(x0))
    for step in schedule:
        x.requires_grad_(True)
        (grad,) = torch.autograd.grad(objective(x).sum(), x)
        x = project(x.detach() + step * direction(grad, norm), x0, eps, norm)
        if score is not None:
            best = _keep_best(best, to_grid(x, x0, eps, norm) / 255, score)
    if score is None:
        return to_grid(x, x0, eps, norm) / 255, None
    return best


def _keep_best(best: tuple[Tensor, Tensor], candidate: Tensor, score: Objective) -> tuple[Tensor, Tensor]:
    s = score(candidate)
    better = s > best[1]
    mask = better.reshape(-1, *([1] * (candidate.dim() - 1)))
    return torch.where(mask, candidate, best[0]), torch.where(better, s, best[1])

"""Projected gradient ascent in [0, 1] pixel space, optionally keeping each image's best iterate.

``objective(x) -> (B,)`` is maximized; it is summed over the batch for the gradient, so each
image's step depends only on its own objective. A step is a signed (L-inf) or normalized (L2)
gradient step followed by projection onto the eps-ball and [0, 1]. With ``score``, every iterate
is moved onto the 8-bit grid and scored (e.g. by its real coded bits); each image
keeps its best grid point, starting from the clean image.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from erbench.conditions.attacks.grid import direction, project, to_grid

Objective = Callable[[Tensor], Tensor]
Best = tuple[Tensor, Tensor]  # per-image best grid point and its score


def ascend(x0: Tensor, start: Tensor, eps: float, norm: str, schedule: list[float], objective: Objective,
           score: Objective | None = None, best: Best | None = None) -> Best | tuple[Tensor, None]:
    """One ascent step per step size in ``schedule``, from ``start``.

    Without ``score``: (last iterate on the 8-bit grid, None). With it: the best grid point so far
    and its score, continuing ``best`` when given.
    """
    x = start.detach()
    if score is not None and best is None:
        best = (x0, score(x0))
    for step in schedule:
        x.requires_grad_(True)
        (grad,) = torch.autograd.grad(objective(x).sum(), x)
        x = project(x.detach() + step * direction(grad, norm), x0, eps, norm)
        if score is not None:
            candidate = to_grid(x, x0, eps, norm) / 255
            s = score(candidate)
            better = s > best[1]
            best = (torch.where(better.reshape(-1, *([1] * (x.dim() - 1))), candidate, best[0]),
                    torch.where(better, s, best[1]))
    if score is None:
        return to_grid(x, x0, eps, norm) / 255, None
    return best

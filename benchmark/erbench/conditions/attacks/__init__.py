"""Adversarial attacks on the entropy model (and the classifier), registered as conditions.

* ``attack.rate_pgd`` -- maximize the coded rate; variants ``paper`` (the published recipe),
  ``noise_y`` (erbench-v1's ``paper``: noise on y too), ``strong``, ``l2`` (strong under L2), ``fgsm`` (one step);
* ``attack.ce_pgd`` -- untargeted classification PGD (what an accuracy attack does to the rate);
* ``attack.noise`` -- a random perturbation of the same size (the non-adversarial baseline);
* ``attack.stealth_rate`` -- maximize the rate while keeping the clean prediction.

Every image's randomness comes from its own generator, seeded from (condition, variant, seed,
dataset index), so the randomness does not depend on the batch size or the evaluated subset. The returned
8-bit images are checked to lie in the eps-ball (the runner then measures their real coded bits).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from erbench.codec import to_tensor
from erbench.conditions.attacks import recipes
from erbench.conditions.attacks.grid import check_norm, verify
from erbench.conditions.base import Cell, Context, Generated
from erbench.errors import ErbenchError, did_you_mean


@dataclass(frozen=True)
class Variant:
    run: Callable[[recipes.Target, int | None], torch.Tensor]
    norm: str | None  # the only norm it attacks under (None: either)
    steps: str  # "iterations" (steps >= 1), "single" (steps == 1) or "none" (steps is null)


class Attack:
    kind = "attack"

    def __init__(self, name: str, summary: str, variants: dict[str | None, Variant], rate_attack: bool):
        self.name, self.summary, self.variants = name, summary, variants
        self.rate_attack = rate_attack  # counted in the per-image worst case (attack.worst_rate)

    def variant(self, cell: Cell) -> Variant:
        """The cell's variant, after checking its parameters fit it."""
        if cell.variant not in self.variants:
            hint = did_you_mean(str(cell.variant), [v for v in self.variants if v])
            raise ErbenchError(f"{self.name} has no variant {cell.variant!r}{hint}", field="variant")
        v = self.variants[cell.variant]
        norm = check_norm(cell.norm)
        if v.norm is not None and norm != v.norm:
            raise ErbenchError(f"{cell.label()}: variant {cell.variant} attacks under {v.norm}", field="norm")
        if cell.eps is None or not cell.eps >= 0:
            raise ErbenchError(f"{cell.label()}: eps must be a number >= 0", field="eps")
        ok = {"iterations": cell.steps is not None and cell.steps >= 1, "single": cell.steps == 1,
              "none": cell.steps is None}[v.steps]
        if not ok:
            raise ErbenchError(f"{cell.label()}: steps must be {v.steps.replace('none', 'null')}", field="steps")
        return v

    def generate(self, cell: Cell, ctx: Context) -> Generated:
        v = self.variant(cell)
        out = np.empty_like(ctx.images)
        for lo in tqdm(range(0, len(ctx.indices), ctx.batch_size), desc=cell.label(), leave=False,
                       disable=not ctx.progress, unit="batch"):
            hi = lo + ctx.batch_size
            gens = [torch.Generator().manual_seed(image_seed(cell, int(i))) for i in ctx.indices[lo:hi]]
            target = recipes.Target(ctx.model, to_tensor(ctx.images[lo:hi], ctx.device),
                                    torch.from_numpy(ctx.labels[lo:hi]).to(ctx.device), gens, cell.eps, cell.norm)
            adv = v.run(target, cell.steps)
            out[lo:hi] = torch.round(adv * 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        verify(out, ctx.images, cell.eps, cell.norm)
        return Generated(out)


# variants seeded under another name: noise_y was erbench-v1's 'paper' and keeps its per-image noise,
# so its rows stay bit-identical to erbench-v1's committed results
SEED_NAMES = {("attack.rate_pgd", "noise_y"): "paper", ("attack.rate_pgd", "paper"): "published"}


def image_seed(cell: Cell, index: int) -> int:
    variant = SEED_NAMES.get((cell.condition, cell.variant), cell.variant)
    return zlib.crc32(f"{cell.condition}:{variant}:{cell.seed}:{index}".encode())


# registered under their names in conditions/catalog.py (which declares the same summary and flags)
RATE_PGD = Attack("attack.rate_pgd", "maximize the coded rate -log2 p (variants paper, noise_y, strong, l2, fgsm)", {
    "paper": Variant(recipes.paper, "linf", "iterations"),
    "noise_y": Variant(recipes.noise_y, "linf", "iterations"),
    "strong": Variant(recipes.strong, "linf", "iterations"),
    "l2": Variant(recipes.strong, "l2", "iterations"),
    "fgsm": Variant(recipes.fgsm, "linf", "single"),
}, rate_attack=True)
CE_PGD = Attack("attack.ce_pgd", "untargeted classification PGD (cross-entropy to the true label)",
                {None: Variant(recipes.ce_pgd, None, "iterations")}, rate_attack=False)
NOISE = Attack("attack.noise", "random perturbation on the eps-ball's boundary (sign noise for L-inf)",
               {None: Variant(recipes.noise, None, "none")}, rate_attack=False)
STEALTH_RATE = Attack("attack.stealth_rate", "maximize the coded rate while keeping the clean prediction",
                      {None: Variant(recipes.stealth, None, "iterations")}, rate_attack=True)
ATTACKS = (RATE_PGD, CE_PGD, NOISE, STEALTH_RATE)

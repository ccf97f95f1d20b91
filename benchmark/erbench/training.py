"""Rate-accuracy training of a split model: loss = cross-entropy + beta * bits per image.

The recipe that works on the digits track (see docs/zoo.md): the tail sees the *rounded* latent
through a straight-through estimator while the rate uses additive uniform noise; the bottleneck
quantiles have their own optimizer (CompressAI's auxiliary loss) and are converged by bisection
before the coder tables are built; hyperprior models warm up at beta = 0 and ramp beta linearly,
which keeps them from collapsing to a constant latent.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from erbench.models.split import SplitModel


@dataclass(frozen=True)
class Recipe:
    beta: float  # weight of bits per image in the loss
    epochs: int = 50
    warmup_epochs: int = 0  # epochs at beta = 0
    ramp_epochs: int = 0  # epochs of linear beta ramp after the warm-up
    batch_size: int = 64
    lr: float = 2e-3
    aux_lr: float = 1e-2
    max_shift: int = 2  # random translation in pixels (augmentation)
    seed: int = 0
    threads: int = 1  # fixed: float reductions then do not depend on the thread count; retraining is bit-identical on one machine

    def beta_at(self, epoch: int) -> float:
        if epoch < self.warmup_epochs:
            return 0.0
        if epoch < self.warmup_epochs + self.ramp_epochs:
            return self.beta * (epoch - self.warmup_epochs + 1) / self.ramp_epochs
        return self.beta


def _shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    if max_shift == 0:
        return x
    dx, dy = torch.randint(-max_shift, max_shift + 1, (2,), generator=gen).tolist()
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))


@contextmanager
def _deterministic(threads: int):
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(False)
        torch.set_num_threads(previous)


def train(model: SplitModel, images: np.ndarray, labels: np.ndarray, recipe: Recipe, progress: bool = True) -> SplitModel:
    """Train in place on uint8 NHWC images, deterministically on the CPU; returns the model ready to code."""
    with _deterministic(recipe.threads):
        _fit(model, images, labels, recipe, progress)
    model.eval()
    model.update(converge_quantiles=True)
    return model


def _fit(model: SplitModel, images: np.ndarray, labels: np.ndarray, recipe: Recipe, progress: bool) -> None:
    torch.manual_seed(recipe.seed)
    gen = torch.Generator().manual_seed(recipe.seed)
    x_all = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    y_all = torch.from_numpy(labels)

    main_params = [p for n, p in model.named_parameters() if not n.endswith("quantiles")]
    aux_params = [p for n, p in model.named_parameters() if n.endswith("quantiles")]
    opt = torch.optim.Adam(main_params, lr=recipe.lr)
    aux_opt = torch.optim.Adam(aux_params, lr=recipe.aux_lr)
    steps_per_epoch = math.ceil(len(y_all) / recipe.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=recipe.epochs * steps_per_epoch)

    model.train()
    bar = tqdm(range(recipe.epochs), desc="train", disable=not progress, leave=False)
    for epoch in bar:
        beta = recipe.beta_at(epoch)
        order = torch.randperm(len(y_all), generator=gen)
        for start in range(0, len(order), recipe.batch_size):
            idx = order[start : start + recipe.batch_size]
            x = _shift(x_all[idx], recipe.max_shift, gen)
            out = model(x, rate_quant="noise", tail_quant="ste")
            ce = F.cross_entropy(out.logits, y_all[idx])
            bits = out.bits().mean()
            loss = ce + beta * bits
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            aux_opt.zero_grad()
            model.entropy.aux_loss().backward()
            aux_opt.step()
        bar.set_postfix(ce=f"{ce.item():.3f}", bits=f"{bits.item():.0f}", beta=f"{beta:.1e}")

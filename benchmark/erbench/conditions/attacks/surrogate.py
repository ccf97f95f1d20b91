"""What the attacks maximize (differentiable surrogates) and how they pick iterates (real bits).

Rate surrogates (bits per image, to maximize):

* ``noise`` -- -log2 likelihood with quantization replaced by additive uniform noise, averaged
  over ``copies`` noise draws (the published attack's surrogate);
* ``ste``   -- -log2 likelihood of the *rounded* latents with a straight-through gradient (the
  quantization the coder sees).

``latents`` picks what is counted: ``("y",)`` (the published loss) or every coded latent.
Iterates are compared by ``rounded_rate``: the real coded bits of the 8-bit image (sized by
``erbench.models.coded_size``: the coder's exact output, mostly without running the coder).

The entropy model draws its noise from torch's global generator, which would tie an image's noise
to its position in the batch. ``seeded_noise`` makes every noise draw come from the image's own
generator instead, so the randomness does not depend on the batch size. Nor does the floating
point: every function here runs the model on blocks of a fixed row count
(``erbench.models.blocks.rowwise``; torch's CPU kernels round an image's outputs and gradients
differently in batches of different sizes), padding rows drawing from generators of their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor

from erbench.models import coded_size, entropy
from erbench.models.blocks import rowwise
from erbench.models.split import SplitModel


@contextmanager
def seeded_noise(gens: list[torch.Generator]) -> Iterator[None]:
    """Within the block, 'noise' quantization of a batch of ``k * len(gens)`` rows (k copies of the
    images, copy-major) draws row ``j * len(gens) + i`` from ``gens[i]``."""
    original = entropy.quantize

    def quantize(x: Tensor, mode: str, centre: Tensor) -> Tensor:
        if mode != "noise":
            return original(x, mode, centre)
        k = x.size(0) // len(gens)
        u = torch.stack([torch.rand((k, *x.shape[1:]), generator=g) for g in gens], dim=1)
        return x + (u.reshape(x.shape) - 0.5).to(x)

    entropy.quantize = quantize
    try:
        yield
    finally:
        entropy.quantize = original


def latent_bits(likelihoods: dict[str, Tensor], latents: tuple[str, ...] | None) -> Tensor:
    """-sum log2 likelihood per row, over the named latents (None: all)."""
    names = likelihoods if latents is None else latents
    return sum(-torch.log2(likelihoods[k]).flatten(1).sum(1) for k in names)


def _own_generators(gens: list[torch.Generator | None]) -> list[torch.Generator]:
    """A block's generators, padding rows (None) given fresh ones: they never draw from an image's."""
    return [g if g is not None else torch.Generator(device="cpu").manual_seed(0) for g in gens]


def rate(model: SplitModel, x: Tensor, quant: str, gens: list[torch.Generator], copies: int = 1,
         latents: tuple[str, ...] | None = None) -> Tensor:
    """Surrogate bits per image (B,), averaged over noise copies for ``quant='noise'``.

    The head runs once; the noise copies are drawn on the latent (where quantization happens), so
    the gradient is that of the mean over copies without ``copies`` head passes. The tail is skipped.
    """
    return rowwise(lambda xb, gb: _rate(model, xb, quant, _own_generators(gb), copies, latents), x, gens)


def _rate(model: SplitModel, x: Tensor, quant: str, gens: list[torch.Generator], copies: int,
          latents: tuple[str, ...] | None) -> Tensor:
    y = model.encode(x)
    if quant != "noise":
        return latent_bits(model.entropy(y, quant, quant)[1], latents)
    with seeded_noise(gens):
        _, likelihoods = model.entropy(y.repeat(copies, *([1] * (y.dim() - 1))), "noise", "noise")
    return latent_bits(likelihoods, latents).reshape(copies, -1).mean(0)


def cross_entropy(model: SplitModel, x: Tensor, target: Tensor) -> Tensor:
    """Cross-entropy per image of the tail's logits on the rounded latent (straight-through)."""
    return rowwise(lambda xb, tb: F.cross_entropy(model(xb, rate_quant="ste", tail_quant="ste").logits, tb,
                                                  reduction="none"), x, target)


@torch.no_grad()
def coded_bits(model: SplitModel, x: Tensor) -> Tensor:
    """Real coded bits per image, all latents (what the runner reports), float64."""
    return rowwise(lambda xb: _coded_bits(model, model.encode(xb)), x)


def _coded_bits(model: SplitModel, y: Tensor, hyper: tuple[Tensor, Tensor, Tensor] | None = None) -> Tensor:
    # exactly what model.entropy.compress(y) writes, mostly without running the coder
    return coded_size.coded_bits(model.entropy, y, hyper).to(torch.float64)


@torch.no_grad()
def rounded_rate_and_prediction(model: SplitModel, x: Tensor) -> tuple[Tensor, Tensor]:
    """Real coded bits, ties (coded sizes come in whole 32-bit words) broken by the estimated bits
    e of the rounded latents: coded + e / (1 + |e|), a strictly increasing term below one bit;
    and the class the tail predicts from the rounded latent (equal to the decoded one).
    One head (and defense) pass, and one pass through the hyper networks, serve all three."""
    return rowwise(lambda xb: _rounded_rate_and_prediction(model, xb), x)


def _rounded_rate_and_prediction(model: SplitModel, x: Tensor) -> tuple[Tensor, Tensor]:
    y = model.encode(x)
    y_hat, likelihoods, hyper = model.entropy.rounded(y)
    est = latent_bits(likelihoods, None).double()
    return _coded_bits(model, y, hyper) + est / (1 + est.abs()), model.tail(y_hat).argmax(1)


def rounded_rate(model: SplitModel, x: Tensor) -> Tensor:
    """The real rounded rate of ``rounded_rate_and_prediction``."""
    return rounded_rate_and_prediction(model, x)[0]


@torch.no_grad()
def prediction(model: SplitModel, x: Tensor) -> Tensor:
    """The class the tail predicts from the rounded latent (equal to the decoded one)."""
    return rowwise(lambda xb: model(xb, rate_quant="round", tail_quant="round").logits.argmax(1), x)

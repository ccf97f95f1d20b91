"""The two entropy-model families: factorized prior and mean-scale hyperprior.

Both offer a differentiable ``forward`` (quantized latent for the tail + likelihoods of every
coded latent) and real ``compress``/``decompress`` through the rANS coder. Quantization modes:

* ``noise`` -- additive uniform noise (training; the published attack's surrogate);
* ``ste``   -- rounding with a straight-through gradient (what the coder sees, differentiable);
* ``round`` -- hard rounding (evaluation).

Latents are rounded around the prior's centre (the bottleneck median, or the predicted mean),
exactly as the coder does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from compressai.entropy_models import EntropyBottleneck, GaussianConditional
from torch import Tensor, nn

from erbench.models.rans import TableCoder

QUANT_MODES = ("noise", "ste", "round")

# CompressAI's default scale table for the Gaussian conditional (0.11 .. 256, 64 levels).
SCALE_TABLE = torch.exp(torch.linspace(math.log(0.11), math.log(256), 64)).tolist()


def quantize(x: Tensor, mode: str, centre: Tensor) -> Tensor:
    if mode == "noise":
        return x + torch.empty_like(x).uniform_(-0.5, 0.5)
    rounded = torch.round(x - centre) + centre
    if mode == "round":
        return rounded
    if mode == "ste":
        return x + (rounded - x).detach()
    raise ValueError(f"unknown quantization mode {mode!r}; expected one of {QUANT_MODES}")


@dataclass
class Coded:
    """Bitstreams of a batch: one list of per-sample strings per coded latent, plus shapes."""

    strings: dict[str, list[bytes]]
    shapes: dict[str, tuple[int, ...]]

    def bits_per_sample(self, latent: str) -> list[int]:
        return [8 * len(s) for s in self.strings[latent]]


def _bottleneck_centre(eb: EntropyBottleneck, like: Tensor) -> Tensor:
    return eb.quantiles[:, 0, 1].reshape(1, -1, *([1] * (like.dim() - 2)))


def _bottleneck_likelihood(eb: EntropyBottleneck, values: Tensor) -> Tensor:
    """Likelihood of already-quantized values under the factorized prior, any mode."""
    perm = (1, 0, *range(2, values.dim()))
    v = values.permute(*perm).contiguous()
    shape = v.shape
    lik, _, _ = eb._likelihood(v.reshape(v.size(0), 1, -1))
    lik = eb.likelihood_lower_bound(lik)
    return lik.reshape(shape).permute(*perm).contiguous()


def gaussian_indexes(gaussian: GaussianConditional, scales: Tensor) -> Tensor:
    """CDF-table index of each scale: what ``GaussianConditional.build_indexes`` computes with a
    Python loop over the scale table, as one ``searchsorted`` (tests check they agree)."""
    bounded = gaussian.lower_bound_scale(scales).contiguous()
    return torch.searchsorted(gaussian.scale_table[:-1].contiguous(), bounded, right=False).int()


def _bottleneck_indexes(eb: EntropyBottleneck, like: Tensor) -> Tensor:
    c = like.size(1)
    idx = torch.arange(c, dtype=torch.int32).reshape(1, c, *([1] * (like.dim() - 2)))
    return idx.expand_as(like)


class _BottleneckCoding:
    """Coding of one latent through an EntropyBottleneck (shared by both families)."""

    def __init__(self, eb: EntropyBottleneck):
        self.eb = eb
        self.coder = TableCoder(eb)

    def encode(self, x: Tensor) -> list[bytes]:
        centre = _bottleneck_centre(self.eb, x)
        symbols = torch.round(x - centre)
        return self.coder.encode(symbols, _bottleneck_indexes(self.eb, x))

    def decode(self, strings: list[bytes], shape: tuple[int, ...], device) -> Tensor:
        like = torch.empty((len(strings), *shape))
        symbols = self.coder.decode(strings, _bottleneck_indexes(self.eb, like)).float()
        return symbols.to(device) + _bottleneck_centre(self.eb, like).to(device)


class FactorizedPrior(nn.Module):
    """y coded with a per-channel non-parametric density (CompressAI EntropyBottleneck)."""

    family = "factorized"
    latents = ("y",)

    def __init__(self, channels: int):
        super().__init__()
        self.bottleneck = EntropyBottleneck(channels)
        self._coding: _BottleneckCoding | None = None

    def forward(self, y: Tensor, rate_quant: str = "round", tail_quant: str = "round"):
        centre = _bottleneck_centre(self.bottleneck, y)
        y_rate = quantize(y, rate_quant, centre)
        y_tail = y_rate if tail_quant == rate_quant else quantize(y, tail_quant, centre)
        return y_tail, {"y": _bottleneck_likelihood(self.bottleneck, y_rate)}

    def rounded(self, y: Tensor) -> tuple[Tensor, dict[str, Tensor], None]:
        """``forward(y, 'round', 'round')``, plus what sizing the code reuses from it: nothing here."""
        return (*self(y, "round", "round"), None)

    def aux_loss(self) -> Tensor:
        return self.bottleneck.loss()

    def update(self, converge_quantiles: bool = False) -> None:
        """Build the coding tables (after converging the bottleneck's quantiles, when training)."""
        self.bottleneck.update(force=True, update_quantiles=converge_quantiles)
        self._coding = _BottleneckCoding(self.bottleneck)

    def _tables(self) -> _BottleneckCoding:
        if self._coding is None:
            self.update()
        return self._coding

    def compress(self, y: Tensor) -> Coded:
        return Coded({"y": self._tables().encode(y)}, {"y": tuple(y.shape[1:])})

    def decompress(self, coded: Coded) -> Tensor:
        return self._tables().decode(coded.strings["y"], coded.shapes["y"], self.bottleneck.quantiles.device)


class MeanScaleHyperprior(nn.Module):
    """y ~ N(mean, scale) predicted from a hyper-latent z, which is coded by an EntropyBottleneck."""

    family = "hyperprior"
    latents = ("y", "z")

    def __init__(self, channels: int, hyper_channels: int, hyper_analysis: nn.Module, hyper_synthesis: nn.Module):
        super().__init__()
        self.hyper_analysis = hyper_analysis  # y -> z
        self.hyper_synthesis = hyper_synthesis  # z_hat -> (scales, means) stacked on channels
        self.bottleneck = EntropyBottleneck(hyper_channels)
        self.gaussian = GaussianConditional(SCALE_TABLE)
        self.channels = channels
        self._coding: tuple[_BottleneckCoding, TableCoder] | None = None

    def _params(self, z_hat: Tensor) -> tuple[Tensor, Tensor]:
        # contiguous: CPU convolutions pick kernels by memory layout, and the decoder's z_hat is
        # contiguous; the same layout on both sides keeps means bit-identical for lossless decoding
        scales, means = self.hyper_synthesis(z_hat.contiguous()).chunk(2, dim=1)
        return scales, means

    def forward(self, y: Tensor, rate_quant: str = "round", tail_quant: str = "round", hyper_quant: str | None = None):
        """``hyper_quant`` quantizes z (default: ``rate_quant``); the published attack uses noise on z
        with hard-rounded y (CompressAI's GaussianConditional in eval mode)."""
        return self._forward(y, rate_quant, tail_quant, hyper_quant)[:2]

    def rounded(self, y: Tensor) -> tuple[Tensor, dict[str, Tensor], tuple[Tensor, Tensor, Tensor]]:
        """``forward(y, 'round', 'round')``, plus what sizing the code reuses from it (one pass
        through the hyper networks for both): the hyper-latent z and y's (scales, means) from the
        rounded z_hat = round(z - median) + median, the very z_hat ``compress`` decodes."""
        return self._forward(y, "round", "round")

    def _forward(self, y: Tensor, rate_quant: str, tail_quant: str, hyper_quant: str | None = None):
        z = self.hyper_analysis(y)
        z_hat = quantize(z, hyper_quant or rate_quant, _bottleneck_centre(self.bottleneck, z))
        z_lik = _bottleneck_likelihood(self.bottleneck, z_hat)
        scales, means = self._params(z_hat)
        y_rate = quantize(y, rate_quant, means)
        y_lik = self.gaussian.likelihood_lower_bound(self.gaussian._likelihood(y_rate, scales, means))
        y_tail = y_rate if tail_quant == rate_quant else quantize(y, tail_quant, means)
        return y_tail, {"y": y_lik, "z": z_lik}, (z, scales, means)

    def aux_loss(self) -> Tensor:
        return self.bottleneck.loss()

    def update(self, converge_quantiles: bool = False) -> None:
        self.bottleneck.update(force=True, update_quantiles=converge_quantiles)
        self.gaussian.update_scale_table(SCALE_TABLE, force=True)
        self._coding = (_BottleneckCoding(self.bottleneck), TableCoder(self.gaussian))

    def _tables(self) -> tuple[_BottleneckCoding, TableCoder]:
        if self._coding is None:
            self.update()
        return self._coding

    def compress(self, y: Tensor) -> Coded:
        z_coding, y_coder = self._tables()
        z = self.hyper_analysis(y)
        z_strings = z_coding.encode(z)
        # the decoder only knows the decoded z: derive the y parameters from it
        z_hat = z_coding.decode(z_strings, tuple(z.shape[1:]), y.device)
        scales, means = self._params(z_hat)
        symbols = torch.round(y - means)
        y_strings = y_coder.encode(symbols, gaussian_indexes(self.gaussian, scales))
        return Coded({"y": y_strings, "z": z_strings}, {"y": tuple(y.shape[1:]), "z": tuple(z.shape[1:])})

    def decompress(self, coded: Coded) -> Tensor:
        z_coding, y_coder = self._tables()
        device = self.bottleneck.quantiles.device
        z_hat = z_coding.decode(coded.strings["z"], coded.shapes["z"], device)
        scales, means = self._params(z_hat)
        symbols = y_coder.decode(coded.strings["y"], gaussian_indexes(self.gaussian, scales))
        return symbols.to(device).float() + means

"""Exact coded size of a latent without running the range coder.

CompressAI 1.2.8's rANS coder (rans_interface.cpp with ryg's rans64.h: precision 16, 64-bit state x
in [L, 2^63), L = 2^31, 32-bit words, 2 flush words) codes value = symbol - offset with frequency
f = cdf[v + 1] - cdf[v]. A value outside [0, max_value), max_value = cdf_length - 2, is coded as
v = max_value (the escape) plus 4-bit bypass chunks: n + n // 15 + 1 of them, n the nibbles of
raw = -2 value - 1 (value < 0) or 2 (value - max_value); here n <= 7, so n + 1.

Let I = sum(16 - log2 f) + 4 chunks and Phi = 32 W + log2 x, W the words emitted so far (one per
renormalisation). Phi starts at 31 and ends at 31 + I + E:

* a put (p = f / 2^16, start s) maps x to x (1 + d) / p, d = (s f - r (2^16 - f)) / (2^16 x),
  r = x mod f: |d| <= p (1 - p) 2^-15 as x >= 2^31, or (1 - p) 2^-15 right after a
  renormalisation (x >= 2^15 f);
* that renormalisation (when x >= 2^47 f) drops x mod 2^32: relative loss < 2^-15 / f;
* a bypass chunk maps x to 16 x + val (x >= 2^27): gain and renormalisation loss < 2^-27 each.

At most W <= (I + E) / 32 puts follow a renormalisation and (1 - p)^2 <= 1, so |E| <= Emax =
(1 + 2^-14) / ln 2 * (2^-15 (sum p (1 - p) + min(W, sum (1 - p)^2) + sum 1 / f) + 2^-26 chunks)
(W first bounded with the sum alone), plus the float64 error of I. With x_final in [2^31, 2^63),
W = floor((I + E) / 32) exactly and the stream is 32 (W + 2) bits. Samples whose
[I - Emax, I + Emax] contains a multiple of 32, or with a symbol beyond +-2^26 (the closed form's
range; the coder itself never returns from ~2^27 on), are sized by the real coder, with the same
symbols and indexes.
"""

from __future__ import annotations

import math
from weakref import WeakKeyDictionary

import torch
from torch import Tensor

from erbench.models.entropy import FactorizedPrior, MeanScaleHyperprior, _bottleneck_centre, gaussian_indexes
from erbench.models.rans import TableCoder

SAFE = 2.0**26  # |symbol| bound: raw escape values stay below 2^28 (<= 7 nibbles), far inside int32
_TABLES: WeakKeyDictionary = WeakKeyDictionary()  # TableCoder -> {device: tables}; a new coder per update()


def _tables(coder: TableCoder, device) -> tuple[Tensor, Tensor]:
    """From the very lists the coder codes with: per (row, column j) the float64 terms
    [16 - log2 f (+4 for the length chunk of an escape), p (1 - p), (1 - p)^2, 1 / f, escape], with
    j = value + 1 clamped to [0, cdf_length - 1] (both ends: the escape); per row, int64
    [position of symbol 0 = base - offset + 1, base, base + cdf_length - 1], base = row * width."""
    per_device = _TABLES.setdefault(coder, {})
    if device not in per_device:
        lengths = torch.tensor(coder._cdf_lengths, dtype=torch.int64)
        width = int(lengths.max())
        cdf = torch.zeros(len(lengths), width, dtype=torch.int64)
        for row, values in zip(cdf, coder._cdfs):
            row[: len(values)] = torch.tensor(values)
        j = torch.arange(width)
        escape = (j == 0) | (j >= lengths[:, None] - 1)
        v = torch.where(escape, lengths[:, None] - 2, j - 1)
        freq = (cdf.gather(1, v + 1) - cdf.gather(1, v)).double()
        p = freq / 2**16
        terms = torch.stack([16 - torch.log2(freq) + 4 * escape, p * (1 - p), (1 - p) ** 2, 1 / freq, escape.double()], -1)
        base = torch.arange(len(lengths)) * width
        rows = torch.stack([base - torch.tensor(coder._offsets) + 1, base, base + lengths - 1], -1)
        per_device[device] = (terms.reshape(-1, 5).to(device), rows.to(device))
    return per_device[device]


def error_bound(spread: Tensor, renorm: Tensor, loss: Tensor, chunks: Tensor, info: Tensor, n: int) -> Tensor:
    """Emax per sample (module docstring) from sums of p (1 - p), (1 - p)^2 and 1 / f over the symbols."""
    scale = (1 + 2**-14) / math.log(2)
    words = torch.floor((info + scale * (2**-15 * (spread + renorm + loss) + 2**-26 * chunks)) / 32)  # >= W
    coding = 2**-15 * (spread + torch.minimum(renorm, words) + loss) + 2**-26 * chunks
    return scale * coding + (n + chunks + 2) * 2**-52 * (info + 1)


def information(coder: TableCoder, symbols: Tensor, indexes: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per sample of rounded ``symbols`` (B, ...) with table ``indexes`` (broadcastable to them):
    information content I and its bound Emax (float64 bits), and whether every symbol is within
    the closed form's range."""
    terms, rows = _tables(coder, symbols.device)
    b, n = symbols.size(0), math.prod(symbols.shape[1:])
    in_range = symbols.reshape(b, n).abs().amax(1) <= SAFE  # False for NaN
    start, low, high = rows.index_select(0, indexes.reshape(-1).long()).reshape(*indexes.shape, 3).unbind(-1)
    unclamped = start + symbols.nan_to_num(0.0).clamp(-SAFE, SAFE).long()
    pos = torch.clamp(unclamped, low, high)
    info, spread, renorm, loss, escapes = terms.index_select(0, pos.reshape(-1)).reshape(b, n, 5).sum(1).unbind(1)
    nibbles = torch.zeros_like(info)
    if bool(escapes.any()):  # bypass chunks: n_bypass = nibbles of raw, plus the length chunk (in terms)
        value = unclamped - low - 1
        raw = torch.where(value < 0, -2 * value - 1, 2 * (unclamped - pos))
        nibbles = ((torch.frexp(raw.double()).exponent + 3) // 4).reshape(b, n).sum(1).double()
    info = info + 4 * nibbles
    chunks = escapes + nibbles
    return info, error_bound(spread, renorm, loss, chunks, info, n), in_range


def latent_bits(coder: TableCoder, symbols: Tensor, indexes: Tensor) -> tuple[Tensor, Tensor]:
    """Closed-form coded bits (B,) int64 of one latent, and which samples it cannot decide (B,) bool."""
    info, err, in_range = information(coder, symbols, indexes)
    low, high = torch.floor((info - err) / 32), torch.floor((info + err) / 32)
    undecided = (low != high) | ~in_range | ~torch.isfinite(info + err)
    return 32 * (torch.where(undecided, 0, high).long() + 2), undecided


def _exact(bits: Tensor, undecided: Tensor, coder: TableCoder, symbols: Tensor, indexes: Tensor) -> Tensor:
    rows = undecided.nonzero().flatten()
    if rows.numel():
        strings = coder.encode(symbols[rows], indexes[rows])
        bits[rows] = torch.tensor([8 * len(x) for x in strings], dtype=bits.dtype).to(bits.device)
    return bits


def _bottleneck_bits(eb, z: Tensor, coder: TableCoder) -> tuple[Tensor, Tensor, Tensor]:
    """Bits and undecided mask of a latent coded by an EntropyBottleneck, and its symbols."""
    symbols = torch.round(z - _bottleneck_centre(eb, z))
    idx = torch.arange(z.size(1), device=z.device, dtype=torch.int32).reshape(1, -1, *([1] * (z.dim() - 2)))
    bits, undecided = latent_bits(coder, symbols, idx)
    return _exact(bits, undecided, coder, symbols, idx.expand_as(symbols)), undecided, symbols


@torch.no_grad()
def coded_bits_per_latent(entropy: FactorizedPrior | MeanScaleHyperprior, y: Tensor,
                          hyper: tuple[Tensor, Tensor, Tensor] | None = None) -> tuple[dict[str, Tensor], Tensor]:
    """What ``entropy.compress(y).bits_per_sample(k)`` returns, per latent k, as (B,) int64 on
    y's device; and the (B,) bool mask of samples the real coder had to size. ``hyper``: the
    (z, scales, means) ``entropy.rounded(y)`` computed (hyperprior), not recomputed here."""
    if entropy.family == "factorized":
        bits, undecided, _ = _bottleneck_bits(entropy.bottleneck, y, entropy._tables().coder)
        return {"y": bits}, undecided
    z_coding, y_coder = entropy._tables()
    z = entropy.hyper_analysis(y) if hyper is None else hyper[0]
    z_bits, undecided, z_symbols = _bottleneck_bits(entropy.bottleneck, z, z_coding.coder)
    if not bool((z_symbols.abs() <= SAFE).all()):  # the decoded z might differ from z_symbols: no shortcut
        coded = entropy.compress(y)
        bits = {k: torch.tensor(coded.bits_per_sample(k), dtype=torch.int64).to(y.device) for k in coded.strings}
        return bits, torch.ones(y.size(0), dtype=torch.bool, device=y.device)
    # compress derives y's parameters from the decoded z: exactly this, the coder being lossless here
    # (and equal bit for bit to the rounded z_hat = round(z - median) + median of entropy.rounded)
    if hyper is None:
        scales, means = entropy._params(z_symbols.int().float() + _bottleneck_centre(entropy.bottleneck, z))
    else:
        scales, means = hyper[1:]
    y_symbols, y_idx = torch.round(y - means), gaussian_indexes(entropy.gaussian, scales)
    y_bits, y_undecided = latent_bits(y_coder, y_symbols, y_idx)
    return {"y": _exact(y_bits, y_undecided, y_coder, y_symbols, y_idx), "z": z_bits}, undecided | y_undecided


def coded_bits(entropy: FactorizedPrior | MeanScaleHyperprior, y: Tensor,
               hyper: tuple[Tensor, Tensor, Tensor] | None = None) -> Tensor:
    """Coded bits per sample (B,) int64, all latents: the sum of ``coded_bits_per_latent``."""
    return sum(coded_bits_per_latent(entropy, y, hyper)[0].values())

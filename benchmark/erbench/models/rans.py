"""Range coding of integer symbols with CompressAI's rANS coder and an entropy model's CDF tables.

CompressAI's own ``compress`` converts the whole CDF table to Python lists for every sample, and
the coder converts them back for every call. Here the lists are built once per table update and
each row is trimmed to its CDF length (the padding is never read); a sample passes only the rows
it uses, so far less crosses into C++ per call. The bitstreams are byte-identical to CompressAI's (benchmarks/codec_speed.py checks).
"""

from __future__ import annotations

import torch
from compressai.ans import RansDecoder, RansEncoder
from compressai.entropy_models.entropy_models import EntropyModel

from erbench.errors import ErbenchError

# CompressAI 1.2.8's encoder never returns once an escaped value's raw bits reach 2^28 (about
# |symbol| >= 1.34e8); refuse such latents instead of hanging.
MAX_SYMBOL = 2**27 - 2**16  # |symbol - offset| < 2^27 keeps the raw bits below 2^28; offsets are small


class TableCoder:
    """Encodes/decodes per-sample symbol tensors with the tables of one entropy model."""

    def __init__(self, entropy_model: EntropyModel):
        if entropy_model.quantized_cdf.numel() == 0:
            raise RuntimeError("entropy model tables are not built; call update() first")
        self._cdf_lengths = entropy_model.cdf_length.reshape(-1).int().tolist()
        self._cdfs = [row[:n] for row, n in zip(entropy_model.quantized_cdf.tolist(), self._cdf_lengths)]
        self._offsets = entropy_model.offset.reshape(-1).int().tolist()

    def _tables_for(self, indexes: torch.Tensor) -> tuple[list[int], list, list[int], list[int]]:
        """Only the rows one sample uses, with its indexes renumbered into them."""
        used, local = torch.unique(indexes.reshape(-1), return_inverse=True)
        rows = used.tolist()
        return (local.tolist(), [self._cdfs[r] for r in rows], [self._cdf_lengths[r] for r in rows],
                [self._offsets[r] for r in rows])

    def encode(self, symbols: torch.Tensor, indexes: torch.Tensor) -> list[bytes]:
        """One bitstream per sample (first dimension)."""
        encoder = RansEncoder()
        if symbols.numel() and symbols.abs().max() >= MAX_SYMBOL:
            raise ErbenchError(f"the model produced latent values beyond +-{MAX_SYMBOL:.3g}, which the range coder "
                               "cannot code (it never returns on them)")
        symbols = symbols.int().cpu()
        indexes = indexes.int().cpu()
        return [encoder.encode_with_indexes(s.reshape(-1).tolist(), *self._tables_for(i))
                for s, i in zip(symbols, indexes)]

    def decode(self, strings: list[bytes], indexes: torch.Tensor) -> torch.Tensor:
        """Integer symbols shaped like ``indexes``."""
        decoder = RansDecoder()
        indexes = indexes.int().cpu()
        out = torch.empty(indexes.shape, dtype=torch.int32)
        for n, (s, i) in enumerate(zip(strings, indexes)):
            out[n] = torch.tensor(decoder.decode_with_indexes(s, *self._tables_for(i)), dtype=torch.int32).reshape(i.shape)
        return out

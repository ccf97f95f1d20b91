"""Range coding of integer symbols with CompressAI's rANS coder and an entropy model's CDF tables.

CompressAI's own ``compress`` converts the whole CDF table to Python lists for every sample;
here the lists are built once per table update, which makes coding of the Gaussian conditional
an order of magnitude faster. The bitstreams are the ones CompressAI writes.
"""

from __future__ import annotations

import torch
from compressai.ans import RansDecoder, RansEncoder
from compressai.entropy_models.entropy_models import EntropyModel


class TableCoder:
    """Encodes/decodes per-sample symbol tensors with the tables of one entropy model."""

    def __init__(self, entropy_model: EntropyModel):
        if entropy_model.quantized_cdf.numel() == 0:
            raise RuntimeError("entropy model tables are not built; call update() first")
        self._cdfs = entropy_model.quantized_cdf.tolist()
        self._cdf_lengths = entropy_model.cdf_length.reshape(-1).int().tolist()
        self._offsets = entropy_model.offset.reshape(-1).int().tolist()

    def encode(self, symbols: torch.Tensor, indexes: torch.Tensor) -> list[bytes]:
        """One bitstream per sample (first dimension)."""
        encoder = RansEncoder()
        symbols = symbols.int().cpu()
        indexes = indexes.int().cpu()
        return [
            encoder.encode_with_indexes(
                s.reshape(-1).tolist(), i.reshape(-1).tolist(), self._cdfs, self._cdf_lengths, self._offsets
            )
            for s, i in zip(symbols, indexes)
        ]

    def decode(self, strings: list[bytes], indexes: torch.Tensor) -> torch.Tensor:
        """Integer symbols shaped like ``indexes``."""
        decoder = RansDecoder()
        indexes = indexes.int().cpu()
        out = torch.empty(indexes.shape, dtype=torch.int32)
        for n, (s, i) in enumerate(zip(strings, indexes)):
            values = decoder.decode_with_indexes(
                s, i.reshape(-1).tolist(), self._cdfs, self._cdf_lengths, self._offsets
            )
            out[n] = torch.tensor(values, dtype=torch.int32).reshape(i.shape)
        return out

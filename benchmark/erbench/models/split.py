"""The split-model protocol every architecture implements.

An image in [0, 1] (N, 3, H, W) goes through ``preprocess`` (normalization) and the ``head`` to a
latent ``y``; the ``entropy`` model quantizes and codes it (plus a hyper-latent ``z`` for the
hyperprior); the ``tail`` maps the decoded latent to class logits. A submission's optional ``defense``
(``erbench.defense``) transforms the image on the edge device before ``preprocess``.

* ``forward(x, rate_quant, tail_quant)`` is differentiable: logits and the likelihoods of every
  coded latent (attacks and training use it);
* ``compress(x)`` / ``decode_logits(coded)`` go through CompressAI's range coder.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import Tensor, nn

from erbench.errors import ErbenchError
from erbench.models.entropy import Coded, FactorizedPrior, MeanScaleHyperprior

# Buffers CompressAI derives from the parameters on update(); they are not part of the weights.
DERIVED_BUFFERS = ("_offset", "_quantized_cdf", "_cdf_length", "scale_table", "scale_bound")


@dataclass
class SplitOutput:
    logits: Tensor
    likelihoods: dict[str, Tensor]  # per coded latent ("y", and "z" for the hyperprior)
    y_hat: Tensor  # the latent the tail saw

    def bits(self) -> Tensor:
        """Estimated bits per sample, all latents: -sum log2 likelihood."""
        return sum(-torch.log2(lik).flatten(1).sum(1) for lik in self.likelihoods.values())


class Normalize(nn.Module):
    def __init__(self, mean: list[float], std: list[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).reshape(1, -1, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


class SplitModel(nn.Module):
    def __init__(self, head: nn.Module, entropy: FactorizedPrior | MeanScaleHyperprior, tail: nn.Module):
        super().__init__()
        self.preprocess: nn.Module = nn.Identity()
        self.defense: nn.Module | None = None  # optional input defense, run by encode (set by the loader)
        self.head = head
        self.entropy = entropy
        self.tail = tail

    @property
    def family(self) -> str:
        return self.entropy.family

    def set_preprocessing(self, mean: list[float], std: list[float]) -> None:
        self.preprocess = Normalize(mean, std)

    def encode(self, x: Tensor) -> Tensor:
        """What the edge device computes before the entropy model: defense, preprocessing, head."""
        if self.defense is not None:
            x = self.defense(x, self)
        return self.head(self.preprocess(x))

    @contextmanager
    def without_defense(self) -> Iterator[SplitModel]:
        """Within the block the model runs undefended (how a defense-unaware attacker sees it)."""
        defense, self.defense = self.defense, None
        try:
            yield self
        finally:
            self.defense = defense

    def forward(self, x: Tensor, rate_quant: str = "round", tail_quant: str = "round") -> SplitOutput:
        y_hat, likelihoods = self.entropy(self.encode(x), rate_quant, tail_quant)
        return SplitOutput(self.tail(y_hat), likelihoods, y_hat)

    @torch.no_grad()
    def compress(self, x: Tensor) -> Coded:
        return self.entropy.compress(self.encode(x))

    @torch.no_grad()
    def decompress(self, coded: Coded) -> Tensor:
        return self.entropy.decompress(coded)

    def update(self, converge_quantiles: bool = False) -> None:
        """Build the range coder's tables; training converges the bottleneck quantiles first."""
        self.entropy.update(converge_quantiles)

    def weights(self) -> dict[str, Tensor]:
        """The tensors that make up a weights file (derived coder tables excluded)."""
        return {
            k: v.detach().cpu().contiguous()
            for k, v in self.state_dict().items()
            if k.rsplit(".", 1)[-1] not in DERIVED_BUFFERS
        }

    def load_weights(self, path: str | Path) -> SplitModel:
        """Load a file written by ``save_file(model.weights(), path)``, strictly: every tensor of
        ``weights()`` and nothing else (``load_state_dict(strict=True)`` would also ask for the coder
        tables ``weights()`` leaves out); then rebuild those tables. Returns the model."""
        missing, unexpected = self.load_state_dict(load_file(str(path)), strict=False)
        missing = [k for k in missing if k.rsplit(".", 1)[-1] not in DERIVED_BUFFERS]
        if missing or unexpected:
            name, what = (missing[0], "missing") if missing else (unexpected[0], "unexpected")
            raise ErbenchError(f"weights do not fit the model: tensor '{name}' is {what}", file=str(path))
        self.update()
        return self

"""What a condition is: a named way to turn clean test images into the images that get coded."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Protocol

import numpy as np

from erbench.data.datasets import Dataset
from erbench.models.split import SplitModel
from erbench.registry import Registry


@dataclass(frozen=True)
class Cell:
    """One measured setting: a condition id plus its parameters (each its own typed result column).

    ``eps`` is in [0, 1] pixel units (8/255 for L-inf 8), under the norm given by ``norm``.
    """

    condition: str
    severity: int | None = None
    norm: str | None = None
    eps: float | None = None
    variant: str | None = None
    steps: int | None = None
    seed: int = 0

    def label(self) -> str:
        params = [f"{f.name}={getattr(self, f.name):g}" if isinstance(getattr(self, f.name), float)
                  else f"{f.name}={getattr(self, f.name)}"
                  for f in fields(self)[1:] if getattr(self, f.name) is not None and f.name != "seed"]
        return self.condition + (f"[{', '.join(params)}]" if params else "")


PARAM_COLUMNS = tuple(f.name for f in fields(Cell))


@dataclass
class Context:
    """What a condition may use: the dataset, the evaluated indices, the model, run settings."""

    dataset: Dataset
    indices: np.ndarray  # (N,) positions in the dataset split (seeds derive from them)
    model: SplitModel
    device: str = "cpu"
    batch_size: int = 64
    cache_dir: Path | None = None
    progress: bool = True

    @cached_property
    def images(self) -> np.ndarray:
        """(N, H, W, 3) uint8 clean images."""
        return self.dataset.images[self.indices]

    @cached_property
    def labels(self) -> np.ndarray:
        return self.dataset.labels[self.indices]


@dataclass
class Generated:
    images: np.ndarray  # (N, H, W, 3) uint8, what the edge device encodes
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # optional per-image columns


class Condition(Protocol):
    kind: str  # "clean" | "corruption" | "attack"
    summary: str

    def generate(self, cell: Cell, ctx: Context) -> Generated: ...


CONDITIONS: Registry[Condition] = Registry("condition")

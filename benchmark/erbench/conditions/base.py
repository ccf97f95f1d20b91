"""What a condition is: a named way to turn clean test images into the images that get coded.

Conditions are registered in ``catalog.py`` (ids, kinds, summaries, flags; no torch), their
implementations are imported on first use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from erbench.cells import PARAM_COLUMNS, Cell  # noqa: F401  (re-exported)
from erbench.conditions.catalog import CONDITIONS  # noqa: F401  (re-exported)
from erbench.data.datasets import Dataset

if TYPE_CHECKING:
    from erbench.models.split import SplitModel


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
    corruption_root: Path | None = None  # a pre-rendered corruption set's root (prerendered.py)

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

"""The versioned battery: which conditions, with which parameters, make up a protocol.

Published protocols are immutable: changing a condition or a metric means a new version; results
rows name the protocol they were run under. A ``quick`` protocol (fewer iterations and images) is
for smoke tests and CI and is labelled as such in every result row.
"""

from __future__ import annotations

from dataclasses import dataclass

from erbench.conditions import CONDITIONS, Cell
from erbench.conditions.corruptions import CORRUPTIONS, SEVERITIES
from erbench.registry import Registry


@dataclass(frozen=True)
class Protocol:
    name: str
    description: str
    cells: tuple[Cell, ...]
    quick: bool = False
    max_images: int | None = None  # quick protocols evaluate only the first N test images

    def __post_init__(self):
        for cell in self.cells:
            if cell.condition not in CONDITIONS:
                raise ValueError(f"protocol {self.name}: condition '{cell.condition}' is not registered")
        if self.cells[0] != Cell("clean"):
            raise ValueError(f"protocol {self.name}: the first cell must be 'clean' (the reference)")
        if len(set(self.cells)) != len(self.cells):
            raise ValueError(f"protocol {self.name}: duplicate cells")

    def select(self, patterns: tuple[str, ...]) -> tuple[Cell, ...]:
        """Cells whose condition id matches any glob pattern; 'clean' is always kept (the reference)."""
        from fnmatch import fnmatchcase

        if not patterns:
            return self.cells
        return tuple(c for c in self.cells if c.condition == "clean" or any(fnmatchcase(c.condition, p) for p in patterns))


def corruption_cells() -> tuple[Cell, ...]:
    return tuple(Cell(f"corruption.{name}", severity=s) for name in CORRUPTIONS for s in SEVERITIES)


PROTOCOLS: Registry[Protocol] = Registry("protocol")
PROTOCOLS.register(
    "erbench-v1",
    Protocol("erbench-v1", "clean + 19 imagecorruptions x severities 1-5", (Cell("clean"), *corruption_cells())),
)
PROTOCOLS.register(
    "erbench-v1-quick",
    Protocol("erbench-v1-quick", "erbench-v1 on the first 64 test images (smoke tests, CI)",
             (Cell("clean"), *corruption_cells()), quick=True, max_images=64),
)
DEFAULT_PROTOCOL = "erbench-v1"

"""A cell: one measured setting, a condition id plus its parameters (each its own typed result column).

Torch-free, so planning a protocol, reading results and building the leaderboard import no model code.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


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

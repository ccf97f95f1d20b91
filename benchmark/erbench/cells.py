"""A cell: one measured setting, a condition id plus its parameters (each its own typed result column).

Torch-free, so planning a protocol, reading results and building the leaderboard import no model code.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

RENDERED = "imagecorruptions"  # the default corruption source: erbench renders the corruption (corruptions.py)


@dataclass(frozen=True)
class Cell:
    """One measured setting: a condition id plus its parameters (each its own typed result column).

    ``eps`` is in [0, 1] pixel units (8/255 for L-inf 8), under the norm given by ``norm``.
    ``corruption_source`` says where a corruption cell's images come from: ``imagecorruptions`` (erbench
    renders them; the default, filled in when omitted) or a pre-rendered set, ``CIFAR-10-C`` /
    ``ImageNet-C`` (conditions/prerendered.py); None for every other condition.
    """

    condition: str
    severity: int | None = None
    norm: str | None = None
    eps: float | None = None
    variant: str | None = None
    steps: int | None = None
    seed: int = 0
    corruption_source: str | None = None

    def __post_init__(self):
        corruption = self.condition.startswith("corruption.")
        if corruption and self.corruption_source is None:
            object.__setattr__(self, "corruption_source", RENDERED)
        elif not corruption and self.corruption_source is not None:
            raise ValueError(f"{self.condition}: only corruption cells have a corruption_source")

    def label(self) -> str:
        params = [f"{f.name}={getattr(self, f.name):g}" if isinstance(getattr(self, f.name), float)
                  else f"{f.name}={getattr(self, f.name)}"
                  for f in fields(self)[1:] if getattr(self, f.name) not in (None, RENDERED) and f.name != "seed"]
        return self.condition + (f"[{', '.join(params)}]" if params else "")


PARAM_COLUMNS = tuple(f.name for f in fields(Cell))

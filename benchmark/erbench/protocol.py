"""The versioned battery: which conditions, with which parameters, make up a protocol.

Published protocols are immutable: changing a condition or a metric means a new version; results
rows name the protocol they were run under. A ``quick`` protocol (fewer iterations and images) is
for smoke tests and CI and is labelled as such in every result row. A submission that declares
a defense also runs the protocol's ``defended_cells``: adaptive attacks that see the defense
(docs/defense.md); every other cell's perturbation is computed against the undefended model.

Torch-free: a protocol reads only condition ids and their declared metadata (conditions/catalog.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from erbench.cells import Cell
from erbench.conditions.catalog import CONDITIONS, CORRUPTIONS, SEVERITIES
from erbench.registry import Registry

WORST_RATE = "attack.worst_rate"  # the per-image worst case over the rate attacks (an aggregate row)
LINF_EPS = tuple(k / 255 for k in (2, 4, 8, 16))
L2_EPS = (0.5, 1.0, 2.0, 4.0)  # about the L2 length of the L-inf grid's sign noise at 3x32x32 (eps * sqrt(3072))
# v2: the published attack script's budgets {2, 4, 8, 16, 32}/255, and the L2 grid doubled to match
LINF_EPS_V2 = tuple(k / 255 for k in (2, 4, 8, 16, 32))
L2_EPS_V2 = (0.5, 1.0, 2.0, 4.0, 8.0)
BLACKBOX_EPS = tuple(k / 255 for k in (8, 16))
ATTACK_STEPS = {"paper": 20, "noise_y": 20, "strong": 100, "l2": 100, "ce_pgd": 20, "stealth_rate": 100,
                "blackbox": 1000}
QUICK_ATTACK_STEPS = {"paper": 5, "noise_y": 5, "strong": 10, "l2": 10, "ce_pgd": 5, "stealth_rate": 10,
                      "blackbox": 100}
ADAPTIVE_EPS = 8 / 255
ADAPTIVE_STEPS, QUICK_ADAPTIVE_STEPS = 50, 10


@dataclass(frozen=True)
class Protocol:
    name: str
    description: str
    cells: tuple[Cell, ...]
    quick: bool = False
    max_images: int | None = None  # quick protocols evaluate only the first N test images
    # adaptive attacks (docs/defense.md): run in addition, only for submissions that declare a defense
    defended_cells: tuple[Cell, ...] = ()

    def __post_init__(self):
        for cell in self.cells + self.defended_cells:
            if cell.condition not in CONDITIONS:
                raise ValueError(f"protocol {self.name}: condition '{cell.condition}' is not registered")
        if self.cells[0] != Cell("clean"):
            raise ValueError(f"protocol {self.name}: the first cell must be 'clean' (the reference)")
        if len(set(self.cells + self.defended_cells)) != len(self.cells + self.defended_cells):
            raise ValueError(f"protocol {self.name}: duplicate cells")

    def cells_for(self, defended: bool) -> tuple[Cell, ...]:
        """Every cell a submission runs: the adaptive ones too when it declares a defense."""
        return self.cells + self.defended_cells if defended else self.cells

    def select(self, patterns: tuple[str, ...], defended: bool = False) -> tuple[Cell, ...]:
        """Cells whose condition id matches any glob pattern; 'clean' is always kept (the reference)."""
        from fnmatch import fnmatchcase

        cells = self.cells_for(defended)
        if not patterns:
            return cells
        return tuple(c for c in cells if c.condition == "clean" or any(fnmatchcase(c.condition, p) for p in patterns))

    def worst_case(self, defended: bool = False) -> dict[tuple[str, float], tuple[Cell, ...]]:
        """The cells each ``attack.worst_rate`` row needs: every rate attack of the protocol, by (norm, eps)."""
        groups: dict[tuple[str, float], list[Cell]] = {}
        for c in self.cells_for(defended):
            if CONDITIONS.meta(c.condition).rate_attack:
                groups.setdefault((c.norm, c.eps), []).append(c)
        return {k: tuple(v) for k, v in groups.items()}


def corruption_cells() -> tuple[Cell, ...]:
    return tuple(Cell(f"corruption.{name}", severity=s) for name in CORRUPTIONS for s in SEVERITIES)


def attack_cells(steps: dict[str, int], linf=LINF_EPS, l2=L2_EPS, rate_variants=("noise_y", "strong"),
                 blackbox=()) -> tuple[Cell, ...]:
    """Rate PGD (``rate_variants``, fgsm), CE PGD, sign noise and stealth rate at every L-inf eps; rate
    PGD (l2) and random L2 noise at every L2 eps; the black-box rate attack at the ``blackbox`` eps.
    (erbench-v1's variant ``paper`` is the one now called ``noise_y``: docs/attacks.md.)"""
    cells = []
    for eps in linf:
        cells += [Cell("attack.rate_pgd", norm="linf", eps=eps, variant=v, steps=steps[v]) for v in rate_variants]
        cells += [Cell("attack.rate_pgd", norm="linf", eps=eps, variant="fgsm", steps=1),
                  Cell("attack.stealth_rate", norm="linf", eps=eps, steps=steps["stealth_rate"]),
                  Cell("attack.ce_pgd", norm="linf", eps=eps, steps=steps["ce_pgd"]),
                  Cell("attack.noise", norm="linf", eps=eps)]
    for eps in l2:
        cells += [Cell("attack.rate_pgd", norm="l2", eps=eps, variant="l2", steps=steps["l2"]),
                  Cell("attack.noise", norm="l2", eps=eps)]
    cells += [Cell("attack.blackbox_rate", norm="linf", eps=eps, variant="square", steps=steps["blackbox"])
              for eps in blackbox]
    return tuple(cells)


def attack_cells_v2(steps: dict[str, int]) -> tuple[Cell, ...]:
    """erbench-v2: the published recipe (``paper``) beside ``noise_y`` and ``strong``, L-inf up to 32/255,
    L2 up to 8, and the black-box rate attack at 8/255 and 16/255."""
    return attack_cells(steps, LINF_EPS_V2, L2_EPS_V2, ("paper", "noise_y", "strong"), BLACKBOX_EPS)


def adaptive_cells(steps: int) -> tuple[Cell, ...]:
    """Adaptive attacks on a defended submission, at L-inf 8/255: BPDA (unrolled, identity), low-DCT
    (the lowest quarter of frequencies per axis) and likelihood-weighted (docs/defense.md)."""
    eps = ADAPTIVE_EPS
    return (Cell("attack.bpda_rate", norm="linf", eps=eps, variant="unrolled", steps=steps),
            Cell("attack.bpda_rate", norm="linf", eps=eps, variant="identity", steps=steps),
            Cell("attack.dct_rate", norm="linf", eps=eps, variant="quarter", steps=steps),
            Cell("attack.likelihood_weighted_rate", norm="linf", eps=eps, steps=steps))


PROTOCOLS: Registry[Protocol] = Registry("protocol")
PROTOCOLS.register(
    "erbench-v2",
    Protocol("erbench-v2", "clean + 19 imagecorruptions x severities 1-5 + 47 attack cells: the published rate attack "
             "exactly, budgets up to 32/255, a black-box packet-size attacker (docs/attacks.md)",
             (Cell("clean"), *corruption_cells(), *attack_cells_v2(ATTACK_STEPS)),
             defended_cells=adaptive_cells(ADAPTIVE_STEPS)),
)
PROTOCOLS.register(
    "erbench-v2-quick",
    Protocol("erbench-v2-quick", "erbench-v2 on the first 64 test images with fewer attack iterations and queries "
             "(smoke tests, CI)",
             (Cell("clean"), *corruption_cells(), *attack_cells_v2(QUICK_ATTACK_STEPS)), quick=True, max_images=64,
             defended_cells=adaptive_cells(QUICK_ADAPTIVE_STEPS)),
)
PROTOCOLS.register(
    "erbench-v1",
    Protocol("erbench-v1", "clean + 19 imagecorruptions x severities 1-5 + 32 attack cells (docs/attacks.md)",
             (Cell("clean"), *corruption_cells(), *attack_cells(ATTACK_STEPS)),
             defended_cells=adaptive_cells(ADAPTIVE_STEPS)),
)
PROTOCOLS.register(
    "erbench-v1-quick",
    Protocol("erbench-v1-quick", "erbench-v1 on the first 64 test images with fewer attack iterations (smoke tests, CI)",
             (Cell("clean"), *corruption_cells(), *attack_cells(QUICK_ATTACK_STEPS)), quick=True, max_images=64,
             defended_cells=adaptive_cells(QUICK_ADAPTIVE_STEPS)),
)
DEFAULT_PROTOCOL = "erbench-v2"

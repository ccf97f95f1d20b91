"""Every registered condition: its canonical id, what it is, and where its implementation lives.

Torch-free: ``erbench list``, the protocols and the leaderboard read a condition's ``kind``,
``summary`` and flags from here; its implementation (attacks import torch) is imported on the
first ``CONDITIONS.get(id)``. A test checks that every target resolves to an object whose
attributes equal what is declared here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from erbench.registry import Registry

if TYPE_CHECKING:
    from erbench.conditions.base import Condition

CORRUPTIONS = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
    "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
    "jpeg_compression", "speckle_noise", "gaussian_blur", "spatter", "saturate",
)
SEVERITIES = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class ConditionInfo:
    """What is known about a condition without importing it (equal to its implementation's attributes)."""

    kind: str  # "clean" | "corruption" | "attack"
    summary: str
    rate_attack: bool = False  # counted in the per-image worst case (attack.worst_rate)
    adaptive: bool = False  # generated against the defended model (docs/defense.md)


CONDITIONS: Registry[Condition] = Registry("condition")

CONDITIONS.register("clean", target="erbench.conditions.clean:CLEAN", meta=ConditionInfo(
    "clean", "the unmodified test images (reference for every delta and overhead)"))

for _name in CORRUPTIONS:
    CONDITIONS.register(f"corruption.{_name}", target=f"erbench.conditions.corruptions:BY_NAME.{_name}",
                        meta=ConditionInfo("corruption",
                                           f"imagecorruptions '{_name}' (Hendrycks & Dietterich), severity 1-5"))


def _attack(condition: str, target: str, summary: str, *, rate_attack: bool = False, adaptive: bool = False) -> None:
    CONDITIONS.register(condition, target=target, meta=ConditionInfo("attack", summary, rate_attack, adaptive))


_PLAIN, _ADAPTIVE = "erbench.conditions.attacks", "erbench.conditions.attacks.adaptive"
_attack("attack.rate_pgd", f"{_PLAIN}:RATE_PGD",
        "maximize the coded rate -log2 p (variants paper, noise_y, strong, l2, fgsm)", rate_attack=True)
_attack("attack.ce_pgd", f"{_PLAIN}:CE_PGD", "untargeted classification PGD (cross-entropy to the true label)")
_attack("attack.noise", f"{_PLAIN}:NOISE", "random perturbation on the eps-ball's boundary (sign noise for L-inf)")
_attack("attack.stealth_rate", f"{_PLAIN}:STEALTH_RATE",
        "maximize the coded rate while keeping the clean prediction", rate_attack=True)
_attack("attack.blackbox_rate", "erbench.conditions.attacks.blackbox:BLACKBOX_RATE",
        "score-based black-box rate attack (Square Attack) querying only the coded size", rate_attack=True)
_attack("attack.bpda_rate", f"{_ADAPTIVE}:BPDA_RATE",
        "rate attack with BPDA gradients through the defense (variants unrolled, identity)",
        rate_attack=True, adaptive=True)
_attack("attack.dct_rate", f"{_ADAPTIVE}:DCT_RATE",
        "rate attack restricted to low DCT frequencies (variants quarter, eighth)", rate_attack=True, adaptive=True)
_attack("attack.likelihood_weighted_rate", f"{_ADAPTIVE}:LIKELIHOOD_WEIGHTED_RATE",
        "rate attack with a per-pixel budget eps x the defense's likelihood mask of the clean image",
        rate_attack=True, adaptive=True)

"""Registry of split-model architectures; each declares the entropy-model family it uses and the
typed, bounded keyword arguments its builder takes (checked before anything is built or imported)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from erbench.errors import shorten
from erbench.registry import Registry, resolve

if TYPE_CHECKING:
    from erbench.models.split import SplitModel


@dataclass(frozen=True)
class IntArg:
    """An integer keyword argument: the builder's default and the inclusive bounds a submission may use."""

    default: int
    lo: int
    hi: int

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is refused, or None. Floats, bools and strings are not integers."""
        if type(value) is not int:
            return f"must be an integer in [{self.lo}, {self.hi}], got {shorten(repr(value))}"
        if not self.lo <= value <= self.hi:
            return f"must be in [{self.lo}, {self.hi}] (bounds that keep the model small), got {shorten(value)}"
        return None


@dataclass(frozen=True)
class Architecture:
    target: str  # "module:function" returning a SplitModel; imported on first use
    family: str  # "factorized" | "hyperprior"
    summary: str
    kwargs: dict[str, IntArg]  # the builder's keyword arguments (tests/test_hostile.py checks them against it)

    def builder(self):
        return resolve(self.target)

    def build(self, **kwargs) -> SplitModel:
        return self.builder()(**kwargs)


ARCHITECTURES: Registry[Architecture] = Registry("architecture")

_LATENT, _HYPER, _WIDTH, _CLASSES = IntArg(16, 1, 256), IntArg(16, 1, 256), IntArg(32, 1, 512), IntArg(10, 2, 1000)
_DIGITS_KWARGS = {
    "factorized": {"latent_channels": _LATENT, "width": _WIDTH, "num_classes": _CLASSES},
    "hyperprior": {"latent_channels": _LATENT, "hyper_channels": _HYPER, "width": _WIDTH, "num_classes": _CLASSES},
}
_DIGITS_HEADS = {
    "small_cnn": "plain 3-conv head",
    "res_cnn": "residual head (2 residual blocks)",
    "gdn_cnn": "GDN head (learned-compression analysis transform)",
}
_FAMILY_NOTE = {"factorized": "factorized prior", "hyperprior": "mean-scale hyperprior (z 16x2x2)"}
for _head, _what in _DIGITS_HEADS.items():
    for _family, _note in _FAMILY_NOTE.items():
        ARCHITECTURES.register(
            f"{_head}_{_family}",
            Architecture(f"erbench.models.digits_cnns:{_head}_{_family}", _family,
                         f"digits 32x32: {_what} -> 16x8x8 latent, {_note}, 2-conv + linear tail",
                         _DIGITS_KWARGS[_family]),
        )
_STUDENT_LATENT, _STUDENT_CLASSES = IntArg(24, 1, 256), IntArg(1000, 2, 10_000)
ARCHITECTURES.register(
    "resnet50_entropic_student_factorized",
    Architecture("erbench.models.entropic_student:resnet50_entropic_student_factorized", "factorized",
                 "ImageNet 224x224: Entropic Student ResNet-50 (sc2bench), GDN head -> 24x55x55 latent, "
                 "factorized prior, GDN decoder + ResNet-50 layer2..fc tail",
                 {"latent_channels": _STUDENT_LATENT, "num_classes": _STUDENT_CLASSES}),
)
ARCHITECTURES.register(
    "resnet50_entropic_student_hyperprior",
    Architecture("erbench.models.entropic_student:resnet50_entropic_student_hyperprior", "hyperprior",
                 "ImageNet 224x224: Entropic Student ResNet-50 (sc2bench), GDN head -> 24x55x55 latent, "
                 "mean-scale hyperprior (z 16x14x14), GDN decoder + ResNet-50 layer2..fc tail",
                 {"latent_channels": _STUDENT_LATENT, "hyper_channels": _HYPER,
                  "num_classes": _STUDENT_CLASSES}),
)

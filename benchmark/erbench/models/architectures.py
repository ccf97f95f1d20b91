"""Registry of split-model architectures; each declares the entropy-model family it uses."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING

from erbench.registry import Registry, resolve

if TYPE_CHECKING:
    from erbench.models.split import SplitModel


@dataclass(frozen=True)
class Architecture:
    target: str  # "module:function" returning a SplitModel; imported on first use
    family: str  # "factorized" | "hyperprior"
    summary: str

    def builder(self):
        return resolve(self.target)

    def parameters(self) -> list[str]:
        return list(inspect.signature(self.builder()).parameters)

    def build(self, **kwargs) -> SplitModel:
        return self.builder()(**kwargs)


ARCHITECTURES: Registry[Architecture] = Registry("architecture")

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
                         f"digits 32x32: {_what} -> 16x8x8 latent, {_note}, 2-conv + linear tail"),
        )
ARCHITECTURES.register(
    "resnet50_entropic_student_factorized",
    Architecture("erbench.models.entropic_student:resnet50_entropic_student_factorized", "factorized",
                 "ImageNet 224x224: Entropic Student ResNet-50 (sc2bench), GDN head -> 24x55x55 latent, "
                 "factorized prior, GDN decoder + ResNet-50 layer2..fc tail"),
)
ARCHITECTURES.register(
    "resnet50_entropic_student_hyperprior",
    Architecture("erbench.models.entropic_student:resnet50_entropic_student_hyperprior", "hyperprior",
                 "ImageNet 224x224: Entropic Student ResNet-50 (sc2bench), GDN head -> 24x55x55 latent, "
                 "mean-scale hyperprior (z 16x14x14), GDN decoder + ResNet-50 layer2..fc tail"),
)

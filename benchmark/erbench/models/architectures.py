"""Registry of split-model architectures; each declares the entropy-model family it uses."""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass

from erbench.models.split import SplitModel
from erbench.registry import Registry


@dataclass(frozen=True)
class Architecture:
    target: str  # "module:function" returning a SplitModel; imported on first use
    family: str  # "factorized" | "hyperprior"
    summary: str

    def builder(self):
        module, attr = self.target.split(":")
        return getattr(importlib.import_module(module), attr)

    def parameters(self) -> list[str]:
        return list(inspect.signature(self.builder()).parameters)

    def build(self, **kwargs) -> SplitModel:
        return self.builder()(**kwargs)


ARCHITECTURES: Registry[Architecture] = Registry("architecture")

ARCHITECTURES.register(
    "small_cnn_factorized",
    Architecture("erbench.models.small_cnn:small_cnn_factorized", "factorized",
                 "3-conv head -> 16x8x8 latent, factorized prior, 2-conv + linear tail (32x32 input)"),
)
ARCHITECTURES.register(
    "small_cnn_hyperprior",
    Architecture("erbench.models.small_cnn:small_cnn_hyperprior", "hyperprior",
                 "3-conv head -> 16x8x8 latent, mean-scale hyperprior (z 16x2x2), 2-conv + linear tail"),
)
ARCHITECTURES.register(
    "resnet50_entropic_student_factorized",
    Architecture("erbench.models.entropic_student:resnet50_entropic_student_factorized", "factorized",
                 "Entropic Student ResNet-50 (sc2bench): GDN bottleneck -> 24x55x55 latent at 224x224, "
                 "factorized prior, ResNet-50 layer2..fc tail"),
)
ARCHITECTURES.register(
    "resnet50_entropic_student_hyperprior",
    Architecture("erbench.models.entropic_student:resnet50_entropic_student_hyperprior", "hyperprior",
                 "Entropic Student ResNet-50 (sc2bench MSHP): 24x55x55 latent at 224x224, mean-scale "
                 "hyperprior (z 16x14x14), ResNet-50 layer2..fc tail"),
)

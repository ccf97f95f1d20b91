"""Small split CNN for the 32x32 digits track (head: 3 convs -> 16x8x8 latent; tail: 2 convs + linear)."""

from __future__ import annotations

from torch import nn

from erbench.models.entropy import FactorizedPrior, MeanScaleHyperprior
from erbench.models.split import SplitModel


def _head(latent: int, width: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, width, 5, stride=2, padding=2), nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
        nn.Conv2d(width, latent, 5, stride=2, padding=2),
    )


def _tail(latent: int, width: int, num_classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(latent, width, 3, padding=1), nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(2 * width, num_classes),
    )


def _hyperprior(latent: int, hyper: int) -> MeanScaleHyperprior:
    analysis = nn.Sequential(
        nn.Conv2d(latent, 2 * hyper, 3, padding=1), nn.ReLU(),
        nn.Conv2d(2 * hyper, 2 * hyper, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(2 * hyper, hyper, 3, stride=2, padding=1),
    )
    synthesis = nn.Sequential(
        nn.ConvTranspose2d(hyper, 2 * hyper, 4, stride=2, padding=1), nn.ReLU(),
        nn.ConvTranspose2d(2 * hyper, 2 * latent, 4, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(2 * latent, 2 * latent, 3, padding=1),
    )
    return MeanScaleHyperprior(latent, hyper, analysis, synthesis)


def small_cnn_factorized(latent_channels: int = 16, width: int = 32, num_classes: int = 10) -> SplitModel:
    return SplitModel(_head(latent_channels, width), FactorizedPrior(latent_channels), _tail(latent_channels, width, num_classes))


def small_cnn_hyperprior(
    latent_channels: int = 16, hyper_channels: int = 16, width: int = 32, num_classes: int = 10
) -> SplitModel:
    return SplitModel(
        _head(latent_channels, width),
        _hyperprior(latent_channels, hyper_channels),
        _tail(latent_channels, width, num_classes),
    )

"""Split CNNs for the 32x32 digits track: three heads, one tail, both entropy-model families.

All heads map (3, 32, 32) to a (16, 8, 8) latent:
* ``small_cnn``  -- plain: conv5/2 -> conv3 -> conv5/2;
* ``res_cnn``    -- residual: conv3/2, two residual blocks, conv3/2;
* ``gdn_cnn``    -- learned-compression style: conv5/2 -> GDN -> conv5/2 -> GDN -> conv3
  (the analysis transform family of Balle et al. and of the Entropic Student's bottleneck).
A depthwise-separable (mobile) head was tried and dropped: it collapsed to a constant latent at
every beta tried (docs/zoo.md).
The tail (conv3 -> conv3/2 -> global pool -> linear) and the hyperprior transforms are shared.
"""

from __future__ import annotations

from compressai.layers import GDN
from torch import Tensor, nn

from erbench.models.entropy import FactorizedPrior, MeanScaleHyperprior
from erbench.models.split import SplitModel


def small_head(latent: int, width: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, width, 5, stride=2, padding=2), nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
        nn.Conv2d(width, latent, 5, stride=2, padding=2),
    )


class ResidualBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1))

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.relu(x + self.body(x))


def res_head(latent: int, width: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, width, 3, stride=2, padding=1), nn.ReLU(),
        ResidualBlock(width), ResidualBlock(width),
        nn.Conv2d(width, latent, 3, stride=2, padding=1),
    )


def gdn_head(latent: int, width: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, width, 5, stride=2, padding=2), GDN(width),
        nn.Conv2d(width, width, 5, stride=2, padding=2), GDN(width),
        nn.Conv2d(width, latent, 3, padding=1),
    )


def tail(latent: int, width: int, num_classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(latent, width, 3, padding=1), nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(2 * width, num_classes),
    )


def hyperprior(latent: int, hyper: int) -> MeanScaleHyperprior:
    """z (hyper, 2, 2) from y (latent, 8, 8); synthesis predicts scales and means of y."""
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


HEADS = {"small_cnn": small_head, "res_cnn": res_head, "gdn_cnn": gdn_head}


def _factorized(head):
    def build(latent_channels: int = 16, width: int = 32, num_classes: int = 10) -> SplitModel:
        return SplitModel(head(latent_channels, width), FactorizedPrior(latent_channels),
                          tail(latent_channels, width, num_classes))
    return build


def _hyperprior(head):
    def build(latent_channels: int = 16, hyper_channels: int = 16, width: int = 32, num_classes: int = 10) -> SplitModel:
        return SplitModel(head(latent_channels, width), hyperprior(latent_channels, hyper_channels),
                          tail(latent_channels, width, num_classes))
    return build


small_cnn_factorized, small_cnn_hyperprior = _factorized(small_head), _hyperprior(small_head)
res_cnn_factorized, res_cnn_hyperprior = _factorized(res_head), _hyperprior(res_head)
gdn_cnn_factorized, gdn_cnn_hyperprior = _factorized(gdn_head), _hyperprior(gdn_head)

"""Entropic-Student ResNet-50 split models (Matsubara et al., WACV 2022; sc2bench 0.1.1).

ResNet-50's stem and layer1 are replaced by a learned compressive bottleneck. The layers are the ones
of sc2bench's ``FPBasedResNetBottleneck`` (factorized prior) and ``MSHPBasedResNetBottleneck``
(mean-scale hyperprior, from the SC2 benchmark, Matsubara et al., TMLR 2023), with ``c = 24`` latent
and ``h = 16`` hyper-latent channels; every convolution is bias-free, GDN1 is CompressAI's simplified GDN
(``compressai.layers.GDN1``):

* head (edge), 3 x H x W -> y: c x (H/4 - 1) x (W/4 - 1), i.e. 24 x 55 x 55 at 224 x 224:
  Conv(3, 4c, k5 s2 p2), GDN1(4c), Conv(4c, 2c, k5 s2 p2), GDN1(2c), Conv(2c, c, k2 s1 p0);
* entropy, factorized: EntropyBottleneck(c);
* entropy, hyperprior (z: h x 14 x 14 at 224 x 224):
  h_a = Conv(c, h, k5 s2 p1), LeakyReLU, Conv(h, h, k5 s2 p2);
  h_s = ConvT(h, h, k5 s2 p1), LeakyReLU, ConvT(h, 3h/2, k5 s2 p1), LeakyReLU, Conv(3h/2, 2c, k5 s1 p0)
  -> scales, means;
* tail (server): decoder to layer1's 256 x H/4 x W/4 output,
  Conv(c, 512, k2 s1 p1), IGDN1(512), Conv(512, 256, k2 s1 p0), IGDN1(256), Conv(256, 256, k2 s1 p1),
  then torchvision ResNet-50 layer2, layer3, layer4, avgpool, fc.

Input sides must be multiples of 4 (multiples of 16 for the hyperprior, so that h_s restores y's size).
Images are normalized by the submission's ``preprocessing`` (ImageNet mean/std), not by the model.
"""

from __future__ import annotations

from collections import OrderedDict

from compressai.layers import GDN1
from torch import nn
from torchvision.models import resnet50

from erbench.models.entropy import FactorizedPrior, MeanScaleHyperprior
from erbench.models.split import SplitModel


def _head(c: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 4 * c, 5, stride=2, padding=2, bias=False), GDN1(4 * c),
        nn.Conv2d(4 * c, 2 * c, 5, stride=2, padding=2, bias=False), GDN1(2 * c),
        nn.Conv2d(2 * c, c, 2, bias=False),
    )


def _tail(c: int, num_classes: int) -> nn.Module:
    resnet = resnet50(weights=None, num_classes=num_classes)
    decoder = nn.Sequential(
        nn.Conv2d(c, 512, 2, padding=1, bias=False), GDN1(512, inverse=True),
        nn.Conv2d(512, 256, 2, bias=False), GDN1(256, inverse=True),
        nn.Conv2d(256, 256, 2, padding=1, bias=False),
    )
    return nn.Sequential(OrderedDict(
        decoder=decoder, layer2=resnet.layer2, layer3=resnet.layer3, layer4=resnet.layer4,
        avgpool=resnet.avgpool, flatten=nn.Flatten(), fc=resnet.fc,
    ))


def _hyperprior(c: int, h: int) -> MeanScaleHyperprior:
    analysis = nn.Sequential(
        nn.Conv2d(c, h, 5, stride=2, padding=1, bias=False), nn.LeakyReLU(),
        nn.Conv2d(h, h, 5, stride=2, padding=2, bias=False),
    )
    synthesis = nn.Sequential(
        nn.ConvTranspose2d(h, h, 5, stride=2, padding=1, bias=False), nn.LeakyReLU(),
        nn.ConvTranspose2d(h, h * 3 // 2, 5, stride=2, padding=1, bias=False), nn.LeakyReLU(),
        nn.Conv2d(h * 3 // 2, 2 * c, 5, bias=False),
    )
    return MeanScaleHyperprior(c, h, analysis, synthesis)


def resnet50_entropic_student_factorized(latent_channels: int = 24, num_classes: int = 1000) -> SplitModel:
    return SplitModel(_head(latent_channels), FactorizedPrior(latent_channels), _tail(latent_channels, num_classes))


def resnet50_entropic_student_hyperprior(
    latent_channels: int = 24, hyper_channels: int = 16, num_classes: int = 1000
) -> SplitModel:
    return SplitModel(
        _head(latent_channels),
        _hyperprior(latent_channels, hyper_channels),
        _tail(latent_channels, num_classes),
    )

"""Entropic-Student ResNet-50 with random weights at 64x64: shapes, real coding, rate gradients, weights files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from erbench.errors import ErbenchError
from erbench.models.architectures import ARCHITECTURES
from erbench.models.loader import check_fit, file_sha256, load_model
from erbench.spec import Submission

NAMES = {"factorized": "resnet50_entropic_student_factorized", "hyperprior": "resnet50_entropic_student_hyperprior"}
# golden: sc2bench's layers + torchvision ResNet-50 layer2..fc, 1000 classes
PARAMETERS = {"factorized": 26_635_856, "hyperprior": 26_696_168}
IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def spread(head_out: torch.nn.Conv2d, hyper_analysis=None, hyper_synthesis=None, channels: int = 24) -> None:
    """Move random weights into the coder's working regime.

    Untrained, y rounds almost entirely to the prior's centre, and h_s predicts scales <= 0 (clamped to
    0.11) that put every symbol outside the coder's tables, where -log2 likelihood and escape coding
    disagree by design. Scaled: y spans ~20 bins, z several, and the predicted scales are positive.
    """
    with torch.no_grad():
        head_out.weight.mul_(20)
        if hyper_analysis is not None:
            hyper_analysis[-1].weight.mul_(10)
            scales = hyper_synthesis[-1].weight[:channels]
            scales.copy_(4 * scales.abs())


def submission(family: str, file: Path, **extra) -> Submission:
    return Submission.model_validate({
        "id": "es", "title": "Entropic Student", "authors": ["test"], "license": "MIT", "dataset": "imagenet",
        "model": {"architecture": NAMES[family]}, "entropy_model": family, "beta": 0.08,
        "weights": {"file": file.name, "sha256": file_sha256(file)}, **extra,
    })




@pytest.fixture(scope="module", params=list(NAMES))
def model(request):
    torch.manual_seed(0)
    m = ARCHITECTURES.get(NAMES[request.param]).build()
    spread(m.head[-1], getattr(m.entropy, "hyper_analysis", None), getattr(m.entropy, "hyper_synthesis", None))
    m.eval()
    m.update()
    return m


@pytest.fixture(scope="module")
def x():
    return torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))


def test_registration_and_parameter_count(model):
    assert ARCHITECTURES.get(NAMES[model.family]).family == model.family
    assert sum(p.numel() for p in model.parameters()) == PARAMETERS[model.family]
    assert sum(p.numel() for p in model.head.parameters()) == 138_672  # 3 -> 96 -> 48 -> 24, two GDN1


def test_shapes_at_64_and_224(model, x):
    with torch.no_grad():
        out = model(x)
        features = model.tail.decoder(out.y_hat)
        _, lik224 = model.entropy(model.encode(torch.rand(1, 3, 224, 224)))
    assert out.logits.shape == (2, 1000)
    assert out.y_hat.shape == (2, 24, 15, 15)
    assert features.shape == (2, 256, 16, 16)  # ResNet-50 layer1's output at 64x64
    assert lik224["y"].shape == (1, 24, 55, 55)
    if model.family == "hyperprior":
        assert out.likelihoods["z"].shape == (2, 16, 4, 4)
        assert lik224["z"].shape == (1, 16, 14, 14)


def test_decoded_latent_is_exact_and_coded_bits_match_estimated(model, x):
    with torch.no_grad():
        out = model(x)
        coded = model.compress(x)
        y_dec = model.decompress(coded)
        logits = model.tail(y_dec)
    assert torch.equal(y_dec, out.y_hat)
    assert torch.allclose(logits, out.logits)
    assert set(coded.strings) == set(model.entropy.latents)
    for latent, lik in out.likelihoods.items():
        estimated = -torch.log2(lik).flatten(1).sum(1)
        if latent == "y":
            assert (estimated > lik[0].numel()).all()  # > 1 bit per symbol: the latent is not trivial
        for est, real in zip(estimated.tolist(), coded.bits_per_sample(latent)):
            # rANS: information content + a fixed cost per stream (state flush, byte alignment)
            assert -0.02 * est < real - est < 0.03 * est + 64, (latent, real, est)


@pytest.mark.parametrize("quant", ["ste", "noise"])
def test_rate_gradient_reaches_the_input(model, x, quant):
    xg = x.clone().requires_grad_()
    out = model(xg, rate_quant=quant, tail_quant=quant)
    for latent, lik in out.likelihoods.items():
        (grad,) = torch.autograd.grad(-torch.log2(lik).sum(), xg, retain_graph=True)
        assert torch.isfinite(grad).all()
        assert (grad != 0).float().mean() > 0.5, latent


def test_weights_round_trip_through_safetensors(model, x, tmp_path):
    path = tmp_path / "es.safetensors"
    save_file(model.weights(), str(path))
    loaded = load_model(submission(model.family, path, preprocessing=IMAGENET), tmp_path / "es.yaml")
    normalized = loaded.preprocess(x)
    assert not torch.equal(normalized, x)
    assert loaded.compress(x).strings == model.compress(normalized).strings
    with torch.no_grad():
        assert torch.equal(loaded(x).logits, model(normalized).logits)

    tensors = model.weights()
    del tensors["tail.fc.weight"]
    with pytest.raises(ErbenchError, match="'tail.fc.weight' is missing"):
        check_fit({k: tuple(v.shape) for k, v in model.weights().items()}, {k: tuple(v.shape) for k, v in tensors.items()},
                  path)

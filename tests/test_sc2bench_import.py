"""sc2bench checkpoints -> erbench weights: random sc2bench models code and classify identically after import."""

from __future__ import annotations

import argparse

import pytest
import torch
from test_entropic_student import spread, submission

from erbench.errors import ErbenchError
from erbench.models.loader import load_model
from erbench.models.sc2bench_import import convert, main

backbone = pytest.importorskip("sc2bench.models.backbone")

BOTTLENECKS = {"factorized": "FPBasedResNetBottleneck", "hyperprior": "MSHPBasedResNetBottleneck"}


@pytest.fixture(scope="module", params=list(BOTTLENECKS))
def reference(request):
    """A randomly initialized sc2bench Entropic Student, as its ImageNet configs build it."""
    torch.manual_seed(0)
    ref = backbone.splittable_resnet(
        {"key": BOTTLENECKS[request.param], "kwargs": {"num_bottleneck_channels": 24, "num_target_channels": 256}},
        resnet_name="resnet50", skips_avgpool=False, skips_fc=False,
    )
    bl = ref.bottleneck_layer
    if request.param == "factorized":
        spread(bl.encoder[-1])
    else:
        spread(bl.g_a[-1], bl.h_a, bl.h_s)
    ref.eval()
    ref.update()
    return request.param, ref


def test_imported_model_writes_sc2bench_bitstreams_and_logits(reference, tmp_path, capsys):
    family, ref = reference
    ckpt = tmp_path / "ckpt.pt"  # torchdistill's checkpoint layout
    torch.save({"model": ref.state_dict(), "args": argparse.Namespace(device="cpu"), "best_value": 0.5}, ckpt)
    weights = tmp_path / "es.safetensors"
    assert main([str(ckpt), str(weights), "--family", family]) == 0
    assert "sha256" in capsys.readouterr().out
    model = load_model(submission(family, weights), tmp_path / "es.yaml")

    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected_strings = ref.bottleneck_layer.encode(x)["strings"]
        expected_logits = ref(x)  # sc2bench codes and decodes in eval mode after update()
        coded = model.compress(x)
        logits = model.tail(model.decompress(coded))
    assert expected_strings == [coded.strings[k] for k in model.entropy.latents]
    assert torch.allclose(logits, expected_logits, rtol=1e-4, atol=1e-4)


def test_old_compressai_names_and_foreign_tensors(tmp_path, capsys):
    t = torch.zeros(1)
    assert set(convert({"bottleneck_layer.entropy_bottleneck._matrix0": t, "fc.bias": t}, "factorized")) == {
        "entropy.bottleneck.matrices.0", "tail.fc.bias",
    }
    with pytest.raises(ErbenchError, match="'conv1.weight' has no counterpart"):
        convert({"conv1.weight": t}, "factorized")  # a plain ResNet-50 still has its stem

    ckpt = tmp_path / "fp.pt"
    torch.save({"bottleneck_layer.encoder.0.weight": t}, ckpt)
    assert main([str(ckpt), str(tmp_path / "w.safetensors"), "--family", "hyperprior"]) == 2
    assert "'bottleneck_layer.encoder.0.weight' has no counterpart in the hyperprior" in capsys.readouterr().err

"""coded_size: the closed-form coded size equals what the rANS coder writes, on every sample."""

from __future__ import annotations

import math
import struct
from types import SimpleNamespace

import pytest
import torch
from conftest import REFERENCE
from test_entropic_student import NAMES as STUDENT, spread

from erbench.codec import to_tensor
from erbench.conditions.attacks import surrogate
from erbench.data.datasets import load_dataset
from erbench.models import coded_size
from erbench.models.architectures import ARCHITECTURES
from erbench.models.entropy import _bottleneck_centre, gaussian_indexes
from erbench.models.loader import load_model
from erbench.models.rans import TableCoder
from erbench.spec import load_submission

DATA = load_dataset("digits", "test")
SPECS = {"factorized": REFERENCE["digits_small_cnn_fp_b1e-3"], "hyperprior": REFERENCE["digits_small_cnn_hp_b1e-4"]}
SHARES: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def report_fallback_share():
    yield
    print("\nfallback share:", {k: round(v, 4) for k, v in SHARES.items()})


@pytest.fixture(scope="module", params=list(SPECS))
def model(request):
    return load_model(load_submission(SPECS[request.param]), SPECS[request.param]).eval()


@pytest.fixture(scope="module")
def x():
    return to_tensor(DATA.images, "cpu")


def check(model, y: torch.Tensor, case: str = "") -> float:
    """Assert closed form == coder, per latent and sample; record and return the fallback share."""
    with torch.no_grad():
        coded = model.entropy.compress(y)
    bits, undecided = coded_size.coded_bits_per_latent(model.entropy, y)
    assert set(bits) == set(coded.strings)
    for k in coded.strings:
        assert bits[k].dtype == torch.int64 and bits[k].device == y.device
        assert bits[k].tolist() == coded.bits_per_sample(k), (case, k)
    total = [sum(b) for b in zip(*(coded.bits_per_sample(k) for k in coded.strings))]
    assert coded_size.coded_bits(model.entropy, y).tolist() == total
    share = undecided.float().mean().item()
    if case:
        SHARES[f"{model.family} {case}"] = share
    return share


def latents(entropy, y):
    """(coder, symbols, indexes) of every coded latent, computed as compress does."""
    coders = entropy._tables()
    z_coding, y_coder = (coders, None) if entropy.family == "factorized" else coders
    z = y if y_coder is None else entropy.hyper_analysis(y)
    centre = _bottleneck_centre(entropy.bottleneck, z)
    z_symbols = torch.round(z - centre)
    z_idx = torch.arange(z.size(1), dtype=torch.int32).reshape(1, -1, 1, 1).expand_as(z)
    out = [(z_coding.coder, z_symbols, z_idx)]
    if y_coder is not None:
        scales, means = entropy._params(z_symbols + centre)
        out.append((y_coder, torch.round(y - means), gaussian_indexes(entropy.gaussian, scales)))
    return out


def slack(entropy, y) -> float:
    """Check the derivation itself: the coder's final state (its first 8 bytes) gives the exact
    error E = 32 W + log2 x - 31 - I; assert |E| <= Emax everywhere and return max |E| / Emax."""
    worst = 0.0
    with torch.no_grad():
        for coder, symbols, idx in latents(entropy, y):
            info, bound, in_range = coded_size.information(coder, symbols, idx)
            assert in_range.all()
            for string, i, e in zip(coder.encode(symbols, idx), info.tolist(), bound.tolist()):
                x_final = struct.unpack("<Q", string[:8])[0]
                assert 2**31 <= x_final < 2**63
                err = 32 * (len(string) // 4 - 2) + math.log2(x_final) - 31 - i
                assert abs(err) <= e, (err, e)
                worst = max(worst, abs(err) / e)
    return worst


def test_the_error_bound_holds_on_the_coders_own_state(model, x):
    with torch.no_grad():
        y = model.encode(x[:128])
    ratios = [slack(model.entropy, y * s) for s in (1, 5, 1e4)]
    print(f"\n{model.family}: max |E| / Emax = {max(ratios):.3g}")
    assert max(ratios) < 1


def test_digits_test_images(model, x):
    with torch.no_grad():
        y = model.encode(x)
    assert check(model, y, "clean") <= 0.01


def test_perturbed_and_noise_images(model, x):
    g = torch.Generator().manual_seed(0)
    perturbed = (x + 0.5 * (torch.rand(x.shape, generator=g) - 0.5)).clamp(0, 1)
    noise = torch.rand(x.shape, generator=g)
    with torch.no_grad():
        assert check(model, model.encode(perturbed), "perturbed") <= 0.01
        assert check(model, model.encode(noise), "noise") <= 0.01


@pytest.mark.parametrize("scale", [5, 50, 1e4])
def test_scaled_latents_escape(model, x, scale):
    with torch.no_grad():
        y = model.encode(x[:128]) * scale
    check(model, y, f"y*{scale:g}")


def test_escapes_at_every_bypass_length():
    """One synthetic table (max_value 3, offset -1); each sample repeats one value 40 times, values
    around every nibble boundary of the escape's raw value (1 to 7 nibbles), both sides."""
    table = SimpleNamespace(quantized_cdf=torch.tensor([[0, 20000, 50000, 65000, 65536]], dtype=torch.int32),
                            cdf_length=torch.tensor([5], dtype=torch.int32), offset=torch.tensor([-1], dtype=torch.int32))
    coder = TableCoder(table)
    values = sorted({v + d for k in range(24) for v in (2**k, -(2**k), 3 + 2**k) for d in (-2, -1, 0, 1, 2)})
    symbols = (torch.tensor(values, dtype=torch.float64) - 1).float()[:, None].repeat(1, 40)
    idx = torch.zeros(symbols.shape, dtype=torch.int32)
    bits, undecided = coded_size.latent_bits(coder, symbols, idx)
    real = [8 * len(s) for s in coder.encode(symbols, idx)]
    assert bits[~undecided].tolist() == torch.tensor(real)[~undecided].tolist()
    assert undecided.float().mean() < 0.5


def test_symbols_beyond_the_closed_form_go_to_the_coder(x):
    """|symbol| > 2^26: sized by the coder. (Beyond ~2^27 the installed coder never returns.)"""
    model = load_model(load_submission(SPECS["factorized"]), SPECS["factorized"]).eval()
    with torch.no_grad():
        y = model.encode(x[:16])
    y = y / y.abs().amax(dim=(1, 2, 3), keepdim=True) * 1e8 * torch.linspace(0.1, 1, 16).reshape(-1, 1, 1, 1)
    _, undecided = coded_size.coded_bits_per_latent(model.entropy, y)
    assert undecided[-1] and not undecided[0]
    check(model, y)


def test_hyperprior_with_z_beyond_the_closed_form_uses_compress(x, monkeypatch):
    model = load_model(load_submission(SPECS["hyperprior"]), SPECS["hyperprior"]).eval()
    with torch.no_grad():
        y = model.encode(x[:32]) * 50
    monkeypatch.setattr(coded_size, "SAFE", 0.5)
    assert check(model, y) == 1.0


def test_the_fallback_triggers_and_is_exact(monkeypatch, x):
    """Escape-heavy latents (f = 1 escapes, 4-bit chunks) have integral information content, often
    a multiple of 32: undecided, sized by the coder. An absurd bound sends every sample there."""
    model = load_model(load_submission(SPECS["factorized"]), SPECS["factorized"]).eval()
    with torch.no_grad():
        y = model.encode(x) * 1e4
    assert check(model, y) > 0.02
    monkeypatch.setattr(coded_size, "error_bound", lambda *terms: torch.full_like(terms[4], 100.0))
    assert check(model, y) == 1.0


@pytest.mark.parametrize("family", list(STUDENT))
def test_entropic_student_larger_latents(family):
    torch.manual_seed(0)
    m = ARCHITECTURES.get(STUDENT[family]).build()
    spread(m.head[-1], getattr(m.entropy, "hyper_analysis", None), getattr(m.entropy, "hyper_synthesis", None))
    m.eval()
    m.update()
    x = torch.rand(8, 3, 128, 128, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = m.encode(x)
    assert y[0].numel() > 20_000
    assert check(m, y, "student") <= 0.25
    for scale in (0.3, 5):
        check(m, y * scale, f"student y*{scale:g}")


def test_surrogate_uses_it_and_stays_the_coders_bits(model, x):
    with torch.no_grad():
        coded = model.compress(x[:64])
    real = [sum(b) for b in zip(*(coded.bits_per_sample(k) for k in coded.strings))]
    bits = surrogate.coded_bits(model, x[:64])
    assert bits.dtype == torch.float64 and bits.tolist() == real
    score, _ = surrogate.rounded_rate_and_prediction(model, x[:64])
    assert torch.equal(score.floor(), bits)
    assert surrogate.coded_bits(model, x[:0]).shape == (0,)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no cuda")
def test_cuda(x):
    model = load_model(load_submission(SPECS["hyperprior"]), SPECS["hyperprior"]).eval().cuda()
    with torch.no_grad():
        y = model.encode(x.cuda())
    for scale in (1, 50):
        check(model, y * scale)

"""The likelihood-TV defense and the adaptive attacks: each does, and constrains, what it claims."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import ROOT

from erbench.codec import measure, to_tensor
from erbench.conditions import CONDITIONS, Cell, Context, Generated
from erbench.conditions.attacks import adaptive
from erbench.conditions.attacks.recipes import Target
from erbench.conditions.attacks.surrogate import rate
from erbench.data.datasets import load_dataset
from erbench.defense import (DefenseSpec, LikelihoodTVDefense, likelihood_mask, total_variation, tv_denoise)
from erbench.errors import ErbenchError
from erbench.models.loader import load_model
from erbench.protocol import PROTOCOLS
from erbench.engine.worker import run_cell
from erbench.runner import evaluate
from erbench.spec import load_submission, weights_path

DEFENDED = sorted((ROOT / "submissions" / "reference" / "defended").glob("*.yaml"))
BY_ID = {p.stem: p for p in DEFENDED}
FP_TV, HP_TV = BY_ID["digits_small_cnn_fp_b1e-3_tv"], BY_ID["digits_small_cnn_hp_b1e-4_tv"]
EPS = 8 / 255


def _model(path: Path, iterations: int | None = None):
    """A defended reference model; ``iterations`` shortens its denoiser (faster attack tests)."""
    sub = load_submission(path)
    model = load_model(sub, path)
    if iterations is not None:
        model.defense = sub.defense.model_copy(update={"iterations": iterations}).build()
    return model


def _target(model, n: int = 4, start: int = 0) -> Target:
    data = load_dataset("digits")
    x0 = to_tensor(data.images[start:start + n], "cpu")
    gens = [torch.Generator().manual_seed(i) for i in range(n)]
    return Target(model, x0, torch.from_numpy(data.labels[start:start + n]), gens, EPS, "linf")


# --- the denoiser ------------------------------------------------------------------------------

def test_tv_denoiser_lowers_tv_keeps_fidelity_and_solves_the_problem():
    torch.manual_seed(0)
    x = (torch.rand(2, 3, 16, 16, dtype=torch.float64) * 0.2 + torch.linspace(0, 0.8, 16, dtype=torch.float64))
    w = torch.rand(2, 1, 16, 16, dtype=torch.float64) * 0.05
    u = tv_denoise(x, w, 200, 0.25)
    assert (total_variation(u) < 0.7 * total_variation(x)).all()
    # fidelity: u = x + div p with |p| <= w, so no pixel moves by more than 4 times its weight
    assert ((u - x).abs() <= 4 * w.max() + 1e-12).all()
    energy = lambda v: 0.5 * ((v - x) ** 2).flatten(1).sum(1) + total_variation(v, w)  # noqa: E731
    for _ in range(10):  # u is the minimizer: no nearby point has lower energy
        assert (energy(u + 1e-3 * torch.randn_like(u)) >= energy(u) - 1e-9).all()
    # the autograd path computes the same iterations as the in-place one
    assert torch.allclose(tv_denoise(x.clone().requires_grad_(True), w, 200, 0.25), u, atol=1e-12)


def test_tv_denoiser_matches_scikit_image_for_a_uniform_weight():
    from skimage.restoration import denoise_tv_chambolle

    torch.manual_seed(1)
    x = torch.rand(1, 1, 20, 20, dtype=torch.float64)
    ours = tv_denoise(x, torch.tensor(0.05, dtype=torch.float64), 3000, 0.25)[0, 0].numpy()
    ref = denoise_tv_chambolle(x[0, 0].numpy(), weight=0.05, eps=1e-10, max_num_iter=5000)
    assert np.abs(ours - ref).max() < 1e-3


class _StubEntropy(torch.nn.Module):
    """Rate of a latent position = 10 x sum over channels of |y|: a known likelihood map."""

    def forward(self, y, rate_quant, tail_quant):
        return y, {"y": torch.exp2(-10 * y.abs())}


class _StubModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.preprocess, self.head, self.entropy = torch.nn.Identity(), torch.nn.AvgPool2d(4), _StubEntropy()


def test_mask_follows_the_likelihood_map_and_high_rate_regions_are_smoothed_less():
    torch.manual_seed(0)
    base = torch.full((1, 3, 32, 32), 0.3)
    base[..., :, :16] = 0.6  # left half: large latents, many bits; right half: fewer bits
    x = base + (torch.rand(1, 1, 32, 32) - 0.5) * 0.2  # the same noise on both halves
    model = _StubModel()
    mask = likelihood_mask(model, x)
    assert mask.shape == (1, 1, 32, 32) and mask.min() >= 0 and mask.max() <= 1
    assert mask[..., :, :12].min() > 0.8 and mask[..., :, 20:].max() < 0.2
    defense = LikelihoodTVDefense(iterations=100, weight=0.1, step=0.25, object_weight=0.1)
    u = defense(x, model)
    left, right = u[..., 2:-2, 2:12].std(), u[..., 2:-2, 20:30].std()  # remaining noise
    assert right < 0.5 * left, "the low-rate (background) half is smoothed more than the high-rate half"
    # the per-pixel TV weight is the mask's complement: full weight where the map is lowest
    w = defense.tv_weight(mask)
    assert torch.allclose(w, 0.1 * (0.1 + 0.9 * (1 - mask)))
    assert w[..., :, 24:].min() > 0.08 and w[..., :, :8].max() < 0.03


def test_defense_is_deterministic_and_adds_no_weights():
    model = _model(FP_TV)
    x = _target(model, 8).x0
    with torch.no_grad():
        a, b = model.defense(x, model), model.defense(x, model)
    assert torch.equal(a, b) and ((a >= 0) & (a <= 1)).all()
    with model.without_defense():
        assert model.defense is None
        keys = set(model.state_dict())
    assert isinstance(model.defense, LikelihoodTVDefense) and set(model.state_dict()) == keys


def test_identity_gradient_mode_keeps_the_forward_value_exactly():
    model = _model(HP_TV)
    x = _target(model, 4).x0
    with torch.no_grad():
        ref = model.defense(x, model)
    with model.defense.gradient_mode("identity"):
        out = model.defense(x.clone().requires_grad_(True), model)
    assert torch.equal(out.detach(), ref)


@pytest.mark.parametrize("path", DEFENDED, ids=lambda p: p.stem)
def test_defended_coding_is_lossless_and_acts(path):
    # cheaper on average is checked on the whole split (slow test below): on a GDN hyperprior the
    # saving is ~2% and a 16-image subset can go either way
    model = _model(path)
    images = load_dataset("digits").images[:16]
    defended = measure(model, images)
    with model.without_defense():
        plain = measure(model, images)
    assert defended["decode_ok"].all() and (defended["bits_coded"] != plain["bits_coded"]).any()


@pytest.mark.slow
@pytest.mark.parametrize("path", DEFENDED, ids=lambda p: p.stem)
def test_defended_clean_accuracy_and_bits(path, record_property):
    """Measured on the whole test split, not hard-coded: the defense lowers clean coded bits at a
    small accuracy cost (docs/defense.md has the numbers)."""
    model = _model(path)
    data = load_dataset("digits")
    images, labels = data.images, data.labels
    defended = measure(model, images)
    with model.without_defense():
        plain = measure(model, images)
    assert defended["decode_ok"].all()
    acc = {k: float((m["pred"] == labels).mean()) for k, m in (("defended", defended), ("plain", plain))}
    bits = {k: float(m["bits_coded"].mean()) for k, m in (("defended", defended), ("plain", plain))}
    record_property("clean", {"accuracy": acc, "bits_coded_mean": bits})
    print(f"{path.stem}: accuracy {acc['plain']:.3f} -> {acc['defended']:.3f}, "
          f"coded bits {bits['plain']:.1f} -> {bits['defended']:.1f}")
    assert acc["defended"] >= acc["plain"] - 0.05
    assert bits["defended"] < bits["plain"]


# --- BPDA --------------------------------------------------------------------------------------

def test_bpda_gradients_are_finite_nonzero_and_what_they_claim():
    model = _model(HP_TV, iterations=30)
    t = _target(model, 2)
    grads = {}
    for mode in ("identity", "unrolled"):
        x = t.x0.clone().requires_grad_(True)
        (grads[mode],) = torch.autograd.grad(adaptive.defended_target(t, mode).rate("ste")(x).sum(), x)
        assert torch.isfinite(grads[mode]).all() and grads[mode].abs().sum() > 0
    # identity: exactly the undefended model's gradient at the defended image
    with torch.no_grad():
        d = model.defense(t.x0, model)
    d.requires_grad_(True)
    with model.without_defense():
        (at_d,) = torch.autograd.grad(rate(model, d, "ste", t.gens).sum(), d)
    assert torch.allclose(grads["identity"], at_d)
    # unrolled: differentiates the denoiser, so it differs (TV flattens the gradient on the background)
    assert not torch.allclose(grads["unrolled"], grads["identity"])


def test_bpda_runs_on_an_undefended_model():
    model = _model(FP_TV)
    with model.without_defense():
        adv = adaptive.bpda("unrolled")(_target(model, 2), 2)
    assert ((adv - _target(model, 2).x0).abs() <= EPS + 1e-6).all()


# --- low-DCT -----------------------------------------------------------------------------------

def _outside_energy(d: torch.Tensor, fraction: float) -> torch.Tensor:
    """Energy of the DCT coefficients outside the low-frequency block, on the (H, W) axes."""
    mask = adaptive.low_frequency_mask(d.shape[-2], d.shape[-1], fraction).to(d)
    return (adaptive.dct2(d) * (1 - mask)).square().sum()


def test_dct_mask_sits_on_the_frequency_axes():
    mask = adaptive.low_frequency_mask(32, 24, 0.25)
    assert mask.shape == (32, 24) and mask.sum() == 8 * 6 and mask[:8, :6].all()
    d = torch.randn(2, 3, 32, 24, dtype=torch.float64)
    assert torch.allclose(adaptive.idct2(adaptive.dct2(d)), d)  # orthonormal
    low = adaptive.low_pass(d, 0.25)
    assert _outside_energy(low, 0.25) < 1e-20 * low.square().sum()
    assert torch.allclose(low, adaptive.idct2(adaptive.dct2(d) * mask.double()))
    # a mask indexed on the wrong dimensions (N, C instead of H, W, as in the published code) keeps
    # almost everything: the energy check catches it
    wrong = torch.zeros_like(d)
    wrong[:8, :6] = 1
    leaky = adaptive.idct2(adaptive.dct2(d) * wrong)
    assert _outside_energy(leaky, 0.25) > 0.5 * leaky.square().sum()


def test_dct_projection_is_in_the_box_and_the_subspace():
    model = _model(FP_TV)
    x0 = _target(model, 8).x0
    c = adaptive.dct_constraint(x0, EPS, 0.25)
    d = c.project(adaptive.low_pass(torch.randn_like(x0), 0.25) * 3 * EPS)
    assert (d.abs() <= EPS + 1e-7).all() and ((x0 + d) >= -1e-7).all() and ((x0 + d) <= 1 + 1e-7).all()
    assert _outside_energy(d, 0.25) < 1e-3 * d.square().sum()
    assert (c.direction(torch.randn_like(x0)).flatten(1).abs().max(1).values - 1).abs().max() < 1e-6


def test_dct_attack_perturbation_is_low_frequency_up_to_rounding():
    model = _model(HP_TV, iterations=20)
    t = _target(model, 2)
    adv = adaptive.dct(0.25)(t, 3)
    delta = (adv - t.x0).double()
    assert delta.abs().max() <= EPS + 1e-6 and delta.abs().max() > 0
    # 8-bit rounding moves each pixel by at most half a grey level (a level where truncated); its
    # energy is spread over all frequencies: what lies outside the block is no more than that
    assert _outside_energy(delta, 0.25) <= delta.numel() * (0.5 / 255) ** 2
    sign_noise = torch.sign(torch.randn_like(delta)) * EPS  # a full-band perturbation fails the check
    assert _outside_energy(sign_noise, 0.25) > 100 * delta.numel() * (0.5 / 255) ** 2


# --- likelihood-weighted -----------------------------------------------------------------------

def test_likelihood_weighted_budget_comes_from_the_map():
    model = _model(HP_TV, iterations=20)
    t = _target(model, 2)
    budget = adaptive.likelihood_budget(t)
    with torch.no_grad():
        assert torch.equal(budget, EPS * likelihood_mask(model, t.x0))
    adv = adaptive.likelihood_weighted(t, 3)
    delta = adv - t.x0
    assert (delta.abs() <= budget + 1e-7).all()
    assert delta.abs().max() > 0
    # nothing moves where the map is at its minimum; the perturbation follows the map
    assert (delta.abs()[(budget < 0.5 / 255).expand_as(delta)] == 0).all()
    weights = budget.expand_as(delta).flatten()
    assert np.corrcoef(delta.abs().flatten().numpy(), weights.numpy())[0, 1] > 0.3


def test_adaptive_attacks_at_eps_zero_return_the_clean_images():
    model = _model(HP_TV, iterations=10)
    ctx = Context(load_dataset("digits"), np.arange(2), model, progress=False)
    for attack in adaptive.ADAPTIVE_ATTACKS:
        for variant in attack.variants:
            cell = Cell(attack.name, norm="linf", eps=0.0, variant=variant, steps=1)
            assert np.array_equal(attack.generate(cell, ctx).images, ctx.images), cell.label()


# --- spec, protocol, runner --------------------------------------------------------------------

def _write(tmp_path: Path, defense: dict) -> Path:
    spec = yaml.safe_load(FP_TV.read_text())
    spec["defense"] = defense
    spec["weights"]["file"] = str(weights_path(load_submission(FP_TV), FP_TV))
    path = tmp_path / FP_TV.name
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.mark.parametrize("defense, fragments", [
    ({"name": "likelihood_tv", "wieght": 0.1}, ("defense.wieght", "unknown key", "did you mean 'weight'")),
    ({"name": "median"}, ("defense.name", "likelihood_tv")),
    ({"name": "likelihood_tv", "step": 0.5}, ("defense.step", "0.25")),
])
def test_bad_defense_spec_is_one_line_naming_the_field(tmp_path, run_cli, defense, fragments):
    path = _write(tmp_path, defense)
    with pytest.raises(ErbenchError) as err:
        load_submission(path)
    line = err.value.line()
    assert "\n" not in line and str(path) in line
    for fragment in fragments:
        assert fragment in line, line
    code, _, stderr = run_cli("check", path)
    assert code == 2 and "defense." in stderr and "Traceback" not in stderr


def test_defended_yamls_reuse_their_reference_weights():
    for path in DEFENDED:
        sub = load_submission(path)
        base = load_submission(path.parent.parent / f"{path.stem.removesuffix('_tv')}.yaml")
        assert weights_path(sub, path) == weights_path(base, path.parent.parent / f"{base.id}.yaml")
        assert (sub.weights.sha256, sub.model, sub.beta, sub.entropy_model) == (
            base.weights.sha256, base.model, base.beta, base.entropy_model), \
            f"{path.name} is stale: python benchmarks/defense_study.py yamls {base.id}"
        assert sub.defense is not None and sub.defense.label().startswith("likelihood_tv(")


def test_adaptive_cells_only_for_defended_submissions():
    for proto in PROTOCOLS:
        p = PROTOCOLS.get(proto)
        assert p.defended_cells and all(getattr(CONDITIONS.get(c.condition), "adaptive", False) for c in p.defended_cells)
        assert not any(getattr(CONDITIONS.get(c.condition), "adaptive", False) for c in p.cells)
        assert p.select((), defended=True) == p.cells + p.defended_cells and p.select(()) == p.cells
        worst = p.worst_case(defended=True)[("linf", 8 / 255)]
        assert set(p.defended_cells) <= set(worst)


class _Probe:
    """A condition that records whether it saw the defense."""

    kind = "clean"
    summary = "probe"

    def __init__(self, adaptive: bool):
        self.adaptive, self.saw = adaptive, None

    def generate(self, cell, ctx):
        self.saw = ctx.model.defense
        return Generated(ctx.images)


@pytest.mark.parametrize("adaptive_probe", [False, True])
def test_runner_shows_the_defense_to_adaptive_conditions_only(monkeypatch, adaptive_probe):
    model = _model(FP_TV)
    probe = _Probe(adaptive_probe)
    monkeypatch.setitem(CONDITIONS._entries, "test.probe", probe)
    ctx = Context(load_dataset("digits"), np.arange(4), model, progress=False)
    frame = run_cell(Cell("test.probe"), ctx)
    assert probe.saw is (model.defense if adaptive_probe else None)
    assert model.defense is not None, "the defense is restored and used for coding"
    with model.without_defense():
        plain = measure(model, ctx.images)
    assert (frame["bits_coded"].to_numpy() != plain["bits_coded"]).any(), "coded bits are the defended ones"


def test_evaluate_labels_rows_with_the_defense(tmp_path):
    result = evaluate(FP_TV, None, protocol="erbench-v1-quick", conditions=("corruption.brightness",), limit=2,
                      progress=False)
    s = result.summary
    assert list(s["condition"]) == ["clean"] + ["corruption.brightness"] * 5
    assert (s["defense"] == load_submission(FP_TV).defense.label()).all()
    assert (result.per_image["defense"] != "none").all()
    with pytest.raises(ErbenchError, match="matches no condition"):
        evaluate(ROOT / "submissions" / "reference" / "digits_small_cnn_fp_b1e-3.yaml", None,
                 protocol="erbench-v1-quick", conditions=("attack.likelihood_weighted_rate",), limit=4, progress=False)


def test_defense_spec_defaults_and_label():
    spec = DefenseSpec(name="likelihood_tv")
    assert (spec.iterations, spec.step) == (100, 0.25) and math.isclose(spec.weight, 0.1)
    assert spec.label() == "likelihood_tv(weight=0.1,iterations=100,step=0.25,object_weight=0.1)"
    d = spec.build()
    assert (d.iterations, d.weight, d.step, d.object_weight, d.gradient) == (100, 0.1, 0.25, 0.1, "unrolled")

"""The attack battery: budgets on the 8-bit grid, determinism, gradients, strength, the worst case."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import REFERENCE, ROOT

from erbench.codec import measure, to_tensor
from erbench.conditions import CONDITIONS, Cell, Context
from erbench.conditions.attacks import ATTACKS
from erbench.conditions.attacks.grid import to_grid, verify
from erbench.conditions.attacks.surrogate import rate, rounded_rate_and_prediction, seeded_noise
from erbench.data.datasets import load_dataset
from erbench.errors import ErbenchError
from erbench.models.loader import load_model
from erbench.protocol import ATTACK_STEPS, L2_EPS, L2_EPS_V2, LINF_EPS, LINF_EPS_V2, PROTOCOLS, WORST_RATE, Protocol
from erbench.spec import load_submission

DATA = load_dataset("digits", "test")
FACTORIZED, HYPERPRIOR = REFERENCE["digits_small_cnn_fp_b1e-3"], REFERENCE["digits_small_cnn_hp_b1e-4"]
MODELS = {}


def model(spec):
    if spec not in MODELS:
        MODELS[spec] = load_model(load_submission(spec), spec)
    return MODELS[spec]


def context(spec, n=16, batch_size=64, start=0):
    return Context(DATA, np.arange(start, start + n), model(spec), batch_size=batch_size, progress=False)


def generate(cell, ctx):
    return CONDITIONS.get(cell.condition).generate(cell, ctx).images


# one cell of every attack and variant, at few steps
def every_attack(norm, eps, steps=2):
    out = []
    for attack in ATTACKS:
        for name, v in attack.variants.items():
            if v.norm not in (None, norm):
                continue
            n = {"iterations": steps, "single": 1, "none": None}[v.steps]
            out.append(Cell(attack.name, norm=norm, eps=eps, variant=name, steps=n))
    return out


@pytest.mark.parametrize("version, variants, linf_eps, l2_eps, blackbox", [
    ("erbench-v1", ("noise_y", "strong", "fgsm"), LINF_EPS, L2_EPS, ()),
    ("erbench-v2", ("paper", "noise_y", "strong", "fgsm"), LINF_EPS_V2, L2_EPS_V2, (8 / 255, 16 / 255)),
])
def test_the_protocol_has_every_attack_at_every_eps(version, variants, linf_eps, l2_eps, blackbox):
    key = lambda c: (c.condition, c.norm, round(c.eps * 255, 6), c.variant)  # noqa: E731
    linf = [("attack.rate_pgd", v) for v in variants] + [
        (a, None) for a in ("attack.stealth_rate", "attack.ce_pgd", "attack.noise")]
    l2 = [("attack.rate_pgd", "l2"), ("attack.noise", None)]
    expected = sorted([(a, "linf", round(e * 255, 6), v) for e in linf_eps for a, v in linf]
                      + [(a, "l2", round(e * 255, 6), v) for e in l2_eps for a, v in l2]
                      + [("attack.blackbox_rate", "linf", round(e * 255, 6), "square") for e in blackbox])
    full, quick = PROTOCOLS.get(version), PROTOCOLS.get(f"{version}-quick")
    for proto in (full, quick):
        cells = [c for c in proto.cells if c.condition.startswith("attack.")]
        assert sorted(map(key, cells)) == expected
        for c in cells:
            CONDITIONS.get(c.condition).variant(c)  # the parameters fit the attack
    assert quick.quick and not full.quick and quick.max_images == 64
    assert sum(c.steps or 0 for c in quick.cells) < sum(c.steps or 0 for c in full.cells)
    assert all(c.steps == 20 for c in full.cells if c.variant in ("paper", "noise_y"))
    assert all(c.steps == 1 for c in full.cells if c.variant == "fgsm")
    assert all(c.steps == 1000 for c in full.cells if c.condition == "attack.blackbox_rate")


def test_v2_is_the_default_and_v1_is_unchanged(run_cli, tmp_path):
    from erbench.protocol import DEFAULT_PROTOCOL
    from erbench.results import read_results

    assert DEFAULT_PROTOCOL == "erbench-v2"
    code, _, err = run_cli("evaluate", FACTORIZED, "--limit", "2", "-c", "corruption.fog", "--out", tmp_path,
                           "--no-progress")
    assert code == 0, err
    assert set(read_results(tmp_path / FACTORIZED.stem)[0]["protocol"]) == {"erbench-v2"}  # the CLI's default too
    v1 = PROTOCOLS.get("erbench-v1")
    # erbench-v1's 128 cells; its rate PGD variant that v1 called 'paper' is the one now named noise_y
    assert len(v1.cells) == 128 and not any(c.variant == "paper" for c in v1.cells)
    assert sum(c.variant == "noise_y" for c in v1.cells) == 4


def test_an_unregistered_attack_in_a_protocol_fails_loudly():
    with pytest.raises(ValueError, match="attack.rate_pgd2.*not registered"):
        Protocol("bad", "", (Cell("clean"), Cell("attack.rate_pgd2", norm="linf", eps=8 / 255, variant="paper", steps=20)))


@pytest.mark.parametrize("cell, field", [
    (Cell("attack.rate_pgd", norm="linf", eps=0.1, variant="papr", steps=20), "variant"),
    (Cell("attack.rate_pgd", norm="l2", eps=0.1, variant="paper", steps=20), "norm"),
    (Cell("attack.rate_pgd", norm="l1", eps=0.1, variant="l2", steps=20), "norm"),
    (Cell("attack.rate_pgd", norm="linf", eps=0.1, variant="fgsm", steps=5), "steps"),
    (Cell("attack.rate_pgd", norm="linf", eps=0.1, variant="strong"), "steps"),
    (Cell("attack.noise", norm="linf", eps=0.1, steps=3), "steps"),
    (Cell("attack.ce_pgd", norm="linf", eps=-0.1, steps=3), "eps"),
])
def test_bad_cell_parameters_are_named(cell, field):
    with pytest.raises(ErbenchError) as err:
        CONDITIONS.get(cell.condition).variant(cell)
    assert err.value.field == field
    if field == "variant":
        assert "did you mean 'paper'" in str(err.value)


def _offsets(adv, clean):
    return (adv.astype(np.int64) - clean.astype(np.int64)).reshape(len(adv), -1)


@pytest.mark.parametrize("norm, eps, halves", [
    ("linf", 2.5 / 255, True),  # offsets of 2.5 grey levels: naive rounding gives 3 > 2.5
    ("linf", 4 / 255, False),
    ("l2", 0.5, False),  # random directions of length eps
    ("l2", 1.5 * 192**0.5 / 255, True),  # every offset 1.5 grey levels: naive rounding lengthens it
])
def test_grid_rounding_stays_in_the_ball(norm, eps, halves):
    gen = torch.Generator().manual_seed(0)
    clean = torch.randint(64, 192, (64, 3, 8, 8), generator=gen).float() / 255  # no clipping at 0 or 1
    sign = (torch.rand(clean.shape, generator=gen) * 2 - 1).sign()
    if halves:
        d = sign * (eps if norm == "linf" else 1.5 / 255)
    elif norm == "linf":
        d = sign * eps * torch.rand(clean.shape, generator=gen)
    else:
        d = torch.randn(clean.shape, generator=gen)
        d = d / d.flatten(1).norm(dim=1).reshape(-1, 1, 1, 1) * eps
    x = clean + d
    g = to_grid(x, clean, eps, norm).double().numpy()
    c = (clean * 255).round().double().numpy()
    assert np.array_equal(g, np.round(g)) and g.min() >= 0 and g.max() <= 255
    size = lambda off: np.abs(off).max(1) if norm == "linf" else np.sqrt((off**2).sum(1))  # noqa: E731
    naive = size((np.round(x.double().numpy() * 255) - c).reshape(64, -1) / 255)
    if halves:
        assert (naive > eps + 1e-9).all(), "the case must be one where naive rounding leaves the ball"
    off = (g - c).reshape(64, -1) / 255
    assert (size(off) <= eps + 1e-12).all()
    assert (np.abs(off - d.double().numpy().reshape(64, -1)) <= 1 / 255 + 1e-6).all()  # still the attack's perturbation


def test_verify_rejects_a_perturbation_outside_the_ball():
    clean = np.full((2, 4, 4, 3), 100, np.uint8)
    adv = clean.copy()
    adv[1, 0, 0, 0] = 103
    with pytest.raises(RuntimeError, match="exceeds"):
        verify(adv, clean, 2 / 255, "linf")
    np.testing.assert_allclose(verify(adv, clean, 3 / 255, "l2"), [0, 3 / 255])


@pytest.mark.parametrize("spec", [FACTORIZED, HYPERPRIOR], ids=["fp", "hp"])
def test_eps_zero_gives_exactly_the_clean_bits(spec):
    ctx = context(spec, 8)
    clean = measure(ctx.model, ctx.images)
    for cell in every_attack("linf", 0.0) + every_attack("l2", 0.0):
        adv = generate(cell, ctx)
        np.testing.assert_array_equal(adv, ctx.images, err_msg=cell.label())
        np.testing.assert_array_equal(measure(ctx.model, adv)["bits_coded"], clean["bits_coded"])


@pytest.mark.parametrize("norm, eps", [("linf", 8 / 255), ("l2", 1.0)])
def test_every_attack_respects_its_budget(norm, eps):
    ctx = context(HYPERPRIOR, 16)
    for cell in every_attack(norm, eps):
        adv = generate(cell, ctx)
        assert adv.dtype == np.uint8 and adv.shape == ctx.images.shape
        off = _offsets(adv, ctx.images) / 255
        size = np.abs(off).max(1) if norm == "linf" else np.sqrt((off**2).sum(1))
        assert (size <= eps + 1e-9).all(), cell.label()
        assert (size > 0.5 * eps).mean() > 0.5, f"{cell.label()} barely perturbs"


@pytest.mark.parametrize("variant, steps", [("noise_y", 2), ("fgsm", 1)])
def test_noise_y_and_fgsm_end_on_the_corners_of_the_ball(variant, steps):
    # one signed step of 0.1 (noise_y) or 2 eps (fgsm) per iteration, clipped into the ball: every
    # offset is -eps, 0 or +eps
    ctx = context(HYPERPRIOR, 8)
    adv = generate(Cell("attack.rate_pgd", norm="linf", eps=4 / 255, variant=variant, steps=steps), ctx)
    off = _offsets(adv, ctx.images)
    inside = ((ctx.images >= 4) & (ctx.images <= 251)).reshape(len(off), -1)
    assert set(np.unique(off[inside])) <= {-4, 0, 4}
    assert (off[inside] != 0).mean() > 0.5


def test_noise_is_uniform_sign_noise_of_size_eps():
    ctx = context(FACTORIZED, 8)
    adv = generate(Cell("attack.noise", norm="linf", eps=4 / 255), ctx)
    off = _offsets(adv, ctx.images)
    inside = ((ctx.images >= 4) & (ctx.images <= 251)).reshape(len(off), -1)  # not clipped by [0, 255]
    assert set(np.unique(off[inside])) == {-4, 4}
    assert abs((off[inside] > 0).mean() - 0.5) < 0.02


@pytest.mark.parametrize("latents", [("y",), ("z",), None])
@pytest.mark.parametrize("quant", ["noise", "ste"])
def test_rate_gradient_reaches_the_input_of_the_hyperprior(quant, latents):
    m = model(HYPERPRIOR)
    x = to_tensor(DATA.images[:8], "cpu").requires_grad_(True)
    gens = [torch.Generator().manual_seed(i) for i in range(8)]
    (grad,) = torch.autograd.grad(rate(m, x, quant, gens, 2, latents).sum(), x)
    assert torch.isfinite(grad).all()
    assert (grad.flatten(1).abs().sum(1) > 0).all()


@pytest.mark.parametrize("spec", [FACTORIZED, HYPERPRIOR], ids=["fp", "hp"])
def test_noise_surrogate_shares_the_head_pass_yet_equals_full_model_copies(spec):
    """rate() runs the head once and draws the copies on the latent; recompute it the long way:
    every copy through the whole model, the same per-image noise streams."""
    m, copies = model(spec), 4
    x = to_tensor(DATA.images[20:26], "cpu").requires_grad_(True)
    gens = lambda: [torch.Generator().manual_seed(100 + i) for i in range(6)]  # noqa: E731
    fast = rate(m, x, "noise", gens(), copies)
    (g_fast,) = torch.autograd.grad(fast.sum(), x)
    with seeded_noise(gens()):
        out = m(x.repeat(copies, 1, 1, 1), rate_quant="noise", tail_quant="noise")
    slow = out.bits().reshape(copies, -1).mean(0)
    (g_slow,) = torch.autograd.grad(slow.sum(), x)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(g_fast, g_slow, rtol=1e-4, atol=1e-4 * g_slow.abs().max().item())


@pytest.mark.parametrize("spec", [FACTORIZED, HYPERPRIOR], ids=["fp", "hp"])
def test_rounded_rate_is_the_coded_bits_and_the_decoded_prediction(spec):
    m, images = model(spec), DATA.images[30:50]
    score, pred = rounded_rate_and_prediction(m, to_tensor(images, "cpu"))
    ref = measure(m, images)  # the runner's codec: coder bytes and the tail on the decoded latent
    np.testing.assert_array_equal(np.floor(score.numpy()), ref["bits_coded"])
    np.testing.assert_array_equal(pred.numpy(), ref["pred"])


@pytest.mark.parametrize("cell", [
    Cell("attack.rate_pgd", norm="linf", eps=8 / 255, variant="paper", steps=2),
    Cell("attack.rate_pgd", norm="linf", eps=8 / 255, variant="strong", steps=4),
    Cell("attack.rate_pgd", norm="l2", eps=1.0, variant="l2", steps=3),
    Cell("attack.ce_pgd", norm="linf", eps=8 / 255, steps=2),
    Cell("attack.noise", norm="l2", eps=1.0),
], ids=lambda c: c.label())
def test_per_image_results_do_not_depend_on_batch_size_or_subset(cell):
    whole = generate(cell, context(HYPERPRIOR, 12, batch_size=12))
    np.testing.assert_array_equal(generate(cell, context(HYPERPRIOR, 12, batch_size=5)), whole)
    np.testing.assert_array_equal(generate(cell, context(HYPERPRIOR, 4, start=8)), whole[8:])


def test_the_seed_changes_the_randomness():
    ctx = context(FACTORIZED, 4)
    a, b = (generate(Cell("attack.noise", norm="linf", eps=4 / 255, seed=s), ctx) for s in (0, 1))
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, generate(Cell("attack.noise", norm="linf", eps=4 / 255), ctx))


def _overhead(ctx, images, clean_bits):
    return measure(ctx.model, images)["bits_coded"].mean() / clean_bits.mean() - 1


@pytest.mark.parametrize("spec", [FACTORIZED, HYPERPRIOR], ids=["fp", "hp"])
def test_rate_pgd_raises_coded_bits_well_above_noise(spec):
    ctx = context(spec, 16)
    clean = measure(ctx.model, ctx.images)["bits_coded"]
    eps = 16 / 255
    noise = _overhead(ctx, generate(Cell("attack.noise", norm="linf", eps=eps), ctx), clean)
    paper = _overhead(ctx, generate(Cell("attack.rate_pgd", norm="linf", eps=eps, variant="paper", steps=5), ctx), clean)
    assert paper > noise + 0.08, (paper, noise)


def test_stealth_keeps_the_decoded_prediction():
    ctx = context(HYPERPRIOR, 16, start=100)
    eps = 16 / 255
    clean = measure(ctx.model, ctx.images)
    stealth = measure(ctx.model, generate(Cell("attack.stealth_rate", norm="linf", eps=eps, steps=10), ctx))
    strong = measure(ctx.model, generate(Cell("attack.rate_pgd", norm="linf", eps=eps, variant="strong", steps=10), ctx))
    assert (stealth["pred"] == clean["pred"]).all()
    assert stealth["bits_coded"].mean() > 1.2 * clean["bits_coded"].mean()
    assert stealth["bits_coded"].mean() <= strong["bits_coded"].mean() * 1.05


# entries with committed erbench-v2 results are checked on all their images by
# tests/test_committed_results.py; these are recomputed (16 images, ~50 s per entry)
WITHOUT_V2 = sorted(k for k in REFERENCE if not (ROOT / "leaderboard" / "results-v2" / k / "summary.parquet").is_file())


@pytest.mark.slow
@pytest.mark.parametrize("spec", [REFERENCE[k] for k in WITHOUT_V2], ids=WITHOUT_V2)
def test_on_every_reference_model_strong_beats_every_rate_variant(spec):
    """strong >= paper, noise_y and fgsm at every erbench-v2 L-inf budget (16 images), and the
    published recipe beats sign noise of the same size at 16/255."""
    ctx = context(spec, 16)
    clean = measure(ctx.model, ctx.images)["bits_coded"]
    for eps in LINF_EPS_V2:
        cell = lambda v: Cell("attack.rate_pgd", norm="linf", eps=eps, variant=v,  # noqa: E731
                              steps=1 if v == "fgsm" else ATTACK_STEPS[v])
        overhead = {v: _overhead(ctx, generate(cell(v), ctx), clean) for v in ("strong", "paper", "noise_y", "fgsm")}
        assert overhead["strong"] >= max(overhead.values()), (eps * 255, overhead)
        if eps == 16 / 255:
            noise = _overhead(ctx, generate(Cell("attack.noise", norm="linf", eps=eps), ctx), clean)
            assert overhead["paper"] > noise + 0.02, (overhead["paper"], noise)


def _tiny_protocol(monkeypatch, cells):
    proto = Protocol("tiny", "test", (Cell("clean"), *cells), quick=True, max_images=6)
    monkeypatch.setitem(PROTOCOLS._entries, "tiny", proto)
    return proto


def test_worst_case_rows_take_the_per_image_maximum(monkeypatch, tmp_path):
    from erbench.runner import evaluate

    eps = 8 / 255
    rate_cells = [Cell("attack.rate_pgd", norm="linf", eps=eps, variant="fgsm", steps=1),
                  Cell("attack.rate_pgd", norm="linf", eps=eps, variant="paper", steps=1),
                  Cell("attack.stealth_rate", norm="linf", eps=eps, steps=1)]
    _tiny_protocol(monkeypatch, [*rate_cells, Cell("attack.noise", norm="linf", eps=eps)])
    result = evaluate(HYPERPRIOR, None, protocol="tiny", progress=False)
    per_image, summary = result.per_image, result.summary
    attacks = per_image[per_image["condition"].isin(["attack.rate_pgd", "attack.stealth_rate"])]
    expected = attacks.groupby("image_index")["bits_coded"].max()
    worst = per_image[per_image["condition"] == WORST_RATE].set_index("image_index")
    assert (worst["kind"] == "aggregate").all() and len(worst) == 6
    pd.testing.assert_series_equal(worst["bits_coded"].sort_index(), expected.sort_index(), check_names=False)
    row = summary[summary["condition"] == WORST_RATE]
    assert len(row) == 1 and row["kind"].iloc[0] == "aggregate" and row["eps"].iloc[0] == eps
    assert row["bits_coded_mean"].iloc[0] == pytest.approx(expected.mean())
    noise = per_image[per_image["condition"] == "attack.noise"]["bits_coded"]
    assert expected.mean() >= noise.mean()


def test_no_worst_case_row_without_all_its_cells(monkeypatch):
    from erbench.runner import evaluate

    eps = 8 / 255
    _tiny_protocol(monkeypatch, [Cell("attack.rate_pgd", norm="linf", eps=eps, variant="fgsm", steps=1),
                                 Cell("attack.stealth_rate", norm="linf", eps=eps, steps=1)])
    result = evaluate(HYPERPRIOR, None, protocol="tiny", conditions=("attack.rate_pgd",), progress=False)
    assert WORST_RATE not in set(result.summary["condition"])

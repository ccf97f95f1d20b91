"""attack.blackbox_rate: the query budget, the 8-bit ball, batch independence, strength, bad cells."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FACTORIZED, HYPERPRIOR

from erbench.codec import measure
from erbench.conditions import CONDITIONS, Cell, Context
from erbench.conditions.attacks.blackbox import BLACKBOX_RATE
from erbench.data.datasets import load_dataset
from erbench.errors import ErbenchError
from erbench.models.loader import load_model
from erbench.spec import load_submission

DATA = load_dataset("digits", "test")
MODELS = {}


def model(spec):
    if spec not in MODELS:
        MODELS[spec] = load_model(load_submission(spec), spec)
    return MODELS[spec]


def run(spec, eps, steps, n=8, batch_size=64, start=0):
    ctx = Context(DATA, np.arange(start, start + n), model(spec), batch_size=batch_size, progress=False)
    cell = Cell("attack.blackbox_rate", norm="linf", eps=eps, variant="square", steps=steps)
    return ctx, CONDITIONS.get(cell.condition).generate(cell, ctx)


def test_registered_as_a_rate_attack():
    assert CONDITIONS.get("attack.blackbox_rate") is BLACKBOX_RATE
    assert BLACKBOX_RATE.rate_attack and CONDITIONS.meta("attack.blackbox_rate").rate_attack


@pytest.mark.parametrize("eps", [8 / 255, 2.5 / 255])
def test_budget_ball_grid_and_queries(eps):
    ctx, gen = run(FACTORIZED, eps, steps=25)
    assert gen.images.dtype == np.uint8 and gen.images.shape == ctx.images.shape
    offsets = gen.images.astype(np.int64) - ctx.images.astype(np.int64)
    assert np.abs(offsets).max() == int(eps * 255)  # integer grey levels, floor(eps * 255) at most
    assert np.abs(offsets).max() / 255 <= eps
    assert gen.extra["queries"].dtype == np.int64 and np.array_equal(gen.extra["queries"], np.full(8, 25))


def test_below_one_grey_level_returns_the_clean_images_without_queries():
    ctx, gen = run(FACTORIZED, 0.5 / 255, steps=10, n=3)
    assert np.array_equal(gen.images, ctx.images) and np.array_equal(gen.extra["queries"], np.zeros(3))


def test_independent_of_batch_size_and_batch_neighbours():
    _, whole = run(HYPERPRIOR, 8 / 255, steps=30, n=8, batch_size=8)
    _, single = run(HYPERPRIOR, 8 / 255, steps=30, n=8, batch_size=1)
    _, shifted = run(HYPERPRIOR, 8 / 255, steps=30, n=5, batch_size=5, start=3)  # other neighbours
    assert np.array_equal(whole.images, single.images)
    assert np.array_equal(whole.images[3:], shifted.images)
    assert np.array_equal(whole.extra["queries"], single.extra["queries"])


def test_raises_the_real_coded_bits():
    """Checked independently of the attack's own scoring: the range coder's bits of the returned
    images (codec.measure, with decode check) against those of the clean images."""
    ctx, gen = run(HYPERPRIOR, 16 / 255, steps=200, n=16)
    clean, adv = measure(ctx.model, ctx.images), measure(ctx.model, gen.images)
    assert adv["decode_ok"].all()
    assert adv["bits_coded"].mean() > 1.15 * clean["bits_coded"].mean()
    assert np.mean(adv["bits_coded"] >= clean["bits_coded"]) >= 0.9


@pytest.mark.parametrize("cell, field", [
    (Cell("attack.blackbox_rate", norm="linf", eps=8 / 255, variant="sqare", steps=100), "variant"),
    (Cell("attack.blackbox_rate", norm="linf", eps=8 / 255, steps=100), "variant"),
    (Cell("attack.blackbox_rate", norm="l2", eps=1.0, variant="square", steps=100), "norm"),
    (Cell("attack.blackbox_rate", norm="linf", eps=-0.1, variant="square", steps=100), "eps"),
    (Cell("attack.blackbox_rate", norm="linf", variant="square", steps=100), "eps"),
    (Cell("attack.blackbox_rate", norm="linf", eps=8 / 255, variant="square", steps=0), "steps"),
    (Cell("attack.blackbox_rate", norm="linf", eps=8 / 255, variant="square"), "steps"),
])
def test_bad_cell_parameters_are_one_named_error(cell, field):
    ctx = Context(DATA, np.arange(2), model(FACTORIZED), progress=False)
    with pytest.raises(ErbenchError) as err:
        BLACKBOX_RATE.generate(cell, ctx)
    assert err.value.field == field and "\n" not in str(err.value)
    if cell.variant == "sqare":
        assert "did you mean 'square'" in str(err.value)

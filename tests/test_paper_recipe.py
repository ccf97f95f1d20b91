"""``attack.rate_pgd variant=paper`` is the published attack (EntropyR pgd.py, model_wrapper.AuxModule).

The reference below is written from the recipe's description, not from erbench's code: one image at
a time, its 16 copies as a batch, the loss as the published ``bpp_loss`` (mean -log2 likelihood of
y over every element of every copy), noise on z and hard-rounded y for a hyperprior (noise on y for a
factorized prior), a signed step of 0.1 on every copy, the mean of the stepped copies, the published
clip (max with the lower bound, min with the upper), last iterate. Its noise comes from the image's
generator in the order erbench documents (surrogate.seeded_noise: one draw of shape (16, *latent)
per step). Then onto the 8-bit grid: offsets rounded to grey levels, inside the ball.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import REFERENCE

from erbench.conditions import CONDITIONS, Cell, Context
from erbench.conditions.attacks import image_seed
from erbench.data.datasets import load_dataset
from erbench.models.entropy import _bottleneck_likelihood
from erbench.models.loader import load_model
from erbench.spec import load_submission

DATA = load_dataset("digits", "test")
COPIES, LR = 16, 0.1


def _y_likelihood(model, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    ent = model.entropy
    y = model.head(model.preprocess(x))
    if ent.family == "factorized":
        u = torch.rand((COPIES, *y.shape[1:]), generator=gen)
        return _bottleneck_likelihood(ent.bottleneck, y + (u - 0.5))
    z = ent.hyper_analysis(y)
    u = torch.rand((COPIES, *z.shape[1:]), generator=gen)
    scales, means = ent.hyper_synthesis((z + (u - 0.5)).contiguous()).chunk(2, dim=1)
    y_hat = torch.round(y - means) + means  # CompressAI 'dequantize': no gradient through the rounding
    return ent.gaussian.likelihood_lower_bound(ent.gaussian._likelihood(y_hat, scales, means))


def published_attack(model, image: np.ndarray, eps: float, steps: int, gen: torch.Generator) -> np.ndarray:
    x0 = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    lb, ub = torch.clamp(x0 - eps, min=0.0), torch.clamp(x0 + eps, max=1.0)
    x = x0.clone()
    for _ in range(steps):
        xs = x.repeat(COPIES, 1, 1, 1).requires_grad_(True)
        loss = -torch.log2(_y_likelihood(model, xs, gen)).mean()
        loss.backward()
        xs = (xs.detach() + LR * xs.grad.sign()).reshape(COPIES, *x0.shape[1:]).mean(dim=0, keepdim=True)
        x = torch.min(torch.max(xs, lb), ub)
    levels, clean = np.round(x[0].permute(1, 2, 0).numpy().astype(np.float64) * 255), image.astype(np.float64)
    budget = np.floor(eps * 255 + 1e-9)
    return (clean + np.clip(levels - clean, -budget, budget)).astype(np.uint8)


@pytest.mark.parametrize("name", ["digits_small_cnn_hp_b1e-4", "digits_small_cnn_fp_b1e-3"])
def test_paper_is_the_published_attack_to_the_image(name):
    model = load_model(load_submission(REFERENCE[name]), REFERENCE[name])
    cell = Cell("attack.rate_pgd", norm="linf", eps=8 / 255, variant="paper", steps=3)
    ctx = Context(DATA, np.arange(10, 16), model, batch_size=4, progress=False)
    ours = CONDITIONS.get(cell.condition).generate(cell, ctx).images
    for k, i in enumerate(ctx.indices):
        gen = torch.Generator().manual_seed(image_seed(cell, int(i)))
        ref = published_attack(model, ctx.images[k], cell.eps, cell.steps, gen)
        np.testing.assert_array_equal(ours[k], ref, err_msg=f"{name} image {i}")


def test_paper_iterates_are_not_all_on_the_corners():
    """Averaging 16 per-copy signed steps leaves offsets strictly inside the ball where the copies
    disagree: unlike noise_y and fgsm (tests/test_attacks.py), paper is not a corner attack."""
    model = load_model(load_submission(REFERENCE["digits_small_cnn_fp_b1e-3"]), REFERENCE["digits_small_cnn_fp_b1e-3"])
    cell = Cell("attack.rate_pgd", norm="linf", eps=8 / 255, variant="paper", steps=5)
    ctx = Context(DATA, np.arange(8), model, progress=False)
    off = CONDITIONS.get(cell.condition).generate(cell, ctx).images.astype(int) - ctx.images.astype(int)
    inside = (ctx.images >= 8) & (ctx.images <= 247)
    strictly = (np.abs(off[inside]) > 0) & (np.abs(off[inside]) < 8)
    assert 0.005 < strictly.mean() < 0.5, strictly.mean()

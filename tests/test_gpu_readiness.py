"""--device cuda readiness, checked on the CPU: inside attack loops nothing moves to the host per
image. Every device-to-host transfer (item, tolist, cpu, numpy, bool, int, float) is counted while
an attack runs on 4 and on 12 images: the counts must not grow with the number of images.
(Per-image noise is drawn on the CPU from per-image generators, so results do not depend on the
device, and moved to the device once per step: a host-to-device copy, not a round trip.)"""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from conftest import HYPERPRIOR
from torch.overrides import TorchFunctionMode

from erbench.cells import Cell
from erbench.conditions.catalog import CONDITIONS
from erbench.engine import worker
from erbench.engine.worker import Settings

TO_HOST = {torch.Tensor.item, torch.Tensor.tolist, torch.Tensor.cpu, torch.Tensor.numpy, torch.Tensor.__bool__,
           torch.Tensor.__int__, torch.Tensor.__float__, torch.Tensor.__index__}
EPS = 8 / 255
CELLS = [Cell("attack.rate_pgd", norm="linf", eps=EPS, variant="strong", steps=6),
         Cell("attack.rate_pgd", norm="linf", eps=EPS, variant="paper", steps=3),
         Cell("attack.rate_pgd", norm="linf", eps=EPS, variant="fgsm", steps=1),
         Cell("attack.rate_pgd", norm="l2", eps=1.0, variant="l2", steps=6),
         Cell("attack.stealth_rate", norm="linf", eps=EPS, steps=6),
         Cell("attack.ce_pgd", norm="linf", eps=EPS, steps=3),
         Cell("attack.noise", norm="linf", eps=EPS)]


class CountTransfers(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.counts = Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in TO_HOST:
            self.counts[func.__name__] += 1
        return func(*args, **(kwargs or {}))


def _transfers(cell: Cell, n: int) -> Counter:
    ctx = worker.context(str(HYPERPRIOR), n, Settings())
    condition = CONDITIONS.get(cell.condition)
    condition.generate(cell, ctx)  # warm: coding tables are built once per device
    with CountTransfers() as mode:
        condition.generate(cell, ctx)
    return mode.counts


@pytest.mark.parametrize("cell", CELLS, ids=lambda c: c.label())
def test_attack_loops_move_nothing_to_the_host_per_image(cell):
    few, many = _transfers(cell, 4), _transfers(cell, 12)
    assert few == many, (few, many)
    assert sum(few.values()) <= 2 + 4 * (cell.steps or 1), few  # a few scalar syncs per iterate at most

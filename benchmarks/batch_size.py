"""Would batching several cells together pay? Per-image cost of one attack step vs. batch size.

Usage: python benchmarks/batch_size.py [--spec SUB.yaml] [--repeat 3]

Batching "all budgets of one attack in one batch" only pays if a step costs less per image in a
bigger batch. This times one step of the rate surrogate (head + entropy model forward with 2 noise
copies, backward to the input) and one scoring pass (rounded forward + exact coded size) per image
at batch sizes from 32 to 4 x 497 (four budgets of the whole digits test set), one torch thread,
batch sizes interleaved, medians over repetitions.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from erbench.codec import to_tensor
from erbench.conditions.attacks.surrogate import rate, rounded_rate
from erbench.engine import worker
from erbench.engine.worker import Settings

ROOT = Path(__file__).resolve().parents[1]
SIZES = (32, 64, 128, 256, 497, 4 * 497)


def per_image_ms(model, x: torch.Tensor, gens: list[torch.Generator]) -> tuple[float, float]:
    xr = x.clone().requires_grad_(True)
    start = time.process_time()
    (grad,) = torch.autograd.grad(rate(model, xr, "noise", gens, 2).sum(), xr)
    step = time.process_time() - start
    start = time.process_time()
    rounded_rate(model, x)
    score = time.process_time() - start
    return 1000 * step / len(x), 1000 * score / len(x)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", default=str(ROOT / "submissions/reference/digits_small_cnn_hp_b1e-4.yaml"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    ctx = worker.context(args.spec, 497, Settings())
    images = to_tensor(ctx.images, "cpu")
    images = torch.cat([images] * 4)
    runs: dict[int, list[tuple[float, float]]] = {n: [] for n in SIZES}
    for _ in range(args.repeat):
        for n in SIZES:
            gens = [torch.Generator().manual_seed(i) for i in range(n)]
            runs[n].append(per_image_ms(ctx.model, images[:n], gens))
    print(f"{Path(args.spec).stem}, one thread, CPU ms per image (median of {args.repeat}); "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'batch':>6s} {'step':>8s} {'score':>8s}")
    for n, values in runs.items():
        step = sorted(v[0] for v in values)[len(values) // 2]
        score = sorted(v[1] for v in values)[len(values) // 2]
        print(f"{n:6d} {step:8.3f} {score:8.3f}")


if __name__ == "__main__":
    main()

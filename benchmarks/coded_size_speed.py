"""Rounded-rate scoring speed: the range coder vs. erbench.models.coded_size, per reference model.

Usage: OMP_NUM_THREADS=1 python benchmarks/coded_size_speed.py [--batches 4] [--batch-size 64] [--repeats 3]
                                                                [--attack-steps 20]
On the same batches (clean digits test images and 8/255 random-sign perturbations, like attack
iterates), times ``rounded_rate_and_prediction`` (what attacks score every iterate with) and the
sizing alone (latent -> bits), once through the coder and once through the closed form; checks the
bits are identical and prints the share of samples the closed form left to the coder. Times are
CPU times (one thread), best of --repeats. With --attack-steps, also one ``strong`` L-inf 8/255
attack on the first batch end to end, both ways (same adversarial images), with the fallback share
over all the iterates it scored.
"""

from __future__ import annotations

import argparse
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from erbench.codec import to_tensor
from erbench.conditions import CONDITIONS, Cell, Context
from erbench.conditions.attacks import surrogate
from erbench.data.datasets import load_dataset
from erbench.models import coded_size
from erbench.models.loader import load_model
from erbench.spec import load_submission

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("digits_small_cnn_fp_b1e-3", "digits_small_cnn_hp_b1e-4")


def coder_bits(model, y: torch.Tensor, hyper=None) -> torch.Tensor:
    """The previous surrogate._coded_bits: run the coder, count the bytes (``hyper`` unused)."""
    coded = model.entropy.compress(y)
    return torch.tensor([sum(b) for b in zip(*(coded.bits_per_sample(k) for k in coded.strings))],
                        dtype=torch.float64, device=y.device)


@contextmanager
def coded_bits_by(fn):
    original = surrogate._coded_bits
    surrogate._coded_bits = fn
    try:
        yield
    finally:
        surrogate._coded_bits = original


def best_of(repeats: int, fn) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.process_time()  # CPU time: robust to other load on shared cores
        out = fn()
        times.append(time.process_time() - start)
    return min(times), out


def attack(model, data, n: int, steps: int) -> None:
    cell = Cell("attack.rate_pgd", norm="linf", eps=8 / 255, variant="strong", steps=steps)
    undecided, per_latent = [], coded_size.coded_bits_per_latent

    def counting(entropy, y, hyper=None):
        bits, mask = per_latent(entropy, y, hyper)
        undecided.append(mask)
        return bits, mask

    def run():
        start = time.process_time()
        images = CONDITIONS.get(cell.condition).generate(cell, Context(data, np.arange(n), model, batch_size=n,
                                                                        progress=False)).images
        return time.process_time() - start, images

    with coded_bits_by(coder_bits):
        t_old, old = run()
    coded_size.coded_bits_per_latent = counting
    try:
        t_new, new = run()
    finally:
        coded_size.coded_bits_per_latent = per_latent
    mask = torch.cat(undecided)
    print(f"  strong attack, {steps} steps, {n} images: coder {t_old:5.2f} s  closed form {t_new:5.2f} s "
          f"({t_old / t_new:4.2f}x) | identical images: {np.array_equal(old, new)} | "
          f"to the coder: {int(mask.sum())}/{len(mask)} scored iterates")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--attack-steps", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = load_dataset("digits", "test")
    n = args.batches * args.batch_size
    clean = to_tensor(data.images[:n], "cpu")
    sign = torch.randint(0, 2, clean.shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
    inputs = {"clean": clean, "8/255": (clean + sign * 8 / 255).clamp(0, 1)}
    print(f"{args.batches} batches of {args.batch_size}, best of {args.repeats}, CPU ms per batch, 1 thread")
    for name in MODELS:
        spec = ROOT / "submissions" / "reference" / f"{name}.yaml"
        model = load_model(load_submission(spec), spec).eval()
        for label, x in inputs.items():
            batches = list(x.split(args.batch_size))
            with torch.no_grad():
                ys = [model.encode(b) for b in batches]
            score = lambda: [surrogate.rounded_rate_and_prediction(model, b) for b in batches]  # noqa: E731
            with coded_bits_by(coder_bits):
                t_score_old, old = best_of(args.repeats, score)
            t_score_new, new = best_of(args.repeats, score)
            with torch.no_grad():
                t_size_old, bits_old = best_of(args.repeats, lambda: [coder_bits(model, y) for y in ys])
                t_size_new, bits_new = best_of(args.repeats, lambda: [coded_size.coded_bits(model.entropy, y) for y in ys])
            same = all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(old, new)) and all(
                torch.equal(a, b.double()) for a, b in zip(bits_old, bits_new))
            undecided = torch.cat([coded_size.coded_bits_per_latent(model.entropy, y)[1] for y in ys])
            per = 1000 / len(batches)
            print(f"{name} {label:6s} rounded_rate: coder {t_score_old * per:7.1f}  closed form {t_score_new * per:7.1f} "
                  f"({t_score_old / t_score_new:4.2f}x) | sizing only: coder {t_size_old * per:7.1f}  closed form "
                  f"{t_size_new * per:6.1f} ({t_size_old / t_size_new:5.1f}x) | identical: {same} | "
                  f"to the coder: {int(undecided.sum())}/{len(undecided)}")
        if args.attack_steps:
            attack(model, data, args.batch_size, args.attack_steps)


if __name__ == "__main__":
    main()

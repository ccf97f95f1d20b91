"""Black-box rate attack: coded-bit overhead and seconds of ``attack.blackbox_rate`` vs. white-box ``strong``.

Usage: python benchmarks/blackbox.py [--images 64] [--eps 8,16] [--queries 1000] [--strong-steps 100]
       [--models digits_small_cnn_hp_b1e-4 digits_small_cnn_fp_b1e-3] [--p-init 1.0] [--threads 1]

For each model and L-inf eps, on the first ``--images`` test images: the black-box Square Attack
with ties accepted (the registered rule) and with strict acceptance, and the white-box
``attack.rate_pgd`` variant ``strong``, each run through its registered condition. Overhead = mean
real coded bits (``erbench.codec.measure``, the range coder) / clean mean - 1, with a paired 95%
bootstrap CI; seconds of ``generate`` alone.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from erbench.codec import measure
from erbench.conditions import CONDITIONS, Cell, Context
from erbench.conditions.attacks import blackbox
from erbench.data.datasets import load_dataset
from erbench.metrics import cell_metrics
from erbench.models.loader import load_model
from erbench.spec import load_submission

REFERENCE = Path(__file__).resolve().parents[1] / "submissions" / "reference"


def run_model(spec: Path, n: int, eps_list: list[float], queries: int, strong_steps: int) -> None:
    model = load_model(load_submission(spec), spec)
    data = load_dataset("digits", "test")
    ctx = Context(data, np.arange(min(n, len(data))), model, progress=False)
    clean = measure(model, ctx.images)
    clean_bits, clean_correct = clean["bits_coded"], clean["pred"] == ctx.labels
    print(f"\n{spec.stem}: {len(ctx.indices)} images, clean {clean_bits.mean():.1f} coded bits/image")
    print(f"{'eps':>6} {'attack':30} {'overhead':>8} {'95% CI':>17} {'s':>6}")
    for eps in eps_list:
        runs = [("blackbox square, ties accepted", True, Cell("attack.blackbox_rate", norm="linf", eps=eps,
                                                               variant="square", steps=queries)),
                ("blackbox square, strict", False, Cell("attack.blackbox_rate", norm="linf", eps=eps,
                                                        variant="square", steps=queries)),
                (f"rate_pgd strong ({strong_steps} steps)", None, Cell("attack.rate_pgd", norm="linf", eps=eps,
                                                                         variant="strong", steps=strong_steps))]
        for label, ties, cell in runs:
            if ties is not None:
                blackbox.ACCEPT_TIES = ties
            start = time.perf_counter()
            images = CONDITIONS.get(cell.condition).generate(cell, ctx).images
            seconds = time.perf_counter() - start
            m = measure(model, images)
            r = cell_metrics(m["bits_coded"], m["pred"] == ctx.labels, clean_bits, clean_correct)
            print(f"{eps * 255:4.0f}/255 {label:30} {r['overhead']:+8.1%} "
                  f"[{r['overhead_ci_low']:+6.1%}, {r['overhead_ci_high']:+6.1%}] {seconds:6.1f}", flush=True)
        blackbox.ACCEPT_TIES = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--eps", default="8,16", help="L-inf budgets in grey levels (/255)")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--strong-steps", type=int, default=100)
    parser.add_argument("--models", nargs="*", default=["digits_small_cnn_hp_b1e-4", "digits_small_cnn_fp_b1e-3"])
    parser.add_argument("--p-init", type=float, default=blackbox.P_INIT, help="Square Attack's initial p")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    blackbox.P_INIT = args.p_init
    for m in args.models:
        run_model(REFERENCE / f"{m}.yaml", args.images, [float(e) / 255 for e in args.eps.split(",")],
                  args.queries, args.strong_steps)


if __name__ == "__main__":
    main()

"""Attack strength on the reference models: coded-bit overhead of every attack at every eps.

Usage: python benchmarks/attack_strength.py [--images 64] [--eps 2,4,8,16] [--steps 20,50,100,200]
       [--models digits_small_cnn_fp_b1e-3 ...] [--threads 1]

For each model and L-inf eps: overhead of real coded bits over the clean images (paired 95%
bootstrap CI), accuracy delta, share of predictions kept and seconds per cell, for sign noise,
FGSM, the published recipe (paper), strong, stealth and CE PGD at the erbench-v1 step counts; then
the paired difference strong - paper; ``--steps`` adds strong at other step counts (the ablation
behind its step count). Every image goes through the real coder, as in ``erbench evaluate``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from erbench.codec import measure
from erbench.conditions import CONDITIONS, Cell, Context
from erbench.data.datasets import load_dataset
from erbench.metrics import cell_metrics
from erbench.models.loader import load_model
from erbench.protocol import ATTACK_STEPS
from erbench.spec import load_submission

REFERENCE = Path(__file__).resolve().parents[1] / "submissions" / "reference"


def cells(eps: float, ablation: list[int]) -> list[Cell]:
    linf = dict(norm="linf", eps=eps)
    rate = lambda v, s: Cell("attack.rate_pgd", variant=v, steps=s, **linf)  # noqa: E731
    out = [Cell("attack.noise", **linf), rate("fgsm", 1), rate("paper", ATTACK_STEPS["paper"]),
           rate("strong", ATTACK_STEPS["strong"]), Cell("attack.stealth_rate", steps=ATTACK_STEPS["stealth_rate"], **linf),
           Cell("attack.ce_pgd", steps=ATTACK_STEPS["ce_pgd"], **linf)]
    return out + [rate("strong", s) for s in ablation if s != ATTACK_STEPS["strong"]]


def name(cell: Cell) -> str:
    short = cell.condition.removeprefix("attack.") + (f" {cell.variant}" if cell.variant else "")
    return short + (f" ({cell.steps} steps)" if cell.steps and cell.steps > 1 else "")


def run_model(spec: Path, n: int, eps_list: list[float], ablation: list[int]) -> None:
    model = load_model(load_submission(spec), spec)
    data = load_dataset("digits", "test")
    ctx = Context(data, np.arange(min(n, len(data))), model, progress=False)
    clean = measure(model, ctx.images)
    clean_bits, clean_correct = clean["bits_coded"], clean["pred"] == ctx.labels
    print(f"\n{spec.stem}: {len(ctx.indices)} images, clean {clean_bits.mean():.1f} coded bits/image, "
          f"accuracy {clean_correct.mean():.3f}")
    print(f"{'eps':>6} {'attack':28} {'overhead':>8} {'95% CI':>17} {'acc delta':>9} {'kept':>5} {'s':>6}")
    for eps in eps_list:
        bits = {}
        for cell in cells(eps, ablation):
            start = time.perf_counter()
            images = CONDITIONS.get(cell.condition).generate(cell, ctx).images
            seconds = time.perf_counter() - start
            m = measure(model, images)
            bits[cell] = m["bits_coded"]
            r = cell_metrics(m["bits_coded"], m["pred"] == ctx.labels, clean_bits, clean_correct)
            print(f"{eps * 255:4.0f}/255 {name(cell):28} {r['overhead']:+8.1%} "
                  f"[{r['overhead_ci_low']:+6.1%}, {r['overhead_ci_high']:+6.1%}] {r['accuracy_delta']:+9.3f} "
                  f"{np.mean(m['pred'] == clean['pred']):5.2f} {seconds:6.1f}", flush=True)
        paper, strong = cells(eps, [])[2:4]
        diff = (bits[strong] - bits[paper]) / clean_bits.mean()
        lo, hi = np.quantile(np.random.default_rng(0).choice(diff, (1000, len(diff))).mean(1), [0.025, 0.975])
        print(f"{eps * 255:4.0f}/255 {'strong - paper':28} {diff.mean():+8.1%} [{lo:+6.1%}, {hi:+6.1%}] "
              f"(images where strong < paper: {np.mean(diff < 0):.0%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--eps", default="2,4,8,16", help="L-inf budgets in grey levels (/255)")
    parser.add_argument("--steps", default="", help="extra step counts for strong (ablation), e.g. 20,50,200")
    parser.add_argument("--models", nargs="*", default=None, help="reference submission ids (default: all)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    specs = [REFERENCE / f"{m}.yaml" for m in args.models] if args.models else sorted(REFERENCE.glob("*.yaml"))
    for spec in specs:
        run_model(spec, args.images, [float(e) / 255 for e in args.eps.split(",")],
                  [int(s) for s in args.steps.split(",") if s])


if __name__ == "__main__":
    main()

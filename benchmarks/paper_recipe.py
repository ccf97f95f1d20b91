"""The published rate attack (`paper`) against erbench-v1's `noise_y`, and the effect of erbench's one
deviation from the published recipe (the last iterate moved onto the 8-bit grid).

For each entry and L-inf budget, on the first N test images, one torch thread:
  paper      coded-bit overhead of `attack.rate_pgd variant=paper` (what erbench reports)
  continuous the same attack's last iterate coded as a float image (what the published code codes)
  noise_y    erbench-v1's variant (noise on y too, sign of the mean gradient)
Overheads are mean coded bits / clean mean coded bits - 1, real coder bits throughout.

    python benchmarks/paper_recipe.py [--images 64] [--entries ID,ID] [--eps 2,4,8,16,32]
"""

from __future__ import annotations

import time

import click
import numpy as np
import torch

from erbench.codec import measure, to_tensor
from erbench.conditions import CONDITIONS, Cell, Context
from erbench.conditions.attacks import image_seed, recipes
from erbench.conditions.attacks.surrogate import coded_bits
from erbench.data.datasets import load_dataset
from erbench.models.loader import load_model
from erbench.spec import load_submission

DEFAULT = "digits_small_cnn_hp_b1e-4,digits_small_cnn_fp_b1e-3,digits_gdn_cnn_hp_b1e-4,digits_res_cnn_hp_b1e-4"


def _continuous_bits(model, ctx: Context, cell: Cell) -> float:
    """Mean coded bits of the published recipe's continuous last iterates."""
    out = []
    for lo in range(0, len(ctx.indices), ctx.batch_size):
        hi = lo + ctx.batch_size
        gens = [torch.Generator().manual_seed(image_seed(cell, int(i))) for i in ctx.indices[lo:hi]]
        t = recipes.Target(model, to_tensor(ctx.images[lo:hi], "cpu"), torch.from_numpy(ctx.labels[lo:hi]), gens,
                           cell.eps, cell.norm)
        out.append(coded_bits(model, recipes.published_iterate(t, cell.steps)))
    return float(torch.cat(out).mean())


@click.command()
@click.option("--images", default=64, show_default=True)
@click.option("--entries", default=DEFAULT, show_default=True)
@click.option("--eps", "budgets", default="2,4,8,16,32", show_default=True, help="L-inf budgets in grey levels")
def main(images: int, entries: str, budgets: str) -> None:
    torch.set_num_threads(1)
    data = load_dataset("digits", "test")
    attack = CONDITIONS.get("attack.rate_pgd")
    print("| entry | ε | paper | continuous (published) | noise_y | paper s | noise_y s |")
    print("|---|---|---|---|---|---|---|")
    for name in entries.split(","):
        path = f"submissions/reference/{name}.yaml"
        model = load_model(load_submission(path), path)
        ctx = Context(data, np.arange(images), model, progress=False)
        clean = measure(model, ctx.images)["bits_coded"].mean()
        for k in map(int, budgets.split(",")):
            row, seconds = {}, {}
            for v in ("paper", "noise_y"):
                cell = Cell("attack.rate_pgd", norm="linf", eps=k / 255, variant=v, steps=20)
                start = time.perf_counter()
                row[v] = measure(model, attack.generate(cell, ctx).images)["bits_coded"].mean() / clean - 1
                seconds[v] = time.perf_counter() - start
            cont = _continuous_bits(model, ctx, Cell("attack.rate_pgd", norm="linf", eps=k / 255, variant="paper",
                                                     steps=20)) / clean - 1
            print(f"| {name} | {k}/255 | {row['paper']:+.1%} | {cont:+.1%} | {row['noise_y']:+.1%} | "
                  f"{seconds['paper']:.1f} | {seconds['noise_y']:.1f} |", flush=True)


if __name__ == "__main__":
    main()

"""erbench's cells vs. a per-image loop in the style of the published code, same cells, same images.

Usage: OMP_NUM_THREADS=1 python benchmarks/published_loop.py [--images 64] [--repeats 3]
       [--model digits_small_cnn_hp_b1e-4] [--cache-dir DIR]

The published code of Zhang et al., "Resilience of Entropy Model in Distributed Neural Networks"
(ECCV 2024; github.com/Restuccia-Group/EntropyR: experiment_adv.py, experiment_c.py, pgd.py,
model_wrapper.py, utils.py) evaluates one image at a time: a loop over the dataset with batch size
1, each image attacked alone, the bitstream sized by CompressAI's own ``compress()`` inside the
model's forward (sc2bench's analysis), nothing stored but a running accuracy. The loop here (``Loop``)
does the same in erbench's terms:

* batch size 1 throughout; model loading is not timed on either side;
* a corruption is computed per image on the fly with erbench's seeded per-image function
  (``corrupt_one``), no cache (the published code reads pre-generated ImageNet-C files instead);
* coding per image through CompressAI's public API: ``EntropyBottleneck.compress`` /
  ``decompress`` for y (factorized) or z, ``GaussianConditional.build_indexes`` + ``compress`` /
  ``decompress`` for y given the decoded z (hyperprior); the tail classifies the decoded latent;
* attacks: erbench's recipes run per image. This loop times erbench's ``noise_y`` variant
  (erbench-v1's ``paper``), which differs from the published recipe (erbench-v2 ``paper``: 16
  per-copy signed steps averaged, hyperprior y hard-rounded; docs/attacks.md); the timing
  comparison predates v2 and keeps its cell: x0 = x, 20 signed steps of 0.1 clipped to
  the ball, loss = mean over 16 additive-noise copies of -log2 p(y~) (the head runs once, the
  copies are drawn on the latent), last iterate rounded to the 8-bit grid inside the ball; and
  ``ce_pgd``: uniform random start, 20 signed steps of 2.5 eps / 20 on the cross-entropy of the
  tail's logits on straight-through-rounded latents, last iterate on the grid. Its random numbers
  come from the same per-image generators, drawn in the same order, as erbench's, so the loop and
  erbench compute the same function and differ only by batching (64 images at once vs. one).

erbench's side is ``erbench.engine.worker.run_cell`` on ``worker.context(spec, images, Settings())``
(batch 64; corrupted images computed per 64-image chunk, partial chunks whole; with ``--cache-dir``
an extra ``erbench+cache`` column times the corruption cells read from a filled cache). erbench
does more per image than the loop: it also computes the estimated bits, the decode check and the
perturbation norms, and builds the per-image rows.

Checks. Clean and corruption cells: both sides must give the same coded bits (y and z) and the
same prediction on every image (the coders are the same; any difference is a bug). Attack cells:
the fraction of images whose 8-bit adversarial image is identical on both sides, and the mean
coded bits of each: batched and single-image convolutions differ in the last float bits, which can
flip the sign of a near-zero gradient entry and so move a pixel.

Runs are interleaved (for each repetition and cell: erbench, loop, alternating which goes first),
with one torch thread; medians over repetitions of wall and CPU (process) seconds per cell.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from erbench.cells import Cell
from erbench.conditions import Context
from erbench.conditions.attacks import image_seed
from erbench.conditions.corruptions import corrupt_one
from erbench.engine import worker
from erbench.engine.worker import Settings

ROOT = Path(__file__).resolve().parents[1]
EPS = 8 / 255
CELLS = (
    Cell("clean"),
    Cell("corruption.snow", severity=3),
    Cell("corruption.glass_blur", severity=5),
    Cell("attack.rate_pgd", norm="linf", eps=EPS, variant="noise_y", steps=20),
    Cell("attack.ce_pgd", norm="linf", eps=EPS, steps=20),
)
PAPER_STEP, PAPER_COPIES, CE_STEP = 0.1, 16, 2.5  # erbench's noise_y recipe and Madry's step


class Loop:
    """One image at a time, CompressAI's compress(), no store: the published code's shape."""

    def __init__(self, model):
        self.model = model
        self.e = model.entropy

    # --- coding, per image, through CompressAI's public API --------------------------------------
    @torch.no_grad()
    def code(self, x: torch.Tensor) -> tuple[int, int, int]:
        """(bits of y, bits of z, predicted class) for one image x (1, 3, H, W)."""
        e = self.e
        y = self.model.encode(x)
        if e.family == "factorized":
            y_strings = e.bottleneck.compress(y)
            y_hat = e.bottleneck.decompress(y_strings, y.shape[-2:])
            z_bits = 0
        else:
            z = e.hyper_analysis(y)
            z_strings = e.bottleneck.compress(z)
            z_hat = e.bottleneck.decompress(z_strings, z.shape[-2:])
            scales, means = e._params(z_hat)
            indexes = e.gaussian.build_indexes(scales)
            y_strings = e.gaussian.compress(y, indexes, means)
            y_hat = e.gaussian.decompress(y_strings, indexes, means=means)
            z_bits = 8 * len(z_strings[0])
        pred = int(self.model.tail(y_hat).argmax(1))
        return 8 * len(y_strings[0]) + z_bits, z_bits, pred

    # --- attack forward passes -------------------------------------------------------------------
    def _bottleneck_likelihood(self, v: torch.Tensor) -> torch.Tensor:
        eb = self.e.bottleneck
        c = v.permute(1, 0, 2, 3).contiguous()
        lik, _, _ = eb._likelihood(c.reshape(c.size(0), 1, -1))
        return eb.likelihood_lower_bound(lik).reshape(c.shape).permute(1, 0, 2, 3)

    def rate_y(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Mean over PAPER_COPIES noise draws of -log2 p(y~), noise from the image's generator."""
        e = self.e
        y = self.model.encode(x).repeat(PAPER_COPIES, 1, 1, 1)
        if e.family == "factorized":
            y_noisy = y + (torch.rand(y.shape, generator=gen) - 0.5)
            lik = self._bottleneck_likelihood(y_noisy)
        else:
            z = e.hyper_analysis(y)
            z_noisy = z + (torch.rand(z.shape, generator=gen) - 0.5)
            self._bottleneck_likelihood(z_noisy)  # z's likelihood: computed by the forward, not in the loss
            scales, means = e._params(z_noisy)
            y_noisy = y + (torch.rand(y.shape, generator=gen) - 0.5)
            lik = e.gaussian.likelihood_lower_bound(e.gaussian._likelihood(y_noisy, scales, means))
        return (-torch.log2(lik)).flatten(1).sum(1).mean()

    def logits_ste(self, x: torch.Tensor) -> torch.Tensor:
        """The tail's logits on straight-through-rounded latents (rounded around the prior's centre)."""
        e = self.e

        def ste(v, centre):
            return v + (torch.round(v - centre) + centre - v).detach()

        y = self.model.encode(x)
        if e.family == "factorized":
            y_hat = ste(y, e.bottleneck.quantiles[:, 0, 1].reshape(1, -1, 1, 1))
        else:
            z = e.hyper_analysis(y)
            z_hat = ste(z, e.bottleneck.quantiles[:, 0, 1].reshape(1, -1, 1, 1))
            _, means = e._params(z_hat)
            y_hat = ste(y, means)
        return self.model.tail(y_hat)

    # --- attacks, per image ----------------------------------------------------------------------
    @staticmethod
    def clip(x: torch.Tensor, x0: torch.Tensor, eps: float) -> torch.Tensor:
        return (x0 + (x - x0).clamp(-eps, eps)).clamp(0.0, 1.0)

    @staticmethod
    def to_uint8(x: torch.Tensor, x0: torch.Tensor, eps: float) -> np.ndarray:
        """Nearest grey level per pixel; an offset whose rounding leaves the ball is truncated."""
        c = torch.round(x0 * 255)
        d = (x * 255 - c).clamp(-c, 255 - c)
        r = torch.round(d)
        g = c + torch.where(r.abs() > eps * 255 * (1 + 1e-12), torch.trunc(d), r)
        return g[0].permute(1, 2, 0).to(torch.uint8).numpy()

    def rate_pgd_noise_y(self, x0: torch.Tensor, gen: torch.Generator, eps: float, steps: int) -> np.ndarray:
        x = x0.clone()
        for _ in range(steps):
            x.requires_grad_(True)
            (g,) = torch.autograd.grad(self.rate_y(x, gen), x)
            x = self.clip(x.detach() + PAPER_STEP * g.sign(), x0, eps)
        return self.to_uint8(x, x0, eps)

    def ce_pgd(self, x0: torch.Tensor, label: int, gen: torch.Generator, eps: float, steps: int) -> np.ndarray:
        x = self.clip(x0 + (torch.rand(x0.shape[1:], generator=gen) * 2 - 1)[None] * eps, x0, eps)
        target = torch.tensor([label])
        for _ in range(steps):
            x.requires_grad_(True)
            (g,) = torch.autograd.grad(F.cross_entropy(self.logits_ste(x), target), x)
            x = self.clip(x.detach() + CE_STEP * eps / steps * g.sign(), x0, eps)
        return self.to_uint8(x, x0, eps)

    # --- one cell --------------------------------------------------------------------------------
    def run(self, cell: Cell, indices: np.ndarray, images: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
        """indices: the images' dataset indices (their random seeds derive from them, as in erbench)."""
        bits, hyper, preds, coded_images = [], [], [], []
        for i, image, label in zip(indices.tolist(), images, labels):
            gen = torch.Generator().manual_seed(image_seed(cell, i))
            x0 = torch.from_numpy(image).permute(2, 0, 1)[None].float().div(255)
            if cell.condition == "clean":
                img = image
            elif cell.condition.startswith("corruption."):
                img = corrupt_one(image, cell.condition.removeprefix("corruption."), cell.severity, i)
            elif cell.condition == "attack.rate_pgd" and cell.variant == "noise_y":
                img = self.rate_pgd_noise_y(x0, gen, cell.eps, cell.steps)
            elif cell.condition == "attack.ce_pgd":
                img = self.ce_pgd(x0, int(label), gen, cell.eps, cell.steps)
            else:
                raise ValueError(f"the loop has no {cell.label()}")
            b, h, p = self.code(torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float().div(255))
            bits.append(b), hyper.append(h), preds.append(p), coded_images.append(img)
        return {"bits_coded": np.array(bits), "bits_coded_hyper": np.array(hyper), "pred": np.array(preds),
                "images": np.stack(coded_images)}


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def erbench_run(cell: Cell, ctx) -> dict[str, np.ndarray]:
    """run_cell, keeping the images it coded (for the comparison; not part of erbench's work)."""
    seen = []
    original = worker.measure

    def measure(model, images, *args, **kwargs):
        seen.append(images)
        return original(model, images, *args, **kwargs)

    worker.measure = measure
    try:
        frame = worker.run_cell(cell, ctx)
    finally:
        worker.measure = original
    return {k: frame[k].to_numpy() for k in ("bits_coded", "bits_coded_hyper", "pred", "decode_ok")} | {
        "images": seen[0]}


def name(cell: Cell) -> str:
    out = cell.condition + (f" {cell.variant}" if cell.variant else "")
    out += f" s{cell.severity}" if cell.severity else ""
    return out + (f" {cell.norm} {cell.eps * 255:g}/255, {cell.steps} steps" if cell.eps is not None else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="digits_small_cnn_hp_b1e-4")
    parser.add_argument("--cache-dir", default=None, help="also time erbench with this corruption cache (warmed first)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    spec = str(ROOT / "submissions" / "reference" / f"{args.model}.yaml")
    ctx = worker.context(spec, args.images, Settings())
    sides = {"erbench": lambda cell: erbench_run(cell, ctx)}
    if args.cache_dir:
        cached = Context(ctx.dataset, ctx.indices, ctx.model, cache_dir=Path(args.cache_dir), progress=False)
        for cell in CELLS[1:3]:  # warm the cache: this row measures a second run on a filled cache
            worker.run_cell(cell, cached)
        sides["erbench+cache"] = lambda cell: erbench_run(cell, cached)
    loop = Loop(ctx.model)
    sides["loop"] = lambda cell: loop.run(cell, ctx.indices, ctx.images, ctx.labels)
    # warm-up (imports, first kernels, coder tables), untimed
    few = Context(ctx.dataset, ctx.indices[:2], ctx.model, progress=False)
    for cell in CELLS:
        short = cell if cell.steps is None else replace(cell, steps=1)
        erbench_run(short, few)
        loop.run(short, few.indices, few.images, few.labels)

    print(f"{args.model}, {args.images} images, {args.repeats} interleaved repetitions, torch threads "
          f"{torch.get_num_threads()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    print(f"load at start: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    times: dict[tuple[str, Cell], list[tuple[float, float]]] = {}
    outputs: dict[tuple[str, Cell], dict] = {}
    order = list(sides)

    def runs(side: str, cell: Cell) -> bool:  # the cache only changes corruption cells
        return side != "erbench+cache" or cell.condition.startswith("corruption.")

    for rep in range(args.repeats):
        for cell in CELLS:
            here = [s for s in order if runs(s, cell)]
            for side in here[rep % len(here):] + here[: rep % len(here)]:
                wall, cpu, out = timed(lambda: sides[side](cell))
                times.setdefault((side, cell), []).append((wall, cpu))
                outputs[side, cell] = out
            print(f"  rep {rep + 1} {name(cell)}: " + ", ".join(
                f"{s} {times[s, cell][-1][0]:.1f} s" for s in here), flush=True)
    print(f"load at end: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")

    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in times.items()}
    head = "".join(f" {s + ' wall':>18} {s + ' cpu':>17}" for s in order)
    print(f"\nmedian seconds per cell ({args.images} images)\n{'cell':42}{head} {'wall ratio':>10} {'cpu ratio':>9}"
          "   (ratio = erbench / loop)")
    total = {s: [0.0, 0.0] for s in ("erbench", "loop")}
    for cell in CELLS:
        row = ""
        for s in order:
            w, c = med.get((s, cell), (float("nan"), float("nan")))
            row += f" {w:18.2f} {c:17.2f}"
            if s in total:
                total[s][0] += w
                total[s][1] += c
        (ew, ec), (lw, lc) = med["erbench", cell], med["loop", cell]
        print(f"{name(cell):42}{row} {ew / lw:10.3f} {ec / lc:9.3f}")
    row = "".join(f" {total[s][0]:18.2f} {total[s][1]:17.2f}" if s in total else f" {'':18} {'':17}" for s in order)
    print(f"{'total':42}{row} {total['erbench'][0] / total['loop'][0]:10.3f} "
          f"{total['erbench'][1] / total['loop'][1]:9.3f}")
    if "erbench+cache" in order:
        print("erbench+cache: the corruption cells read from a filled cache (the other cells are erbench's)")

    print("\nchecks (erbench vs. loop, per image)")
    for cell in CELLS:
        a, b = outputs["erbench", cell], outputs["loop", cell]
        same_img = np.mean([np.array_equal(p, q) for p, q in zip(a["images"], b["images"])])
        same_bits = np.mean(a["bits_coded"] == b["bits_coded"])
        same_hyper = np.mean(a["bits_coded_hyper"] == b["bits_coded_hyper"])
        same_pred = np.mean(a["pred"] == b["pred"])
        print(f"{name(cell):42} identical coded images {same_img:6.1%} | identical coded bits {same_bits:6.1%} "
              f"(z {same_hyper:6.1%}) | same prediction {same_pred:6.1%} | mean bits erbench "
              f"{a['bits_coded'].mean():7.1f} loop {b['bits_coded'].mean():7.1f} | decode_ok {a['decode_ok'].mean():.0%}")
        if not cell.condition.startswith("attack.") and not (same_img == same_bits == same_pred == 1.0):
            print(f"  MISMATCH on {cell.label()}: the same images must give the same bits and predictions")


if __name__ == "__main__":
    main()

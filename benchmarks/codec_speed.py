"""Coding speed: erbench's cached-table coder vs. CompressAI's own compress()/decompress(), per reference model.

Usage: OMP_NUM_THREADS=1 python benchmarks/codec_speed.py [--images 256] [--batch-size 64] [--repeats 15]
       [--models digits_small_cnn_fp_b1e-3 digits_small_cnn_hp_b1e-4]

Like is compared with like, from the latent y (the head is run once beforehand, untimed, and is
not part of either side):

* compress: erbench's ``model.entropy.compress(y)`` vs. CompressAI's public API on the same y --
  factorized: ``EntropyBottleneck.compress(y)``; hyperprior: ``h_a``, ``EntropyBottleneck.compress(z)``,
  ``EntropyBottleneck.decompress`` (the encoder needs the decoded z), ``h_s``,
  ``GaussianConditional.build_indexes`` + ``compress(y, indexes, means)``;
* decompress: erbench's ``model.entropy.decompress(coded)`` vs. CompressAI's ``decompress`` of the
  same streams (hyperprior: z, then ``h_s``, ``build_indexes``, ``GaussianConditional.decompress``).

Both coders run CompressAI's rANS coder; erbench only keeps the CDF tables as Python lists between
calls and passes each sample the rows it uses (erbench/models/rans.py). Checks: the streams are
byte-identical (y and z), and both decoders return the same latent, equal to the rounded latent of
the model's forward. Repetitions are interleaved (the four timed steps, rotating which goes
first); images/s are medians over repetitions, one torch thread.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time
from pathlib import Path

import torch

from erbench.codec import to_tensor
from erbench.data.datasets import load_dataset
from erbench.models.loader import load_model
from erbench.spec import load_submission

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("digits_small_cnn_fp_b1e-3", "digits_small_cnn_hp_b1e-4")


def compressai_compress(model, x: torch.Tensor) -> dict[str, list[bytes]]:
    """The streams of images x through the model's head and CompressAI's public compress()
    (tests/test_codec.py checks erbench's bytes against it)."""
    return compressai_compress_latent(model.entropy, model.encode(x))


def compressai_compress_latent(e, y: torch.Tensor) -> dict[str, list[bytes]]:
    """The streams of y through CompressAI's public compress() (its tables converted per sample)."""
    if e.family == "factorized":
        return {"y": e.bottleneck.compress(y)}
    z = e.hyper_analysis(y)
    z_strings = e.bottleneck.compress(z)
    z_hat = e.bottleneck.decompress(z_strings, z.shape[-2:])
    scales, means = e._params(z_hat)
    return {"y": e.gaussian.compress(y, e.gaussian.build_indexes(scales), means), "z": z_strings}


def compressai_decompress(e, strings: dict[str, list[bytes]], shapes: dict[str, tuple[int, ...]]) -> torch.Tensor:
    """The decoded y through CompressAI's public decompress()."""
    if e.family == "factorized":
        return e.bottleneck.decompress(strings["y"], shapes["y"][-2:])
    z_hat = e.bottleneck.decompress(strings["z"], shapes["z"][-2:])
    scales, means = e._params(z_hat)
    return e.gaussian.decompress(strings["y"], e.gaussian.build_indexes(scales), means=means)


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = load_dataset("digits", "test")
    x = to_tensor(data.images[: args.images], "cpu")
    n = len(x)
    print(f"{n} digits test images in batches of {args.batch_size}, {args.repeats} interleaved repetitions, "
          f"torch threads {torch.get_num_threads()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    print(f"load: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    print(f"{'model':28} {'step':10} {'erbench img/s':>13} {'compressai img/s':>16} {'speed-up':>8}")
    for name in args.models:
        spec = ROOT / "submissions" / "reference" / f"{name}.yaml"
        model = load_model(load_submission(spec), spec)
        e = model.entropy
        with torch.no_grad():
            ys = [model.encode(b) for b in x.split(args.batch_size)]
            rounded = [e(y, "round", "round")[0] for y in ys]
        steps = {
            ("compress", "erbench"): lambda: [e.compress(y) for y in ys],
            ("compress", "compressai"): lambda: [compressai_compress_latent(e, y) for y in ys],
            ("decompress", "erbench"): lambda: [e.decompress(c) for c in ours],
            ("decompress", "compressai"): lambda: [compressai_decompress(e, c.strings, c.shapes) for c in ours],
        }
        with torch.no_grad():
            ours = [e.compress(y) for y in ys]  # the streams both decoders read (checked identical below)
            compressai_compress_latent(e, ys[0][:1]), compressai_decompress(e, ours[0].strings, ours[0].shapes)  # warm-up
            seconds: dict[tuple[str, str], list[float]] = {k: [] for k in steps}
            results = {}
            keys = list(steps)
            for rep in range(args.repeats):
                for key in keys[rep % 4:] + keys[: rep % 4]:
                    t, results[key] = timed(steps[key])
                    seconds[key].append(t)
        for step in ("compress", "decompress"):
            ours_s, theirs_s = (statistics.median(seconds[step, side]) for side in ("erbench", "compressai"))
            print(f"{name:28} {step:10} {n / ours_s:13.0f} {n / theirs_s:16.0f} {theirs_s / ours_s:7.1f}x")
        streams_same = all(c.strings[k] == t[k] for c, t in zip(results["compress", "erbench"],
                                                              results["compress", "compressai"]) for k in c.strings)
        decoded_same = all(torch.equal(a, b) and torch.equal(a, r) for a, b, r in zip(
            results["decompress", "erbench"], results["decompress", "compressai"], rounded))
        n_bytes = sum(len(s) for c in ours for k in c.strings for s in c.strings[k])
        print(f"{name:28} byte-identical streams: {streams_same} ({8 * n_bytes / n:.1f} bits/image) | identical "
              f"decoded latents (= forward's rounded y): {decoded_same}")


if __name__ == "__main__":
    main()

"""Coding speed: erbench's cached-table coder vs. CompressAI's own compress(), per reference model.

Usage: python benchmarks/codec_speed.py [--images 256]
Prints images/s for compress+decompress and checks that both coders write the same bytes.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from erbench.codec import to_tensor
from erbench.data.datasets import load_dataset
from erbench.models.loader import load_model
from erbench.spec import load_submission

ROOT = Path(__file__).resolve().parents[1]


def compressai_compress(model, x):
    """The same streams through CompressAI's public compress() API (tables converted per sample)."""
    e = model.entropy
    y = model.encode(x)
    if e.family == "factorized":
        return {"y": e.bottleneck.compress(y)}
    z = e.hyper_analysis(y)
    z_strings = e.bottleneck.compress(z)
    z_hat = e.bottleneck.decompress(z_strings, z.shape[-2:])
    scales, means = e._params(z_hat)
    return {"y": e.gaussian.compress(y, e.gaussian.build_indexes(scales), means), "z": z_strings}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=256)
    args = parser.parse_args()
    data = load_dataset("digits", "test")
    x = to_tensor(data.images[: args.images], "cpu")
    for name in ("digits_small_cnn_fp_b1e-3", "digits_small_cnn_hp_b1e-4"):
        spec = ROOT / "submissions" / "reference" / f"{name}.yaml"
        model = load_model(load_submission(spec), spec)
        with torch.no_grad():
            start = time.perf_counter()
            coded = model.compress(x)
            model.decompress(coded)
            ours = time.perf_counter() - start
            start = time.perf_counter()
            theirs_strings = compressai_compress(model, x)
            theirs = time.perf_counter() - start
        same = all(coded.strings[k] == theirs_strings[k] for k in coded.strings)
        print(f"{name}: erbench compress+decompress {args.images / ours:8.0f} img/s | "
              f"compressai compress only {args.images / theirs:8.0f} img/s | identical bytes: {same}")


if __name__ == "__main__":
    main()

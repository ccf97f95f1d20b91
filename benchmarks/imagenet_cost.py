"""ImageNet-scale cost: the Entropic Student ResNet-50 (both priors) through a protocol at 224x224.

Usage: python benchmarks/imagenet_cost.py [--images 2] [--device cpu|cuda] [--protocol erbench-v2-quick]
                                          [-c GLOB ...] [--work DIR]

Writes a fake ImageNet-val layout (``--images`` JPEGs of 500x375 in their class folders, the first
files of imagenet-val-5k.txt), a copy of data_manifests/ selecting just those files and locked by
``erbench data lock`` ($ERBENCH_MANIFESTS), and one submission per prior with seeded random weights
(``torch.manual_seed(0)``; degenerate, which changes no cost). Each runs through ``erbench evaluate``
with the model evaluated on blocks of ``--block`` rows (erbench pads every block to 64 rows,
models/blocks.py: with fewer images than that a cell costs what 64 images cost; ``--block N`` with
``--images N`` measures N real images; with ``--block B`` above N, each cell computes B rows, N real
and B - N copies, and costs are divided by B: the model's cost per image when every row is real);
the script prints every cell's measured seconds (the part's ``erbench_seconds``) per image, the cost
per image and per cell by condition, and the extrapolation to 5,000 images under erbench-v2 (each
quick cell scaled by the full protocol's iterations over the quick one's). tests/test_imagenet_scale.py
uses the same writers.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import yaml

PRIORS = ("factorized", "hyperprior")
FULL_IMAGES = 5000


def write_fake_imagenet(root: Path, manifests: Path, n: int) -> list[str]:
    """JPEGs (500x375, random smooth content) for the first ``n`` listed files, a copy of data_manifests/
    in ``manifests`` selecting just those, locked with ``erbench data lock`` (run with
    $ERBENCH_MANIFESTS pointing at ``manifests``)."""
    from PIL import Image

    from erbench.cli import main
    from erbench.data.manifest import MANIFEST_DIR

    shutil.copytree(MANIFEST_DIR, manifests, dirs_exist_ok=True)
    files = (MANIFEST_DIR / "imagenet-val-5k.txt").read_text().splitlines()[:n]
    rng = np.random.default_rng(1)
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        coarse = rng.integers(0, 256, (375 // 16 + 1, 500 // 16 + 1, 3), dtype=np.uint8)
        Image.fromarray(coarse).resize((500, 375), Image.BICUBIC).save(path, "JPEG", quality=90)
    (manifests / "fake-5k.txt").write_text("\n".join(files))
    spec = yaml.safe_load((manifests / "imagenet-val-5k.yaml").read_text())
    spec["local"]["images"] = {"file": "fake-5k.txt",
                               "sha256": hashlib.sha256((manifests / "fake-5k.txt").read_bytes()).hexdigest()}
    spec["split"]["test"] = n
    (manifests / "imagenet-val-5k.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    if main(["data", "lock", "imagenet-val-5k", "--root", str(root)]) != 0:
        raise RuntimeError("erbench data lock failed")
    return files


def write_reference_entry(directory: Path, prior: str) -> Path:
    """``resnet50_entropic_student_<prior>`` with seeded random weights: its safetensors and YAML."""
    import torch
    from safetensors.torch import save_file

    from erbench.models.architectures import ARCHITECTURES
    from erbench.models.loader import file_sha256

    sid = f"imagenet_entropic_student_{prior}_random"
    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = ARCHITECTURES.get(f"resnet50_entropic_student_{prior}").build()
    model.eval()
    model.update(converge_quantiles=True)
    weights = directory / f"{sid}.safetensors"
    save_file(model.weights(), str(weights))
    spec = {"id": sid, "title": f"Entropic Student ResNet-50 ({prior}), seeded random weights", "authors": ["erbench"],
            "license": "MIT", "dataset": "imagenet-val-5k",
            "model": {"architecture": f"resnet50_entropic_student_{prior}", "kwargs": {}},
            "entropy_model": prior, "beta": 0.0,
            "weights": {"file": weights.name, "sha256": file_sha256(weights)},
            "preprocessing": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
            "notes": "untrained (torch.manual_seed(0)): exercises the pipeline and measures its cost"}
    path = directory / f"{sid}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def cell_seconds(out: Path, sid: str) -> list[tuple[object, float]]:
    """(cell, measured compute seconds) of every committed cell of the last plan under ``out/<sid>``."""
    from erbench.engine.store import Store

    store = Store(out, sid)
    return [(t.cell, store.seconds(t.key)) for t in store.read_plan().tasks]


def one_cell_per_kind(protocol: str = "erbench-v2-quick") -> tuple:
    """Clean, fog at severity 3 and, per attack condition of ``protocol``, its first cell at 8/255 (rate_pgd:
    the published recipe, ``paper``)."""
    from erbench.cells import Cell
    from erbench.protocol import PROTOCOLS

    chosen, seen = [Cell("clean"), Cell("corruption.fog", severity=3)], set()
    for cell in PROTOCOLS.get(protocol).cells:
        if cell.condition.startswith("attack.") and cell.condition not in seen and cell.eps == 8 / 255:
            seen.add(cell.condition)
            chosen.append(cell)
    return tuple(chosen)


def extrapolate(cells: list[tuple[object, float]], n: int, full: str = "erbench-v2") -> float:
    """Seconds for ``FULL_IMAGES`` images under ``full``: each of its cells costs the measured cell of the same
    condition and variant (corruptions: the mean measured corruption cell), scaled by iterations (full /
    measured) and images (5,000 / n)."""
    from erbench.protocol import PROTOCOLS

    def kind(c) -> tuple:
        return ("corruption", None) if c.condition.startswith("corruption.") else (c.condition, c.variant)

    measured: dict[tuple, list[float]] = defaultdict(list)
    for c, seconds in cells:
        measured[kind(c)].append(seconds / max(c.steps or 1, 1))
    total = sum(np.mean(measured[kind(c)]) * max(c.steps or 1, 1) for c in PROTOCOLS.get(full).cells)
    return total * FULL_IMAGES / n


def report(prior: str, cells: list[tuple[object, float]], n: int, wall: float, full: bool) -> None:
    """Seconds per cell and image by kind, per image for the plan, and the extrapolation to erbench-v2."""
    by_kind: dict[str, list[float]] = defaultdict(list)
    for cell, seconds in cells:
        name = cell.condition if cell.condition.startswith("attack.") else cell.condition.split(".")[0]
        by_kind[f"{name}:{cell.variant}" if cell.variant else name].append(seconds)
    total = sum(s for _, s in cells)
    print(f"\n{prior}: {len(cells)} cells on {n} rows, {total:.1f} s computing ({wall:.1f} s wall)")
    print(f"  {'condition:variant':32s} {'cells':>5s} {'s/cell/image (mean)':>20s}")
    for name, values in sorted(by_kind.items(), key=lambda kv: -sum(kv[1])):
        print(f"  {name:32s} {len(values):5d} {sum(values) / len(values) / n:20.2f}")
    print(f"  per image: {total / n:.1f} s for the whole plan; per cell and image: {total / n / len(cells):.2f} s")
    hours = extrapolate(cells, n) / 3600
    print(f"  extrapolated to {FULL_IMAGES} images x erbench-v2 ({'measured' if full else 'per kind'}): "
          f"{hours:.0f} h on one such worker")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--protocol", default="erbench-v2-quick")
    parser.add_argument("-c", "--conditions", action="append", default=[])
    parser.add_argument("--one-per-kind", action="store_true",
                        help="only clean, fog severity 3 and one cell per attack condition (what the test runs)")
    parser.add_argument("--priors", nargs="+", default=list(PRIORS), choices=PRIORS)
    parser.add_argument("--work", type=Path, default=Path("/tmp/erbench-imagenet-cost"))
    parser.add_argument("--block", type=int, default=None, help="rows per model block (default: --images, at most 64)")
    args = parser.parse_args()
    from erbench.models import blocks

    rows = args.block or min(args.images, blocks.BLOCK_ROWS)
    blocks.rowwise.__kwdefaults__ = {"rows": rows}
    os.environ["ERBENCH_MANIFESTS"] = str(args.work / "manifests")
    from erbench.protocol import PROTOCOLS, Protocol
    from erbench.runner import evaluate

    if args.one_per_kind:
        quick = PROTOCOLS.get(args.protocol)
        PROTOCOLS._entries[args.protocol] = Protocol(args.protocol, "one cell per kind", one_cell_per_kind(),
                                                      quick=quick.quick, max_images=quick.max_images)

    root = args.work / "val"
    write_fake_imagenet(root, args.work / "manifests", args.images)
    for prior in args.priors:
        spec = write_reference_entry(args.work / "subs", prior)
        start = time.perf_counter()
        result = evaluate(spec, args.work / "out", protocol=args.protocol, conditions=tuple(args.conditions),
                          device=args.device, data_root=root, cache_dir=args.work / f"cache-{prior}", progress=True)
        wall = time.perf_counter() - start
        if result.computed == 0:
            print(f"{prior}: every cell was committed already in {args.work / 'out'}: remove it to measure again",
                  file=sys.stderr)
        report(prior, cell_seconds(args.work / "out", spec.stem), max(rows, args.images), wall,
               not (args.conditions or args.one_per_kind))


if __name__ == "__main__":
    main()

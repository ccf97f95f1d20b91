"""Peak memory (and time) of erbench runs: a digits battery, and the Entropic Student at 224x224.

Usage: OMP_NUM_THREADS=1 python benchmarks/memory.py [--quick] [--skip-battery] [--skip-synthetic]
       [--submission submissions/reference/digits_small_cnn_hp_b1e-4.yaml] [--cache-dir DIR]
       [--images 64] [--batch-size 8] [--cells clean,snow,paper]

Every measured run is a child process; its peak resident set size is the ``ru_maxrss`` that
``os.wait4`` returns for that child (Linux: the high-water mark of its RSS, KiB), so runs do not
see each other's memory.

(a) battery: ``erbench evaluate SUBMISSION --out TMP --no-progress`` (the full erbench-v1
    battery on all test images, about 10-15 min on one core; ``--quick`` runs the quick protocol
    instead, about a minute). Corrupted images come from erbench's default cache
    (~/.cache/erbench) unless ``--cache-dir`` is given; the run's output directory is temporary.
(b) synthetic 224x224: the registered ``resnet50_entropic_student_factorized`` / ``_hyperprior``
    with random weights (``torch.manual_seed(0)``, moved into the coder's working regime as in
    tests/test_entropic_student.py: the head's last conv x20, the hyper-analysis' last conv x10,
    positive predicted scales), ImageNet normalization, 1000 classes, on ``--images`` random uint8
    224x224 images (seed 0, random labels) built as an ``erbench.data.datasets.Dataset``. Each cell
    runs alone in a fresh process through ``erbench.engine.worker.run_cell`` with an
    ``erbench.conditions.Context`` (batch ``--batch-size``, no corruption cache): its peak RSS,
    the RSS once the model and images are loaded, and seconds per image (wall, and CPU of the
    process). Cells (``--cells``): ``clean``, ``snow`` (corruption.snow severity 3), ``paper``
    (attack.rate_pgd paper, L-inf 8/255, 2 steps), ``strong`` (attack.rate_pgd strong, 2 steps),
    ``ce`` (attack.ce_pgd, 2 steps, which backpropagates through the ResNet-50 tail). Per image,
    a 2-step cell costs about 2/20 (paper, ce) or 2/100 (strong) of the erbench-v1 cell, plus the
    coding of the result. The two architectures are interleaved per cell.
    Memory grows with the batch: the ``paper`` recipe's 16 noise copies of the 24x55x55 latent go
    through the factorized prior's density network with autograd (measured on 2026-12-03 at one
    thread: peak 2.1 GiB at batch 2, 3.4 GiB at batch 8, about 0.2 GiB per image more), so the
    default batch here is 8, not erbench's 64 (about 15 GiB on that cell by that slope).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EPS = 8 / 255
FAMILIES = ("factorized", "hyperprior")
CELL_ARGS = {
    "clean": dict(condition="clean"),
    "snow": dict(condition="corruption.snow", severity=3),
    "paper": dict(condition="attack.rate_pgd", norm="linf", eps=EPS, variant="paper", steps=2),
    "strong": dict(condition="attack.rate_pgd", norm="linf", eps=EPS, variant="strong", steps=2),
    "ce": dict(condition="attack.ce_pgd", norm="linf", eps=EPS, steps=2),
}
IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


def run_child(argv: list[str], stdout=None) -> tuple[int, float, float, float]:
    """(exit status, wall s, CPU s, peak RSS MiB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=stdout, env={**os.environ, "OMP_NUM_THREADS": "1"})
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, time.perf_counter() - start, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


# --- (b): one synthetic cell, in the child process ----------------------------------------------

def synthetic_dataset(n: int):
    import numpy as np

    from erbench.data.datasets import Dataset
    from erbench.data.manifest import Manifest, Split, arrays_sha256

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 224, 224, 3), dtype=np.uint8)
    labels = rng.integers(0, 1000, n).astype(np.int64)
    sha = arrays_sha256(images, labels)
    manifest = Manifest(id="synthetic224", title="random uint8 224x224 images (benchmarks/memory.py)",
                        source="numpy default_rng(0)", transform="none", split=Split(rule="all", train=0, test=n),
                        num_classes=1000, image_size=(224, 224), test_sha256=sha,
                        train_sha256=arrays_sha256(images[:0], labels[:0]))
    return Dataset("synthetic224", manifest, images, labels, sha)


def entropic_student(family: str):
    import torch

    from erbench.models.architectures import ARCHITECTURES

    torch.manual_seed(0)
    model = ARCHITECTURES.get(f"resnet50_entropic_student_{family}").build()
    with torch.no_grad():  # the working regime of tests/test_entropic_student.py's spread()
        model.head[-1].weight.mul_(20)
        if family == "hyperprior":
            model.entropy.hyper_analysis[-1].weight.mul_(10)
            scales = model.entropy.hyper_synthesis[-1].weight[:24]
            scales.copy_(4 * scales.abs())
    model.set_preprocessing(*IMAGENET)
    model.eval()
    model.update()
    return model


def synthetic_cell(family: str, cell_name: str, images: int, batch_size: int) -> dict:
    import numpy as np
    import torch

    from erbench.cells import Cell
    from erbench.conditions import Context
    from erbench.engine.worker import run_cell

    torch.set_num_threads(1)
    ctx = Context(synthetic_dataset(images), np.arange(images), entropic_student(family), batch_size=batch_size,
                  progress=False)
    ctx.images, ctx.labels  # noqa: B018  (materialized before the baseline)
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    wall, cpu = time.perf_counter(), time.process_time()
    frame = run_cell(Cell(**CELL_ARGS[cell_name]), ctx)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"loaded_mib": loaded, "wall": wall, "cpu": cpu, "bits": float(frame["bits_coded"].mean()),
            "decode_ok": float(frame["decode_ok"].mean())}


# --- driver ---------------------------------------------------------------------------------------

def battery(args) -> None:
    with tempfile.TemporaryDirectory(prefix="erbench-memory-") as out:
        script = Path(sys.executable).with_name("erbench")  # the console script of this environment
        argv = [str(script), "evaluate", args.submission, "--out", out, "--no-progress"]
        argv += ["--quick"] if args.quick else []
        argv += ["--cache-dir", args.cache_dir] if args.cache_dir else []
        print(f"\n(a) erbench {' '.join(argv[1:])}\n    load before: {uptime()}", flush=True)
        log = Path(out) / "stdout.txt"
        with open(log, "w") as f:
            code, wall, cpu, rss = run_child(argv, stdout=f)
        tail = [line for line in log.read_text().splitlines() if " cells (" in line]  # erbench's closing line
        print(f"    load after:  {uptime()}")
        print(f"    exit {code}, wall {wall:.0f} s, CPU {cpu:.0f} s, peak RSS {rss:.0f} MiB")
        print("    " + "\n    ".join(tail))


def synthetic(args) -> None:
    names = args.cells.split(",")
    print(f"\n(b) Entropic Student 224x224, random weights, {args.images} random images, batch {args.batch_size}, "
          f"one torch thread, one process per cell\n    load before: {uptime()}")
    print(f"    {'architecture':12} {'cell':8} {'peak RSS MiB':>12} {'loaded MiB':>10} {'s/image wall':>12} "
          f"{'s/image CPU':>11} {'bits/image':>10} {'decode_ok':>9}")
    for name in names:
        for family in FAMILIES:
            with tempfile.NamedTemporaryFile("r", suffix=".json") as result:
                argv = [sys.executable, __file__, "--child", family, name, result.name,
                        "--images", str(args.images), "--batch-size", str(args.batch_size)]
                code, wall, cpu, rss = run_child(argv)
                if code != 0:
                    print(f"    {family:12} {name:8} FAILED (exit {code})")
                    continue
                r = json.loads(Path(result.name).read_text())
            print(f"    {family:12} {name:8} {rss:12.0f} {r['loaded_mib']:10.0f} {r['wall'] / args.images:12.3f} "
                  f"{r['cpu'] / args.images:11.3f} {r['bits']:10.0f} {r['decode_ok']:9.0%}", flush=True)
    print(f"    load after:  {uptime()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="(a) with the quick protocol")
    parser.add_argument("--skip-battery", action="store_true")
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--submission", default=str(ROOT / "submissions" / "reference" / "digits_small_cnn_hp_b1e-4.yaml"))
    parser.add_argument("--cache-dir", default=None, help="(a) corruption cache (default: erbench's)")
    parser.add_argument("--images", type=int, default=64, help="(b) synthetic images")
    parser.add_argument("--batch-size", type=int, default=8,
                        help="(b) batch size of the cells (memory grows with it: see the docstring)")
    parser.add_argument("--cells", default="clean,snow,paper", help=f"(b) comma-separated, of {','.join(CELL_ARGS)}")
    parser.add_argument("--child", nargs=3, metavar=("FAMILY", "CELL", "RESULT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        family, cell_name, path = args.child
        Path(path).write_text(json.dumps(synthetic_cell(family, cell_name, args.images, args.batch_size)))
        return
    unknown = set(args.cells.split(",")) - set(CELL_ARGS)
    if unknown:
        parser.error(f"unknown cells {sorted(unknown)}; choose from {sorted(CELL_ARGS)}")
    print("peak RSS per child process (os.wait4 ru_maxrss); OMP_NUM_THREADS=1 in every child")
    if not args.skip_battery:
        battery(args)
    if not args.skip_synthetic:
        synthetic(args)


if __name__ == "__main__":
    main()

"""The evaluation engine before and after, on the same machine, in one run, side by side.

Usage: python benchmarks/engine.py [--spec SUB.yaml] [--before REV] [--quick] [--repeat 1]

Runs the whole battery of one reference entry (``--quick``: the quick protocol) through

* ``before``: erbench at REV (default: the last commit before the engine), from a git worktree,
  as its README ran it (torch's default threads) and with ``OMP_NUM_THREADS=1``;
* ``after``: this checkout with ``--jobs 1`` and ``--jobs 2`` (erbench sets one thread per worker
  itself; ``OMP_NUM_THREADS`` is unset);

each as a fresh ``erbench evaluate`` process sharing one warm corruption cache (filled first, not
timed), and prints wall time, CPU time (user + sys of the process tree) and peak RSS of each,
the ratios, and whether the per-image coded bits are identical (L2 rate-attack cells, not
bit-reproducible before erbench-v2, are compared by their mean).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
BEFORE_ENGINE = "4fcbbc5"
KEY = ["condition", "severity", "norm", "eps", "variant", "steps", "seed", "image_index"]


def timed(cmd: list[str], env: dict, log: Path) -> dict:
    """Wall, CPU (user + sys of the command and its children) and peak RSS of one command."""
    stats = log.with_suffix(".time")
    start = time.perf_counter()
    with open(log, "w") as out:
        subprocess.run(["/usr/bin/time", "-o", str(stats), "-f", "%U %S %M", *cmd], env=env, stdout=out,
                       stderr=subprocess.STDOUT, check=True)
    wall = time.perf_counter() - start
    user, system, rss_kb = stats.read_text().split()[-3:]
    return {"wall": wall, "cpu": float(user) + float(system), "rss_gb": int(rss_kb) / 2**20}


def per_image(out: Path, sid: str) -> pd.DataFrame:
    return pd.read_parquet(out / sid / "per_image.parquet").set_index(KEY).sort_index()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", type=Path, default=ROOT / "submissions/reference/digits_small_cnn_hp_b1e-4.yaml")
    parser.add_argument("--before", default=BEFORE_ENGINE)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--skip-default-threads", action="store_true",
                        help="leave out 'before, default threads' (about 4x the others on a full battery)")
    args = parser.parse_args()
    spec, sid = args.spec.resolve(), args.spec.stem
    tmp = Path(tempfile.mkdtemp(prefix="erbench-engine-"))
    before_tree = tmp / "before"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(before_tree), args.before],
                   check=True, capture_output=True)
    cache = tmp / "cache"
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "PYTHONPATH")}
    common = [str(spec), "--no-progress", "--cache-dir", str(cache)] + (["--quick"] if args.quick else [])
    old_env = {**base, "PYTHONPATH": str(before_tree / "benchmark")}
    modes = {
        "before, 1 thread": (old_env | {"OMP_NUM_THREADS": "1"}, []),
        "after, --jobs 1": (base, ["--jobs", "1"]),
        "after, --jobs 2": (base, ["--jobs", "2"]),
        "before, default threads": (old_env, []),
    }
    if args.skip_default_threads:
        del modes["before, default threads"]
    try:
        subprocess.run([sys.executable, "-m", "erbench.cli", "evaluate", *common, "-c", "corruption.*",
                        "--out", str(tmp / "warm")], env=base, check=True, capture_output=True)
        figures: dict[str, list[dict]] = {m: [] for m in modes}
        for r in range(args.repeat):
            for mode, (env, extra) in modes.items():
                out = tmp / f"{mode.replace(' ', '_').replace(',', '')}_{r}"
                cmd = [sys.executable, "-m", "erbench.cli", "evaluate", *common, *extra, "--out", str(out)]
                figures[mode].append(timed(cmd, env, out.with_suffix(".log")) | {"out": out})
                print(f"{mode:26s} run {r}: {figures[mode][-1]['wall']:7.0f} s wall", flush=True)
        ref = figures["before, 1 thread"][0]
        print(f"\n{sid}, {'quick' if args.quick else 'full'} battery; load average {os.getloadavg()[0]:.1f}")
        print(f"{'mode':26s} {'wall s':>8s} {'CPU s':>8s} {'peak GB':>8s} {'CPU vs before 1t':>17s} "
              f"{'wall vs before 1t':>18s}")
        for mode, runs in figures.items():
            wall = sorted(x["wall"] for x in runs)[len(runs) // 2]
            cpu = sorted(x["cpu"] for x in runs)[len(runs) // 2]
            print(f"{mode:26s} {wall:8.0f} {cpu:8.0f} {max(x['rss_gb'] for x in runs):8.2f} "
                  f"{ref['cpu'] / cpu:16.2f}x {ref['wall'] / wall:17.2f}x")
        old = per_image(ref["out"], sid)
        for mode in ("after, --jobs 1", "after, --jobs 2"):
            new = per_image(figures[mode][0]["out"], sid)
            same = new.index.equals(old.index)
            differ = new["bits_coded"] != old["bits_coded"]
            l2 = (new.index.get_level_values("variant") == "l2") | (
                (new.index.get_level_values("condition") == "attack.worst_rate")
                & (new.index.get_level_values("norm") == "l2"))
            print(f"{mode}: same rows {same}; per-image coded bits identical on {(~differ[~l2]).mean():.2%} of the "
                  f"{(~l2).sum()} rows outside L2 rate cells; L2 rate cells mean {new['bits_coded'][l2].mean():.1f} "
                  f"vs {old['bits_coded'][l2].mean():.1f} bits ({differ[l2].mean():.1%} of rows differ)")
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before_tree)], check=False)


if __name__ == "__main__":
    main()

"""kill -9 at random points, resume, compare: a resumed run must end with exactly the tables of an
uninterrupted one (no row lost, none duplicated) and leave no staging file behind.

Usage: python benchmarks/kill_resume.py [--trials 20] [--seed 0]

Each trial starts ``erbench evaluate`` (``--jobs`` 1 or 2 at random) on a small cell set, kills it
with SIGKILL after a random delay (the driver alone, or its whole process group), reruns the same
command to completion and compares both tables with the uninterrupted reference run, column for
column (run times and git sha aside).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "submissions" / "reference" / "digits_small_cnn_hp_b1e-4.yaml"
ARGS = ["--quick", "-c", "corruption.snow", "-c", "corruption.glass_blur", "-c", "attack.noise",
        "-c", "attack.rate_pgd", "--limit", "16", "--no-progress"]
VOLATILE = ["created_utc", "git_sha"]


def command(out: Path, jobs: int) -> list[str]:
    return [sys.executable, "-m", "erbench.cli", "evaluate", str(SPEC), "--out", str(out), "--jobs", str(jobs), *ARGS]


def tables(out: Path) -> list[pd.DataFrame]:
    d = out / SPEC.stem
    return [pd.read_parquet(d / name).drop(columns=VOLATILE) for name in ("summary.parquet", "per_image.parquet")]


def trial(reference: list[pd.DataFrame], out: Path, delay: float, jobs: int, group: bool) -> dict:
    proc = subprocess.Popen(command(out, jobs), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    time.sleep(delay)
    finished_first = proc.poll() is not None
    if not finished_first:
        os.killpg(proc.pid, signal.SIGKILL) if group else proc.kill()
    proc.wait()
    parts = out / SPEC.stem / "parts"
    committed = len(list(parts.glob("*.parquet"))) if parts.is_dir() else 0
    time.sleep(1.5)  # orphaned workers notice their parent is gone within a second
    resumed = subprocess.run(command(out, jobs), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if resumed.returncode:
        raise RuntimeError(f"resumed run failed (exit {resumed.returncode}):\n{resumed.stderr[-3000:]}")
    for ref, got in zip(reference, tables(out)):
        pd.testing.assert_frame_equal(ref, got)
    staging = [p for p in (out / SPEC.stem).rglob(".tmp-*")]
    assert not staging, staging
    return {"delay": delay, "jobs": jobs, "group": group, "committed_at_kill": committed,
            "finished_before_kill": finished_first}


def run_trials(trials: int, seed: int, work: Path) -> list[dict]:
    rng = random.Random(seed)
    durations = {}
    for jobs in (1, 2):  # uninterrupted runs: the reference tables, and each --jobs value's duration
        start = time.perf_counter()
        subprocess.run(command(work / f"reference{jobs}", jobs), check=True, stdout=subprocess.DEVNULL)
        durations[jobs] = time.perf_counter() - start
    reference = tables(work / "reference1")
    for ref, other in zip(reference, tables(work / "reference2")):
        pd.testing.assert_frame_equal(ref, other)
    results = []
    for i in range(trials):
        jobs = rng.choice((1, 2))
        delay = rng.uniform(0.5, durations[jobs])  # anywhere from start-up to the final write
        results.append(trial(reference, work / f"t{i}", delay, jobs, rng.random() < 0.5))
        print(f"trial {i:2d}: killed after {results[-1]['delay']:5.1f} s ({'group' if results[-1]['group'] else 'driver'}, "
              f"--jobs {results[-1]['jobs']}), {results[-1]['committed_at_kill']} cells committed"
              + (" (had finished)" if results[-1]["finished_before_kill"] else "") + " -> resumed, identical tables",
              flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory() as tmp:
        results = run_trials(args.trials, args.seed, Path(tmp))
    print(f"{len(results)} trials: every resumed run equals the uninterrupted one, no staging files left")


if __name__ == "__main__":
    main()

"""Time `erbench leaderboard build` on N synthetic submissions with the full battery.

    python benchmarks/leaderboard_build.py [--n 1000] [--images 32] [--work DIR]

Writes the synthetic results of the default protocol's full battery once into WORK (reused when
present; delete WORK after changing the protocol), then builds the site into WORK/site and prints
the build time (wall and CPU seconds: the machine may be shared) and the size of the index page.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from erbench.leaderboard.site import build
from erbench.leaderboard.synthetic import synthetic_submission
from erbench.protocol import DEFAULT_PROTOCOL


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="synthetic submissions")
    parser.add_argument("--images", type=int, default=32, help="test images per cell")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "erbench_leaderboard_bench")
    args = parser.parse_args()

    results = args.work / f"results_{DEFAULT_PROTOCOL}_{args.n}x{args.images}"
    ids = [f"synthetic_{i:05d}" for i in range(args.n)]
    start = time.perf_counter()
    for i, sid in enumerate(ids):
        if not (results / sid / "per_image.parquet").exists():
            synthetic_submission(results, sid, n_images=args.images, seed=i, protocol=DEFAULT_PROTOCOL)
    print(f"results: {results} ({args.n} submissions, {time.perf_counter() - start:.1f} s to prepare)")

    start, cpu = time.perf_counter(), time.process_time()
    entries = build(results, args.work / "site")
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    index = args.work / "site" / "index.html"
    print(f"build: {seconds:.1f} s wall, {cpu:.1f} s CPU for {len(entries)} submissions")
    print(f"index.html: {index.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()

"""Are per-image rows bit-identical across batch sizes and torch thread counts (one machine)?

Cells: runs ``erbench evaluate`` once per setting (batch size x threads, in its own process and
output directory; batch size and threads are part of each cell's key, so nothing is shared) and
prints, per cell, the share of per-image rows identical to the reference setting's (the first) in
every compared column, then the number of differing rows per column::

    python benchmarks/reproducibility.py                              # this tree
    python benchmarks/reproducibility.py --pythonpath OTHER/benchmark   # e.g. an export of an older commit

``--settings 64x1,7x2,1x2:16`` means batch 64 with 1 thread (the reference), batch 7 with 2
threads, and batch 1 with 2 threads on the first 16 images only (rows are compared on the images
both runs have; a small batch is slow once attacks run in fixed blocks of 64 rows).

``--diagnose``: where the drift comes from. For each model, the number of images (of 64) whose
latent, surrogate rate, input gradients (noise and straight-through rate, cross-entropy) and
estimated / coded bits differ from batch 64 with 1 thread when computed in batches of 7 or 1, or
with 2 threads; directly ("plain") and through ``erbench.models.blocks.rowwise`` ("blocks").

``--timing``: seconds (best of ``--repeat``, 1 thread) to generate a few quick attack cells on
``--limit`` images at several batch sizes, with the attacks' blocks and without them (``rowwise``
replaced by a plain call: the attacks as they were before blocks).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPECS = ("submissions/reference/digits_small_cnn_fp_b1e-3.yaml", "submissions/reference/digits_small_cnn_hp_b1e-4.yaml")
CONDITIONS = ("attack.rate_pgd", "attack.ce_pgd", "attack.noise", "attack.stealth_rate", "corruption.gaussian_noise")
KEY = ["condition", "severity", "norm", "eps", "variant", "steps", "seed", "image_index"]
COMPARED = ["pred", "bits_coded", "bits_coded_hyper", "bits_estimated", "bits_estimated_hyper", "decode_ok",
            "perturbation_linf", "perturbation_l2"]


def parse_settings(text: str) -> list[tuple[int, int, int | None]]:
    out = []
    for item in text.split(","):
        bt, _, limit = item.partition(":")
        batch, threads = bt.split("x")
        out.append((int(batch), int(threads), int(limit) if limit else None))
    return out


def evaluate(spec: str, out: Path, batch: int, threads: int, limit: int, protocol: str, conditions,
             pythonpath: str | None, cache_dir: Path) -> float:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([pythonpath, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    cmd = [sys.executable, "-m", "erbench.cli", "evaluate", spec, "--out", str(out), "--protocol", protocol,
           "--batch-size", str(batch), "--threads", str(threads), "--limit", str(limit), "--no-progress",
           "--cache-dir", str(cache_dir)]
    for c in conditions:
        cmd += ["-c", c]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def per_image(result_dir: Path):
    import pandas as pd  # noqa: F401  (pyarrow -> pandas)
    import pyarrow.parquet as pq

    (sub,) = [p for p in result_dir.iterdir() if p.is_dir()]
    table = pq.read_table(sub / "per_image.parquet").to_pandas()
    return table[table["kind"] != "aggregate"].set_index(KEY).sort_index()


def label(row) -> str:
    parts = [row["condition"]]
    if isinstance(row["variant"], str):
        parts.append(row["variant"])
    if isinstance(row["norm"], str):
        eps = f"{row['eps'] * 255:g}/255" if row["norm"] == "linf" else f"{row['eps']:g}"
        parts.append(f"{row['norm']} {eps}")
    if row["severity"] == row["severity"] and row["severity"] is not None:  # not NaN
        parts.append(f"s{int(row['severity'])}")
    return " ".join(parts)


def compare(ref, other):
    """Per common row: whether each compared column is identical (NaN equal to NaN), and the cell."""
    import pandas as pd

    common = ref.index.intersection(other.index)
    a, b = ref.loc[common, COMPARED], other.loc[common, COMPARED]
    same = pd.DataFrame((a.to_numpy() == b.to_numpy()) | (a.isna().to_numpy() & b.isna().to_numpy()),
                        index=common, columns=COMPARED)
    same["all"] = same[COMPARED].all(axis=1)
    same["coded"] = same[[c for c in COMPARED if not c.startswith("bits_estimated")]].all(axis=1)
    keys = common.to_frame(index=False)
    same["cell"] = [label(r) for _, r in keys.iterrows()]
    same["attack"] = keys["condition"].str.startswith("attack.").to_numpy()
    return same


def run_cells(args) -> None:
    settings = parse_settings(args.settings)
    work = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="erbench-repro-"))
    cache = work / "cache"
    for spec in args.spec:
        tables, seconds = [], []
        for batch, threads, limit in settings:
            out = work / Path(spec).stem / f"b{batch}_t{threads}_n{limit or args.limit}"
            seconds.append(evaluate(spec, out, batch, threads, limit or args.limit, args.protocol, args.conditions,
                                    args.pythonpath, cache))
            tables.append(per_image(out))
        names = [f"b{b} t{t}" + (f" n{n}" if n else "") for b, t, n in settings]
        print(f"\n## {Path(spec).stem}  ({args.protocol}, first {args.limit} images; reference {names[0]})")
        print("wall time (a rerun reuses committed cells): "
              + ", ".join(f"{n} {s:.0f} s" for n, s in zip(names, seconds)))
        frames = [compare(tables[0], t) for t in tables[1:]]
        print("\nshare of rows identical to the reference: in every column / in every column but bits_estimated*")
        print(f"{'cell':34s}" + "".join(f" {n:>17s}" for n in names[1:]))
        cells = sorted(set(frames[0]["cell"]))
        groups = [f.groupby("cell") for f in frames]
        for cell in cells:
            print(f"{cell:34s}" + "".join(
                f" {g.get_group(cell)['all'].mean():8.1%} {g.get_group(cell)['coded'].mean():8.1%}"
                if cell in g.groups else f" {'-':>17s}" for g in groups))
        for name, pick in (("every row", lambda f: f), ("attack rows", lambda f: f[f["attack"]])):
            print(f"{name:34s}"
                  + "".join(f" {pick(f)['all'].mean():8.1%} {pick(f)['coded'].mean():8.1%}" for f in frames))
        print("\nrows that differ, per column:")
        for name, f in zip(names[1:], frames):
            print(f"  {name}: " + ", ".join(f"{c} {int((~f[c]).sum())}" for c in COMPARED) + f" (of {len(f)} rows)")
    print(f"\nresults kept in {work}" if args.out else "")


# --- where the drift comes from ------------------------------------------------------------------

def diagnose(args) -> None:
    import torch

    from erbench.codec import measure_batch, to_tensor
    from erbench.conditions.attacks.surrogate import _rate, cross_entropy, rate
    from erbench.data.datasets import load_dataset
    from erbench.models.blocks import rowwise
    from erbench.models.loader import load_model
    from erbench.spec import load_submission

    def quantities(model, x, labels, seeds, blocked: bool) -> dict[str, torch.Tensor]:
        gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
        x = x.clone().requires_grad_(True)
        out = {}
        with torch.no_grad():
            out["latent y"] = model.encode(x)
        for quant in ("noise", "ste"):
            v = rate(model, x, quant, gens, 2) if blocked else _rate(model, x, quant, gens, 2, None)
            out[f"rate {quant}"] = v.detach()
            out[f"grad {quant}"] = torch.autograd.grad(v.sum(), x)[0]
            gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
        if blocked:
            ce = cross_entropy(model, x, labels)
        else:
            ce = torch.nn.functional.cross_entropy(model(x, "ste", "ste").logits, labels, reduction="none")
        out["grad ce"] = torch.autograd.grad(ce.sum(), x)[0]
        m = rowwise(lambda xb: measure_batch(model, xb), x.detach()) if blocked else measure_batch(model, x.detach())
        out["bits_estimated"] = torch.as_tensor(m["bits_estimated"])
        out["bits_coded"] = torch.as_tensor(m["bits_coded"])
        return out

    def chunked(model, x, labels, batch, blocked):
        parts = [quantities(model, x[lo : lo + batch], labels[lo : lo + batch], range(lo, min(lo + batch, len(x))),
                            blocked) for lo in range(0, len(x), batch)]
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}

    for spec in args.spec:
        sub = load_submission(ROOT / spec)
        model = load_model(sub, ROOT / spec)
        data = load_dataset(sub.dataset, "test", file=ROOT / spec)
        x0 = to_tensor(data.images[:64], "cpu")
        torch.manual_seed(1)  # a point inside the ball, not the clean image (whose latents round cleanly)
        x = (x0 + 0.03 * torch.randn_like(x0)).clamp(0, 1)
        labels = torch.from_numpy(data.labels[:64])
        print(f"\n## {Path(spec).stem}: images (of 64) differing from batch 64 with 1 thread")
        for blocked in (False, True):
            torch.set_num_threads(1)
            ref = chunked(model, x, labels, 64, blocked)
            runs = {}
            for threads, batch in ((1, 7), (1, 1), (2, 64), (2, 7), (2, 1)):
                torch.set_num_threads(threads)
                runs[f"b{batch} t{threads}"] = chunked(model, x, labels, batch, blocked)
            torch.set_num_threads(1)
            print(f"\n{'plain' if not blocked else 'blocks'}: {'quantity':16s}" + "".join(f"{n:>9s}" for n in runs))
            for k in ref:
                counts = [int((r[k].reshape(64, -1) != ref[k].reshape(64, -1)).any(1).sum()) for r in runs.values()]
                print(f"{'':8s}{k:16s}" + "".join(f"{c:9d}" for c in counts))


def timing(args) -> None:
    import contextlib

    import numpy as np
    import torch

    import erbench.conditions.attacks.grid as grid
    import erbench.conditions.attacks.surrogate as surrogate
    from erbench.conditions import CONDITIONS, Context
    from erbench.data.datasets import load_dataset
    from erbench.models.loader import load_model
    from erbench.protocol import PROTOCOLS
    from erbench.spec import load_submission

    @contextlib.contextmanager
    def plain():
        saved = surrogate.rowwise, grid.rowwise
        surrogate.rowwise = grid.rowwise = lambda fn, *a, **k: fn(*a)
        try:
            yield
        finally:
            surrogate.rowwise, grid.rowwise = saved

    torch.set_num_threads(1)
    wanted = [("attack.rate_pgd", "l2", 4.0), ("attack.rate_pgd", "strong", 8 / 255), ("attack.ce_pgd", None, 8 / 255)]
    cells = [c for c in PROTOCOLS.get(args.protocol).cells if (c.condition, c.variant, c.eps) in wanted]
    for spec in args.spec:
        sub = load_submission(ROOT / spec)
        model = load_model(sub, ROOT / spec)
        data = load_dataset(sub.dataset, "test", file=ROOT / spec)
        print(f"\n## {Path(spec).stem}: seconds for {args.limit} images, best of {args.repeat} (1 thread)")
        print(f"{'cell':30s} {'batch':>5s} {'plain':>8s} {'blocks':>8s} {'cost':>6s}")
        for cell in cells:
            for batch in args.batches:
                ctx = Context(data, np.arange(args.limit), model, batch_size=batch, progress=False)
                times = {}
                for mode, manager in (("plain", plain), ("blocks", contextlib.nullcontext)):
                    best = float("inf")
                    for _ in range(args.repeat):
                        with manager():
                            start = time.perf_counter()
                            CONDITIONS.get(cell.condition).generate(cell, ctx)
                            best = min(best, time.perf_counter() - start)
                    times[mode] = best
                name = " ".join(str(v) for v in (cell.condition, cell.variant, cell.norm) if v) + f" {cell.eps:.4g}"
                print(f"{name:30s} {batch:5d} {times['plain']:8.2f} {times['blocks']:8.2f} "
                      f"{times['blocks'] / times['plain']:5.2f}x")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spec", nargs="+", default=list(SPECS))
    ap.add_argument("--settings", default="64x1,7x2,1x2:16",
                    help="BATCHxTHREADS[:LIMIT],...; the first is the reference")
    ap.add_argument("--limit", type=int, default=64, help="images per run (unless a setting says otherwise)")
    ap.add_argument("--protocol", default="erbench-v1-quick")
    ap.add_argument("-c", "--conditions", nargs="+", default=list(CONDITIONS))
    ap.add_argument("--pythonpath", help="run erbench from this source directory (e.g. an older commit's benchmark/)")
    ap.add_argument("--out", help="keep the results here (default: a temporary directory)")
    ap.add_argument("--diagnose", action="store_true", help="per-quantity drift of the model (in this process)")
    ap.add_argument("--timing", action="store_true", help="speed of the attacks with and without blocks")
    ap.add_argument("--batches", type=int, nargs="+", default=[64, 7], help="batch sizes of --timing")
    ap.add_argument("--repeat", type=int, default=3, help="repetitions of --timing (the best counts)")
    args = ap.parse_args(argv)
    if args.diagnose:
        diagnose(args)
    elif args.timing:
        timing(args)
    else:
        run_cells(args)


if __name__ == "__main__":
    main()

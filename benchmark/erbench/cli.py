"""The ``erbench`` command line. Every command is testable in-process via ``main(argv)``."""

from __future__ import annotations

import sys
import time
import traceback
import warnings
from pathlib import Path

import click

from erbench.errors import ErbenchError, did_you_mean
from erbench.protocol import DEFAULT_PROTOCOL

warnings.filterwarnings("ignore", category=FutureWarning, module="torch.jit")


class _Group(click.Group):
    """Turns ErbenchError into one 'error: file: field: message' line and exit code 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ErbenchError as exc:
            click.echo(f"error: {exc.line()}", err=True)
            ctx.exit(2)


@click.group(cls=_Group)
@click.version_option(package_name="erbench")
def cli():
    """erbench: resilience of entropy models in split DNNs, measured in real coded bits."""


@cli.command()
@click.argument("submission", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("results"), show_default=True,
              help="results directory: OUT/<id>/parts/ (one file per committed cell), then summary.parquet "
                   "and per_image.parquet once every cell is committed")
@click.option("--protocol", default=DEFAULT_PROTOCOL, show_default=True, help="protocol (see `erbench list`)")
@click.option("--quick", is_flag=True, help="use the quick protocol (<protocol>-quick): smoke tests, labelled as such")
@click.option("--conditions", "-c", multiple=True,
              help="glob over condition ids, e.g. 'corruption.*' (repeatable); clean always runs")
@click.option("--device", default="cpu", show_default=True, help="torch device, e.g. cpu or cuda")
@click.option("--batch-size", default=64, show_default=True, type=int)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="only the first N test images (quick look)")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=Path.home() / ".cache" / "erbench",
              show_default=True, help="cache of corrupted images, shared by all models")
@click.option("--data-root", type=click.Path(path_type=Path), default=None,
              help="a real track's local copy (cifar10, imagenet-val-5k; default: $ERBENCH_DATA_<TRACK>, e.g. "
                   "ERBENCH_DATA_CIFAR10); not part of any result key")
@click.option("--corruption-source", type=click.Choice(["imagecorruptions", "prerendered"]),
              default="imagecorruptions", show_default=True,
              help="corruption cells rendered by erbench, or read from the track's pre-rendered set (CIFAR-10-C, "
                   "ImageNet-C): separate cells, labelled by the corruption_source column")
@click.option("--corruption-root", type=click.Path(path_type=Path), default=None,
              help="the directory holding CIFAR-10-C/ or ImageNet-C/ (default: $ERBENCH_DATA_CIFAR_10_C, "
                   "$ERBENCH_DATA_IMAGENET_C); never downloaded")
@click.option("--jobs", "-j", default=1, show_default=True, type=click.IntRange(min=1),
              help="cells computed at once, in worker processes (results do not depend on it)")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(min=1),
              help="torch threads per cell (one is fastest for small models on a busy machine)")
@click.option("--executor", default=None, help="local | process | ray  [default: local, process if --jobs > 1]")
@click.option("--ray-address", default=None, help="address of a running Ray cluster (--executor ray)")
@click.option("--shard", default=None, metavar="I/N",
              help="compute only shard I of N (1-based) of the cells; combine shard outputs with `erbench merge`")
@click.option("--no-progress", is_flag=True, help="no progress bar")
def evaluate(submission, out_dir, protocol, quick, conditions, device, batch_size, limit, cache_dir, jobs, threads,
             executor, ray_address, shard, no_progress, data_root, corruption_source, corruption_root):
    """Evaluate SUBMISSION (a YAML file) under the protocol and write Parquet results.

    Each cell is committed as soon as it is computed: rerunning the same command after an
    interruption computes only the cells still missing.
    """
    click.echo(f"erbench: evaluating {submission} (loading torch)")
    from erbench.engine.executors import Resources
    from erbench.engine.plan import parse_shard
    from erbench.report import summary_table
    from erbench.runner import evaluate as run

    _check_device(device)
    if executor is None:
        executor = "process" if jobs > 1 else "local"
    elif executor == "local" and jobs > 1:
        raise ErbenchError("the local executor runs one cell at a time; use --executor process", field="--jobs")
    start = time.time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run(submission, out_dir, protocol=f"{protocol}-quick" if quick else protocol,
                     conditions=tuple(conditions), device=device, batch_size=batch_size, limit=limit,
                     cache_dir=cache_dir, data_root=data_root, corruption_source=corruption_source,
                     corruption_root=corruption_root, executor=executor, shard=parse_shard(shard),
                     resources=Resources(jobs=jobs, threads=threads, address=ray_address),
                     progress=not no_progress)
    seconds = time.time() - start
    total = len(result.plan.tasks)
    if result.summary is None:
        click.echo(f"{result.computed} cells computed in {seconds:.0f} s; {result.path / 'parts'} holds shard "
                   f"{shard} of the {total}-cell plan. Combine the shards with `erbench merge`.")
        return
    click.echo(summary_table(result.summary))
    for w in caught:
        if "DEGENERATE" in str(w.message):
            click.secho(f"WARNING: {w.message}", fg="red", bold=True, err=True)
    click.echo(f"\n{len(result.summary)} cells ({result.computed} of {total} computed now), "
               f"{len(result.per_image)} image rows in {seconds:.0f} s")
    click.echo(f"results: {result.path / 'summary.parquet'}\n         {result.path / 'per_image.parquet'}")


@cli.command()
@click.argument("dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("results"), show_default=True,
              help="results directory the merged OUT/<id>/ tables (and parts) are written to")
def merge(dirs, out_dir):
    """Combine shard outputs (`evaluate --shard I/N --out DIR`) into the tables of an unsharded run.

    Refuses shards of different plans (protocol, submission, weights, dataset, images, device,
    condition filter) or of different erbench / torch / compressai versions, naming the conflict.
    """
    from erbench.engine.merge import merge as combine

    for sid, store in combine(list(dirs), out_dir).items():
        click.echo(f"{sid}: {store.path / 'summary.parquet'}")


def _check_device(device: str) -> None:
    import torch

    try:
        torch.empty(1, device=device)
    except (RuntimeError, AssertionError) as exc:
        raise ErbenchError(f"device '{device}' is not usable: {str(exc).splitlines()[0]}", field="--device") from None


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.pass_context
def validate(ctx, files):
    """Validate submission FILES (or every *.yaml under directories) in seconds, without torch.

    Checks the schema, the file name (= id) and the id's uniqueness under submissions/, the
    registries (architecture, its typed kwargs, dataset), and the weights file: inside the
    submission root, a regular .safetensors file of at most 1 GiB, its sha256, float32 tensors.
    Prints every problem (one line each; exit code 2) or 'ok FILE'. Shapes and values are checked
    by `erbench check`, which builds the model.
    """
    from erbench.spec import problems, yaml_files

    failed = False
    for path in yaml_files(files):
        found = problems(path)
        for problem in found:
            click.echo(f"error: {problem.line()}", err=True)
        if not found:
            click.echo(f"ok {path}")
        failed = failed or bool(found)
    if failed:
        ctx.exit(2)


@cli.command()
@click.option("--results", "results_schema", is_flag=True, help="print the results schema (Markdown) instead")
def schema(results_schema):
    """Print the submission JSON Schema (for editors), or the results schema."""
    from erbench.results import schema_markdown
    from erbench.spec import json_schema

    click.echo(schema_markdown() if results_schema else json_schema())


@cli.command("list")
def list_registered():
    """Show registered architectures, datasets, conditions and protocols."""
    from erbench.conditions.catalog import CONDITIONS
    from erbench.data.datasets import DATASETS
    from erbench.models.architectures import ARCHITECTURES
    from erbench.protocol import PROTOCOLS

    def section(title: str, rows: list[tuple[str, ...]]) -> None:  # columns as wide as their longest value
        click.echo(f"{title}:")
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)] if rows else []
        for r in rows:
            click.echo("  " + "  ".join(v.ljust(w) for v, w in zip(r, widths)) + ("  " if widths else "") + r[-1])

    section("architectures", [(name, arch.family, arch.summary) for name, arch in ARCHITECTURES.items()])
    section("datasets", [(name,) for name in DATASETS])
    section("conditions", [(name, cond.kind, cond.summary) for name, cond in CONDITIONS.metas()])
    # a run's results hold one row per cell plus one attack.worst_rate row per (norm, eps) of the rate attacks
    section("protocols (cells + worst-case rows = result rows)",
            [(name, f"{len(p.cells)} + {len(p.worst_case())} = {len(p.cells) + len(p.worst_case())}", p.description)
             for name, p in PROTOCOLS.items()])


@cli.command()
@click.argument("submissions", nargs=-1, type=click.Path(path_type=Path))
@click.option("--limit", default=16, show_default=True, type=click.IntRange(min=1), help="test images per condition")
@click.option("--data-root", type=click.Path(path_type=Path), default=None,
              help="a real track's local copy (cifar10, imagenet-val-5k; default: $ERBENCH_DATA_<TRACK>, e.g. "
                   "ERBENCH_DATA_CIFAR10); not part of any result key")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write a Markdown report: per submission ok or the error, clean accuracy, coded bits, degenerate")
@click.option("--changed-files", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="NUL-separated paths (`git diff -z --name-only`) the report lists as changed outside submissions/")
@click.pass_context
def check(ctx, submissions, limit, report, changed_files, data_root):
    """Seconds-long pre-submission check: validate, load and run SUBMISSIONS on a few images.

    Runs clean plus three corruptions through the real coder and verifies lossless decoding and
    finite outputs; writes nothing but the --report. Checks every submission; exit code 2 if any
    fails. With --report, SUBMISSIONS may be empty (the report then lists the changed files only).
    """
    from erbench.report import CheckRow, check_report
    from erbench.runner import evaluate as run

    if report is None and not submissions:
        raise ErbenchError("name at least one SUBMISSION (or give --report)", field="SUBMISSIONS")
    if report is None and changed_files is not None:
        raise ErbenchError("--changed-files are listed in the report: give --report too", field="--changed-files")
    rows = []
    for path in submissions:
        try:
            result = run(path, None, conditions=("corruption.snow", "corruption.gaussian_noise", "corruption.contrast"),
                         limit=limit, data_root=data_root, progress=False)
            if not result.summary["decode_ok_all"].all():
                raise ErbenchError("decoded latents differ from the rounded latents (lossy coding)", file=path)
        except ErbenchError as exc:
            rows.append(CheckRow(str(path), error=exc.line()))
        except Exception as exc:  # a submission's own architecture code may raise anything: report it, go on
            traceback.print_exc()
            rows.append(CheckRow(str(path), error=f"{type(exc).__name__}: {exc}"))
        else:
            clean = result.summary.iloc[0]
            rows.append(CheckRow(str(path), clean["accuracy"], clean["bits_coded_mean"],
                                 clean["degenerate_reason"] if clean["degenerate"] else None))
        r = rows[-1]
        if r.error is not None:
            click.echo(f"error: {r.error}", err=True)
            continue
        flag = f"  DEGENERATE: {r.degenerate}" if r.degenerate else ""
        click.echo(f"ok  {path}: clean accuracy {r.accuracy:.3f}, {r.bits_coded:.0f} coded bits/image "
                   f"on {limit} images{flag}")
    if report is not None:
        changed = [p for p in changed_files.read_bytes().decode().split("\0") if p] if changed_files else None
        report.write_text(check_report(rows, limit, changed))
        click.echo(f"report: {report}")
    if any(r.error is not None for r in rows):
        ctx.exit(2)


@cli.group()
def zoo():
    """The reference zoo (submissions/reference/)."""


@zoo.command("train")
@click.argument("ids", nargs=-1)
@click.option("--all", "train_all", is_flag=True, help="train every zoo entry")
@click.option("--jobs", default=1, show_default=True, type=click.IntRange(min=1),
              help="entries trained in parallel (one CPU thread each; results do not depend on it)")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="where to write <id>.yaml and <id>.safetensors (default: submissions/reference)")
def zoo_train(ids, train_all, jobs, out_dir):
    """Train reference entries deterministically on the CPU and write their weights and YAML."""
    from erbench.zoo import REFERENCE_DIR, ZOO, train_entries

    if not ids and not train_all:
        raise ErbenchError("name zoo entries or pass --all (see `erbench zoo list`)", field="IDS")
    names = [ZOO.get(i, field="IDS") and i for i in ids] if ids else list(ZOO)
    start = time.time()
    for name, seconds, path in train_entries(names, out_dir or REFERENCE_DIR, jobs):
        click.echo(f"{name}: {seconds:.0f} s -> {path}")
    click.echo(f"{len(names)} entries in {time.time() - start:.0f} s")


@zoo.command("list")
def zoo_list():
    """List the zoo entries and their recipes."""
    from erbench.zoo import ZOO

    for name, entry in ZOO.items():
        click.echo(f"{name:36s} {entry.architecture:24s} beta={entry.recipe.beta:g} epochs={entry.recipe.epochs}")


# --- real data tracks -----------------------------------------------------------------------------


@cli.group()
def data():
    """Real data tracks: a local copy of the data, verified against data_manifests/ before use."""


_ROOT = click.option("--root", "--data-root", "root", type=click.Path(path_type=Path), default=None,
                     help="the track's local copy (default: $ERBENCH_DATA_<TRACK>, e.g. ERBENCH_DATA_IMAGENET_VAL_5K)")


@data.command("lock")
@click.argument("track")
@_ROOT
def data_lock(track, root):
    """Pin TRACK's local copy: write data_manifests/TRACK.lock.json (sha256 of every selected file and
    of the decoded arrays). Run once by a maintainer with the data; commit the lock. Every later
    load verifies against it."""
    from erbench.data.datasets import DATASETS
    from erbench.data.local import write_lock
    from erbench.data.manifest import load_manifest

    entry = DATASETS.get(track, field="TRACK")
    manifest = load_manifest(track)
    if manifest.local is None:
        raise ErbenchError(f"{track} is embedded (built from data installed with erbench): nothing to lock",
                           field="TRACK")
    start = time.time()
    result, path = write_lock(manifest, entry, root)
    click.echo(f"{track}: {len(result.files)} files locked, decoded arrays sha256 {result.arrays_sha256} "
               f"({result.decoder}), {time.time() - start:.0f} s -> {path}")


@data.command("verify")
@click.argument("track")
@_ROOT
def data_verify(track, root):
    """Verify TRACK's data as evaluation does (files, then the decoded arrays) and print its sha256."""
    from erbench.data.datasets import load_dataset

    start = time.time()
    dataset = load_dataset(track, "test", root=root)
    click.echo(f"ok  {track}: {len(dataset)} test images, arrays sha256 {dataset.sha256}, "
               f"{time.time() - start:.1f} s")


# --- leaderboard ----------------------------------------------------------------------------------


@cli.group()
def leaderboard():
    """The static leaderboard site."""


@leaderboard.command("build")
@click.option("--results", "results_dir", type=click.Path(path_type=Path), default=Path("leaderboard/results"),
              show_default=True, help="results directory holding <id>/summary.parquet and per_image.parquet")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("site"), show_default=True,
              help="output directory; replaced as a whole (refused unless empty or an earlier build)")
@click.option("--submissions", "submissions_dir", type=click.Path(path_type=Path), default=Path("submissions"),
              show_default=True, help="where <id>.yaml metadata (authors, paper, license) is read, if present")
@click.option("--date", default=None, metavar="YYYY-MM-DD",
              help="build date to print [default: $SOURCE_DATE_EPOCH, else the newest result's date]")
@click.option("--repo-url", default=None, metavar="URL",
              help="repository linked from every page [default: $GITHUB_SERVER_URL/$GITHUB_REPOSITORY when set]")
@click.option("--guide", type=click.Path(path_type=Path), default=Path("CONTRIBUTING.md"), show_default=True,
              help="submission guide rendered on the site's Submit page (skipped if absent)")
def leaderboard_build(results_dir, out_dir, submissions_dir, date, repo_url, guide):
    """Build the static site from results: the same input gives byte-identical files."""
    from erbench.leaderboard.site import build

    start = time.time()
    entries = build(results_dir, out_dir, submissions_dir, date=date, repo_url=repo_url, guide=guide)
    complete = sum(e.row["complete"] for e in entries)
    click.echo(f"{len(entries)} submissions ({complete} complete) -> {out_dir / 'index.html'} "
               f"in {time.time() - start:.1f} s")


@leaderboard.command("table")
@click.option("--results", "results_dir", type=click.Path(path_type=Path), default=Path("leaderboard/results"),
              show_default=True, help="results directory holding <id>/summary.parquet and per_image.parquet")
@click.option("--attacks", "attack_ids", multiple=True, metavar="ID",
              help="instead: every attack row of these entries (overhead and accuracy delta per variant and budget)")
@click.option("--corruptions", "by_corruption", is_flag=True,
              help="instead: per corruption, the mean over severities of overhead and accuracy, every entry")
def leaderboard_table(results_dir, attack_ids, by_corruption):
    """Print the leaderboard as Markdown tables (headline, worst case per budget), CIs included."""
    from erbench.leaderboard.aggregate import load
    from erbench.leaderboard.table import attacks, corruptions, markdown

    if by_corruption and attack_ids:
        raise ErbenchError("give either --corruptions or --attacks, not both", field="--corruptions")
    entries = load(results_dir)
    if by_corruption:
        click.echo(corruptions(entries), nl=False)
        return
    if not attack_ids:
        click.echo(markdown(entries), nl=False)
        return
    by_id = {e.id: e for e in entries}
    for sid in attack_ids:
        if sid not in by_id:
            raise ErbenchError(f"no results for '{sid}'{did_you_mean(sid, by_id)}", file=results_dir, field="--attacks")
    click.echo("\n".join(attacks(by_id[sid]) for sid in attack_ids), nl=False)


# --------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (for tests: ``main([...])``)."""
    try:
        code = cli.main(args=argv, prog_name="erbench", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())

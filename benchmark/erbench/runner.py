"""Evaluate one submission under a protocol: plan its cells, hand them to an executor, commit each
finished cell to the store, and derive the two results tables once every planned cell is committed.

Every user mistake raises ErbenchError before any cell runs.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from erbench.cells import RENDERED
from erbench.data.manifest import manifest_sha256
from erbench.engine import tables, worker
from erbench.engine.executors import EXECUTORS, Resources
from erbench.engine.plan import Plan, make_plan
from erbench.engine.progress import CostBar
from erbench.engine.store import MemoryStore, Store
from erbench.engine.worker import Job, Settings
from erbench.errors import ErbenchError
from erbench.protocol import DEFAULT_PROTOCOL, PROTOCOLS
from erbench.results import provenance
from erbench.spec import Submission, load_submission


@dataclass
class Evaluation:
    plan: Plan
    computed: int  # cells computed by this run (the others were committed before)
    summary: pd.DataFrame | None = None  # None until every planned cell is committed (e.g. one shard)
    per_image: pd.DataFrame | None = None
    path: Path | None = None


def _spec_hash(sub: Submission) -> str:
    """What in the submission decides the model: architecture, kwargs, preprocessing, entropy model, defense."""
    spec = sub.model_dump(mode="json", include={"model", "preprocessing", "entropy_model", "defense", "weights"})
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def _columns(sub: Submission, prov: dict) -> dict:
    return {"submission_id": sub.id, "dataset": sub.dataset, "architecture": sub.model.architecture,
            "entropy_model": sub.entropy_model, "beta": sub.beta,
            "defense": sub.defense.label() if sub.defense is not None else "none", **prov}


SOURCES = (RENDERED, "prerendered")  # --corruption-source: erbench's rendering, or the track's -C set


def _prerendered(source: str, dataset_id: str, root: str | Path | None):
    """The track's pre-rendered corruption set and its root for ``source`` 'prerendered' (None, None for
    erbench's rendering)."""
    if source not in SOURCES:
        raise ErbenchError(f"unknown corruption source '{source[:40]}' (expected one of {', '.join(SOURCES)})",
                           field="--corruption-source")
    if source == RENDERED:
        return None, None
    from erbench.conditions.prerendered import corruption_set, set_root

    cset = corruption_set(dataset_id)
    return cset, set_root(cset, root)


def evaluate(
    spec_path: str | Path,
    out_dir: str | Path | None = "results",
    *,
    protocol: str = DEFAULT_PROTOCOL,
    conditions: tuple[str, ...] = (),
    device: str = "cpu",
    batch_size: int = 64,
    limit: int | None = None,
    cache_dir: str | Path | None = None,
    data_root: str | Path | None = None,
    corruption_source: str = RENDERED,
    corruption_root: str | Path | None = None,
    progress: bool = True,
    executor: str = "local",
    resources: Resources = Resources(),
    shard: tuple[int, int] | None = None,
) -> Evaluation:
    """Run the protocol's cells of a submission that are not committed yet; write the tables when
    the plan is complete (``out_dir`` None: nothing is written, parts stay in memory). ``data_root``:
    a real track's local data (default: its ``ERBENCH_DATA_<ID>`` variable, data/local.py).
    ``corruption_source`` 'prerendered': the corruption cells read the track's CIFAR-10-C / ImageNet-C
    files under ``corruption_root`` (conditions/prerendered.py), as cells of their own."""
    spec_path = Path(spec_path)
    sub = load_submission(spec_path)
    store = Store(Path(out_dir), sub.id) if out_dir is not None else MemoryStore()
    store.preflight()  # a bad --out fails now, not after the run
    proto = PROTOCOLS.get(protocol, field="--protocol")
    cells = proto.select(conditions, sub.defense is not None)
    if conditions and len(cells) == 1:
        raise ErbenchError(f"condition filter {' '.join(conditions)!r} matches no condition of {proto.name}",
                           field="--conditions")
    if batch_size < 1:
        raise ErbenchError("must be at least 1", field="--batch-size")
    make_executor = EXECUTORS.get(executor, field="--executor")
    cset, corruption_root = _prerendered(corruption_source, sub.dataset, corruption_root)
    if cset is not None:  # its cells are others than the rendered ones: their keys differ
        cells = tuple(replace(c, corruption_source=cset.name) if c.condition.startswith("corruption.") else c
                      for c in cells)
    settings = Settings(device, batch_size, str(cache_dir) if cache_dir else None, resources.threads,
                        str(data_root) if data_root else None, str(corruption_root) if corruption_root else None)
    # the driver loads the model first: a bad submission fails here, before anything is written
    worker.set_threads(resources.threads)
    worker.forget()
    ctx = worker.context(str(spec_path), 0, settings)
    n = min(x for x in (len(ctx.dataset), limit, proto.max_images) if x is not None)
    if cset is not None:
        from erbench.conditions.prerendered import check

        check(ctx.dataset, cset, corruption_root, cells, n)
    prov = provenance(protocol=proto.name, quick=proto.quick, weights_sha256=sub.weights.sha256,
                      manifest_sha256=manifest_sha256(sub.dataset), dataset_sha256=ctx.dataset.sha256, device=device)
    columns = _columns(sub, prov)
    identity = {"protocol": proto.name, "submission_id": sub.id, "spec_sha256": _spec_hash(sub),
                "defense": columns["defense"], "dataset": sub.dataset, "dataset_sha256": ctx.dataset.sha256,
                # batch size and threads are not in it: no row depends on them (tests/test_reproducibility.py)
                "images": [0, n], "device": device}
    plan = make_plan(identity, cells)
    wanted = plan.shard(*shard) if shard else plan.tasks
    with store.locked():
        committed = store.committed()
        jobs = [Job(str(spec_path), t, n, settings, columns) for t in plan.longest_first(wanted)
                if t.key not in committed]
        tick = CostBar(plan, jobs) if progress else (lambda job: None)

        planned = False

        def done(job: Job, frame: pd.DataFrame) -> None:
            nonlocal planned
            if not planned:  # with the first part: from then on a shard's output names its plan
                store.write_plan(plan)
                planned = True
            store.commit(job.task, frame)
            committed.add(job.task.key)
            tick(job)

        make_executor(replace(resources, gpus=1 if device.startswith("cuda") else 0)).run(jobs, done)
        store.write_plan(plan)
        result = Evaluation(plan, len(jobs), path=store.path)
        if committed >= {t.key for t in plan.tasks}:
            result.summary, result.per_image = tables.derive(plan, store.read)
            store.write_tables(result.summary, result.per_image)
    if result.summary is not None and result.summary["degenerate"].iloc[0]:
        warnings.warn(f"{sub.id} is DEGENERATE ({result.summary['degenerate_reason'].iloc[0]}): "
                      "it will look immune to entropy attacks; do not read its overheads as robustness")
    return result

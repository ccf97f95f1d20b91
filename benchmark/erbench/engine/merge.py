"""Merge: the outputs of shards (``erbench evaluate --shard i/n --out DIR_i``) -> the tables an
unsharded run writes. Shards of one submission must share one plan; their parts must come from
the same erbench, torch and compressai versions. Anything else is refused, naming the conflict.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pandas as pd

from erbench.engine import tables
from erbench.engine.plan import Plan
from erbench.engine.store import PLAN_FILE, Store
from erbench.errors import ErbenchError

SAME_IN_EVERY_PART = ("schema_version", "erbench_version", "torch_version", "compressai_version")


def _shards(dirs: list[Path]) -> dict[str, list[Store]]:
    by_id: dict[str, list[Store]] = {}
    for d in dirs:
        if not d.is_dir():
            raise ErbenchError("not a directory", file=d, field="DIRS")
        found = sorted(p.parent.name for p in d.glob(f"*/{PLAN_FILE}"))
        if not found:
            raise ErbenchError("holds no erbench evaluate output (no <id>/plan.json)", file=d, field="DIRS")
        for sid in found:
            by_id.setdefault(sid, []).append(Store(d, sid))
    return by_id


def _one_plan(stores: list[Store]) -> Plan:
    first, plan = stores[0], stores[0].read_plan()
    for store in stores[1:]:
        other = store.read_plan()
        for field in sorted(set(plan.identity) | set(other.identity)):
            a, b = plan.identity.get(field), other.identity.get(field)
            if a != b:
                raise ErbenchError(f"shards disagree on {field}: {a!r} in {first.path} vs {b!r}", file=store.path,
                                   field="DIRS")
        if [t.key for t in other.tasks] != [t.key for t in plan.tasks]:
            raise ErbenchError(f"shards were planned with different cells (condition filter or protocol) than "
                               f"{first.path}", file=store.path, field="DIRS")
    return plan


def _check_versions(part: pd.DataFrame, seen: dict, where: Path) -> None:
    for column in SAME_IN_EVERY_PART:
        value = part[column].iloc[0]
        if seen.setdefault(column, (value, where))[0] != value:
            raise ErbenchError(f"parts disagree on {column}: {seen[column][0]!r} in {seen[column][1]} vs {value!r}",
                               file=where, field="DIRS")


def merge(dirs: list[Path], out_dir: Path) -> dict[str, Store]:
    """Combine every submission found in ``dirs`` into ``out_dir/<id>``; returns the written stores.
    Every part is read and checked before anything is written."""
    written = {}
    for sid, stores in _shards([Path(d) for d in dirs]).items():
        plan = _one_plan(stores)
        dest = Store(out_dir, sid)
        with ExitStack() as held:
            sources = {key: dest for key in dest.committed()} if dest.parts.is_dir() else {}
            for store in stores:
                if store.path.resolve() != dest.path.resolve():
                    held.enter_context(store.locked())
                    sources.update({key: store for key in store.committed() if key not in sources})
            missing = [t.cell.label() for t in plan.tasks if t.key not in sources]
            if missing:
                raise ErbenchError(f"{len(missing)} of {len(plan.tasks)} cells of {sid} are in none of the shards, "
                                   f"e.g. {missing[0]} (is a shard missing or unfinished?)", field="DIRS")
            seen: dict = {}
            for task in plan.tasks:
                _check_versions(sources[task.key].read(task.key), seen, sources[task.key].path)
            held.enter_context(dest.locked())
            for task in plan.tasks:
                if sources[task.key] is not dest:
                    dest.adopt(sources[task.key].part_file(task.key))
            dest.write_plan(plan)
            dest.write_tables(*tables.derive(plan, dest.read))
        written[sid] = dest
    return written

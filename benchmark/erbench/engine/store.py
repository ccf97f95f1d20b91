"""Store: committed cells of one submission as Parquet parts, the run lock, the derived tables.

Layout of ``OUT/<id>/``::

    parts/<key>.<sha256[:16]>.parquet   one committed cell (its per-image rows); the name carries a
                                        checksum of the file's bytes, checked on every read
    plan.json                           the plan of the last run (merge checks shards against it)
    summary.parquet, per_image.parquet  derived from the parts once every planned cell is committed
    .lock                               held (flock) by the one run writing here

``OUT/<id>`` is a result directory if it holds one of these (or nothing): a path that is anything
else is never written to nor deleted (``Store.preflight`` refuses it before any work).

A part is written under a ``.tmp-`` name and renamed into place, so a cell is either committed
whole or absent: a run killed at any point (``kill -9`` included) leaves only complete parts and
staging files, which the next run holding the lock deletes. A part whose bytes no longer match its
checksum is deleted and its cell recomputed.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from erbench.engine.plan import Plan, Task
from erbench.errors import ErbenchError
from erbench.results import PER_IMAGE_FILE, PER_IMAGE_SCHEMA, SUMMARY_FILE, SUMMARY_SCHEMA, to_table, upgrade

DERIVED_COLUMNS = ("prediction_kept",)  # per-image columns computed from other cells, when tables are derived
PART_SCHEMA = pa.schema([f for f in PER_IMAGE_SCHEMA if f.name not in DERIVED_COLUMNS],
                        metadata=PER_IMAGE_SCHEMA.metadata)
PLAN_FILE, LOCK_FILE, PARTS, STAGING = "plan.json", ".lock", "parts", ".tmp-"
KEY_META, SECONDS_META = b"erbench_cell_key", b"erbench_seconds"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@contextmanager
def _staged(directory: Path, stem: str) -> Iterator[Path]:
    """A staging file in ``directory``, removed unless the caller renamed it into place."""
    tmp = directory / f"{STAGING}{stem}.{os.getpid()}"
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def _durable(path: Path) -> Path:
    with open(path, "rb") as f:
        os.fsync(f.fileno())
    return path


def _is_result_dir(path: Path) -> bool:
    """An empty directory, or one holding what a Store writes (plan.json, parts/, .lock, the tables)."""
    if not path.is_dir():
        return False
    names = {p.name for p in path.iterdir()}
    return not names or bool(names & {PLAN_FILE, LOCK_FILE, PARTS, SUMMARY_FILE, PER_IMAGE_FILE})


class MemoryStore:
    """Parts kept in memory: a run that writes nothing (``erbench check``, tests)."""

    def __init__(self):
        self._parts: dict[str, pd.DataFrame] = {}

    def preflight(self) -> None:
        pass

    @contextmanager
    def locked(self) -> Iterator[None]:
        yield

    def committed(self) -> set[str]:
        return set(self._parts)

    def commit(self, task: Task, frame: pd.DataFrame) -> None:
        self._parts[task.key] = frame

    def read(self, key: str) -> pd.DataFrame:
        return self._parts[key]

    def write_plan(self, plan: Plan) -> None:
        pass

    def write_tables(self, summary: pd.DataFrame, per_image: pd.DataFrame) -> None:
        pass

    path = None


class Store:
    """The results directory ``OUT/<id>`` of one submission."""

    def __init__(self, out_dir: Path, submission_id: str):
        self.path = Path(out_dir) / submission_id
        self.parts = self.path / PARTS

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the directory's lock (released by the OS if this process dies), then remove staging
        files that killed runs left behind. A run that fails before committing anything removes the
        directory it created."""
        created = not self.path.exists()
        self._make_dirs()
        with open(self.path / LOCK_FILE, "a+") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.seek(0)
                holder = lock.read().strip() or "?"
                raise ErbenchError(f"another erbench run (pid {holder}) is writing these results; wait for it "
                                   "or use another --out", file=self.path, field="--out") from None
            lock.seek(0)
            lock.truncate()
            lock.write(str(os.getpid()))
            lock.flush()
            self._remove_staging()
            try:
                yield
            except BaseException:
                if created and not self._part_files():
                    shutil.rmtree(self.path, ignore_errors=True)
                raise

    def preflight(self) -> None:
        """Refuse, before any work, an ``--out`` that cannot hold these results: a file or a path under
        one, a directory this process cannot write to, an ``OUT/<id>`` that is not a result directory."""
        out = self.path.parent
        existing = next(d for d in (out, *out.parents) if os.path.lexists(d))
        if not existing.is_dir():
            where = "is a file" if existing == out else f"is under {existing}, which is not a directory"
            raise ErbenchError(f"{where}: --out must be a directory", file=out, field="--out")
        if os.path.lexists(self.path) and not _is_result_dir(self.path):
            what = "an erbench result directory (plan.json, parts/)" if self.path.is_dir() else "a directory"
            raise ErbenchError(f"exists and is not {what}; it is left untouched: move it or use another --out",
                               file=self.path, field="--out")
        if os.path.lexists(self.parts) and not self.parts.is_dir():
            raise ErbenchError("exists and is not a directory", file=self.parts, field="--out")
        try:
            tempfile.TemporaryFile(dir=self.path if self.path.is_dir() else existing).close()
        except OSError as exc:
            raise ErbenchError(f"cannot write results here: {exc.strerror}", file=out, field="--out") from None

    def _make_dirs(self) -> None:
        self.preflight()
        try:
            self.parts.mkdir(parents=True, exist_ok=True)
            probe = self.path / f"{STAGING}probe.{os.getpid()}"
            probe.touch()
            probe.unlink()
        except OSError as exc:
            raise ErbenchError(f"cannot write results here: {exc.strerror}", file=self.path, field="--out") from None

    def _remove_staging(self) -> None:
        for d in (self.path, self.parts):
            for p in d.glob(f"{STAGING}*"):
                p.unlink(missing_ok=True)
        # staging directories of erbench < 0.2's whole-directory writes: empty, or a mkdtemp name
        # holding Parquet files only (a user's .<id>.backup/ is not one)
        legacy = re.compile(rf"\.{re.escape(self.path.name)}\.(old\.)?[a-z0-9_]{{8}}")
        for p in self.path.parent.glob(f".{self.path.name}.*"):
            files = list(p.iterdir()) if p.is_dir() and not p.is_symlink() else None
            if files == [] or files and legacy.fullmatch(p.name) and all(f.suffix == ".parquet" for f in files):
                shutil.rmtree(p, ignore_errors=True)

    def _part_files(self) -> dict[str, Path]:
        return {p.name.split(".")[0]: p for p in sorted(self.parts.glob("*.parquet")) if not p.name.startswith(".")}

    def committed(self) -> set[str]:
        """Keys of the parts whose bytes match their checksum; corrupted parts are deleted."""
        good = set()
        for key, path in self._part_files().items():
            if _sha256(path).startswith(path.name.split(".")[1]):
                good.add(key)
            else:
                path.unlink()
        return good

    def commit(self, task: Task, frame: pd.DataFrame) -> None:
        table = to_table(frame, PART_SCHEMA)
        seconds = str(frame.attrs.get("seconds", "")).encode()
        table = table.replace_schema_metadata({**table.schema.metadata, KEY_META: task.key.encode(),
                                               SECONDS_META: seconds})
        with _staged(self.parts, task.key) as tmp:
            pq.write_table(table, tmp)
            os.replace(_durable(tmp), self.parts / f"{task.key}.{_sha256(tmp)[:16]}.parquet")

    def part_file(self, key: str) -> Path:
        return self._part_files()[key]

    def adopt(self, part: Path) -> None:
        """Commit a copy of another store's part file (same name, so the same key and checksum)."""
        with _staged(self.parts, part.name) as tmp:
            shutil.copyfile(part, tmp)
            os.replace(_durable(tmp), self.parts / part.name)

    def read(self, key: str) -> pd.DataFrame:
        path = self.part_file(key)
        if not _sha256(path).startswith(path.name.split(".")[1]):
            raise ErbenchError("cell part changed on disk while in use; rerun to recompute it", file=path)
        table = pq.read_table(path)
        if table.schema.metadata.get(KEY_META) != key.encode():
            raise ErbenchError("cell part does not hold the cell its name says; delete it", file=path)
        return upgrade(table.to_pandas())  # a schema-2 part (same key, results.upgrade) in this schema

    def seconds(self, key: str) -> float | None:
        """Compute time of a committed cell, as its worker measured it."""
        value = pq.read_schema(self.part_file(key)).metadata.get(SECONDS_META, b"")
        return float(value) if value else None

    def write_plan(self, plan: Plan) -> None:
        with _staged(self.path, PLAN_FILE) as tmp:
            tmp.write_text(plan.to_json())
            os.replace(_durable(tmp), self.path / PLAN_FILE)

    def read_plan(self) -> Plan:
        path = self.path / PLAN_FILE
        if not path.is_file():
            raise ErbenchError("no plan.json: not the output of erbench evaluate", file=self.path)
        return Plan.from_json(path.read_text())

    def write_tables(self, summary: pd.DataFrame, per_image: pd.DataFrame) -> None:
        """Each table by an atomic rename (per_image first): a rerun re-derives both from the parts."""
        for name, frame, schema in ((PER_IMAGE_FILE, per_image, PER_IMAGE_SCHEMA), (SUMMARY_FILE, summary, SUMMARY_SCHEMA)):
            with _staged(self.path, name) as tmp:
                pq.write_table(to_table(frame, schema), tmp)
                os.replace(_durable(tmp), self.path / name)

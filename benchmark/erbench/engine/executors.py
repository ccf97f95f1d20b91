"""Executors decide where cells run, never what they compute: each hands every job to
``worker.run`` somewhere and passes the rows back to ``done`` in the driver, which alone commits.

* ``local``   -- in this process, one cell after another;
* ``process`` -- a pool of ``jobs`` worker processes (spawned, ``threads`` torch threads each),
  cells submitted longest-first;
* ``ray``     -- Ray tasks on a running cluster (``erbench[ray]``; ``engine/ray_executor.py``).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass

import pandas as pd

from erbench.engine import worker
from erbench.engine.worker import Job
from erbench.errors import ErbenchError
from erbench.registry import Registry

Done = Callable[[Job, pd.DataFrame], None]


@dataclass(frozen=True)
class Resources:
    jobs: int = 1  # cells computed at once
    threads: int = 1  # torch threads per cell
    address: str | None = None  # Ray cluster address (None: start a local Ray instance)
    gpus: float = 0  # GPUs per cell (Ray)


@dataclass
class LocalExecutor:
    resources: Resources

    def run(self, jobs: list[Job], done: Done) -> None:
        worker.set_threads(self.resources.threads)
        for job in jobs:
            done(job, worker.run(job))


@dataclass
class ProcessExecutor:
    resources: Resources

    def run(self, jobs: list[Job], done: Done) -> None:
        context = multiprocessing.get_context("spawn")  # never fork a process that holds torch's thread pools
        with ProcessPoolExecutor(self.resources.jobs, mp_context=context, initializer=worker.init_process,
                                 initargs=(self.resources.threads, os.getpid())) as pool:
            pending = {pool.submit(worker.run, job): job for job in jobs}
            try:
                while pending:
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)  # commit each cell as it ends
                    for future in finished:
                        job = pending.pop(future)
                        done(job, future.result())
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise


def _ray_executor(resources: Resources):
    try:
        from erbench.engine.ray_executor import RayExecutor
    except ImportError as exc:
        raise ErbenchError(f"the ray executor needs `pip install erbench[ray]` ({exc})", field="--executor") from None
    return RayExecutor(resources)


EXECUTORS: Registry[Callable[[Resources], object]] = Registry("executor")
EXECUTORS.register("local", LocalExecutor)
EXECUTORS.register("process", ProcessExecutor)
EXECUTORS.register("ray", _ray_executor)

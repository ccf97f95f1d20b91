"""Ray executor: each cell is a Ray task computing ``worker.run(job)``; the driver alone commits.

``erbench evaluate ... --executor ray`` starts a local Ray instance of ``--jobs`` x ``--threads``
CPUs (shut down at the end); ``--ray-address ADDR`` connects to a running cluster instead, which is
left running: ``auto`` or the head's ``HOST:PORT``, from a node of the cluster (``ray start
--address ...`` first; a cluster with Ray's token authentication also needs ``RAY_AUTH_MODE=token``
here). An existing Ray connection of the calling process is reused as it is.

A task ships only the job: every worker loads the submission itself. The submission YAML, its
weights and the erbench install (``data_manifests/`` included) must therefore be readable at the
same path on every node, e.g. on a shared filesystem, and ``--cache-dir`` writable there; relative
paths are made absolute in the driver first.

Cells are submitted longest-first (the order the jobs arrive in), at most as many in flight as the
cluster can run at once, so the order holds. A task's exception cancels the others and is raised
in the driver as the original error, an ErbenchError included, never as a RayTaskError.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, replace

import ray
from ray.exceptions import RayTaskError

# Ray workers import this module, not the CLI: silence the same import-time warning it does
warnings.filterwarnings("ignore", category=FutureWarning, module="torch.jit")

from erbench.engine import worker  # noqa: E402
from erbench.engine.executors import Done, Resources  # noqa: E402
from erbench.engine.worker import Job  # noqa: E402
from erbench.errors import ErbenchError  # noqa: E402


def _compute(job: Job, threads: int):
    worker.set_threads(threads)
    return worker.run(job)


_task = ray.remote(_compute)  # ships _compute by reference: workers import this module


def original(exc: BaseException) -> BaseException:
    """The exception a task raised, out of Ray's wrapper (itself when it is not one)."""
    while isinstance(exc, RayTaskError) and isinstance(exc.cause, BaseException):
        exc = exc.cause
    return exc


def _absolute(job: Job) -> Job:
    settings = job.settings
    if settings.cache_dir:
        settings = replace(settings, cache_dir=os.path.abspath(settings.cache_dir))
    return replace(job, spec_path=os.path.abspath(job.spec_path), settings=settings)


@dataclass
class RayExecutor:
    resources: Resources

    def run(self, jobs: list[Job], done: Done) -> None:
        if not jobs:
            return
        started = not ray.is_initialized()
        if started:
            self._connect()
        try:
            self._run(jobs, done)
        finally:
            if started:
                ray.shutdown()  # stops the local instance; from a cluster, only disconnects

    def _connect(self) -> None:
        jobs, threads, address = self.resources.jobs, self.resources.threads, self.resources.address
        if address is None:
            # "local": a new instance, even where `ray start` left one that a bare ray.init() would join
            ray.init(address="local", num_cpus=jobs * threads, include_dashboard=False)
            return
        try:
            ray.init(address=address)
        except (ConnectionError, ValueError) as exc:
            raise ErbenchError(f"cannot connect to a Ray cluster there: {exc}", field="--ray-address") from None

    def _run(self, jobs: list[Job], done: Done) -> None:
        threads, gpus = self.resources.threads, self.resources.gpus
        task = _task.options(num_cpus=threads, num_gpus=gpus)
        available = ray.cluster_resources()
        if available.get("GPU", 0) < gpus:  # Ray would wait forever for an infeasible task
            raise ErbenchError(f"the Ray cluster has {available.get('GPU', 0):g} GPUs; each cell needs {gpus:g}",
                               field="--device")
        cpus = int(available.get("CPU", 0) // threads)
        cap = max(self.resources.jobs, cpus, 1)
        queue, pending = iter(jobs), {}
        try:
            for job in queue:  # longest first, then one more as each finishes
                pending[task.remote(_absolute(job), threads)] = job
                if len(pending) >= cap:
                    break
            while pending:
                finished, _ = ray.wait(list(pending), num_returns=1)
                for ref in finished:
                    done(pending.pop(ref), ray.get(ref))
                    job = next(queue, None)
                    if job is not None:
                        pending[task.remote(_absolute(job), threads)] = job
        except BaseException as exc:
            for ref in pending:
                ray.cancel(ref, force=True)
            cause = original(exc)
            if cause is exc:
                raise
            raise cause from exc  # the chained RayTaskError keeps the task's traceback

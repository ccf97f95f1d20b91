"""The Ray executor: Ray tasks give the rows of one process, through the API and the CLI, and an
ErbenchError raised inside a task reaches the user as that error (one line), not a Ray traceback.

One local Ray instance (2 CPUs, no dashboard, node address 127.0.0.1) is shared by the module: the executor
reuses a connection it finds and leaves it running. Starting its own instance is tested end to end
in a fresh process (slow)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import ray
from ray._private.services import find_gcs_addresses as gcs_addresses
from conftest import HYPERPRIOR

from erbench.engine.executors import Resources
from erbench.engine.ray_executor import RayExecutor, original
from erbench.errors import ErbenchError
from erbench.results import read_results
from erbench.runner import evaluate

CELLS = ("corruption.snow", "attack.noise", "attack.rate_pgd")  # 30 cells (worst_rate included) on 8 images
VOLATILE = ["created_utc", "git_sha"]  # differ between runs by design


@pytest.fixture(scope="module")
def local_ray():
    ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    yield
    ray.shutdown()


def _run(out, executor, **kw):
    return evaluate(HYPERPRIOR, out, protocol="erbench-v1-quick", conditions=CELLS, limit=8, progress=False,
                    executor=executor, resources=Resources(jobs=2, threads=1), **kw)


def _same_tables(a: Path, b: Path) -> None:
    for x, y in zip(read_results(a), read_results(b)):
        pd.testing.assert_frame_equal(x.drop(columns=VOLATILE), y.drop(columns=VOLATILE))


def test_ray_tasks_give_the_rows_of_one_process(local_ray, tmp_path):
    one = _run(tmp_path / "local", "local")
    many = _run(tmp_path / "ray", "ray", cache_dir=tmp_path / "cache")
    assert many.computed == len(many.plan.tasks) == 30
    _same_tables(one.path, many.path)
    assert ray.is_initialized()  # a connection the executor found is left alone


def test_an_error_inside_a_task_is_unwrapped(local_ray):
    @ray.remote
    def fail():
        raise ErbenchError("broken", file="x.yaml", field="weights.file")

    with pytest.raises(ray.exceptions.RayTaskError) as wrapped:
        ray.get(fail.remote())
    error = original(wrapped.value)
    assert type(error) is ErbenchError and error.line() == "x.yaml: weights.file: broken"
    plain = ValueError("not Ray's")
    assert original(plain) is plain


def test_cli_with_ray_and_an_error_in_the_tasks_as_one_line(local_ray, tmp_path, run_cli, copy_submission,
                                                            monkeypatch):
    args = ("--quick", "-c", "attack.noise", "--limit", "8", "--executor", "ray", "--jobs", "2", "--no-progress",
            "--cache-dir", tmp_path / "cache")
    code, out, err = run_cli("evaluate", HYPERPRIOR, "--out", tmp_path / "ok", *args)
    assert code == 0, err
    assert "11 cells (11 of 11 computed now)" in out  # erbench-v2-quick: clean + noise at 5 L-inf and 5 L2 budgets

    # the driver validates the submission, then its weights vanish before the tasks load them
    spec = copy_submission(HYPERPRIOR)
    run = RayExecutor.run

    def vanish(self, jobs, done):
        spec.with_suffix(".safetensors").unlink()
        run(self, jobs, done)

    monkeypatch.setattr(RayExecutor, "run", vanish)
    code, out, err = run_cli("evaluate", spec, "--out", tmp_path / "bad", *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[-1].startswith("error: ") and lines[-1].endswith("weights.file: file not found")
    assert "Traceback" not in err and "RayTaskError" not in err
    assert not list((tmp_path / "bad" / spec.stem / "parts").glob("*.parquet"))


@pytest.mark.slow
def test_cli_starts_and_stops_its_own_ray_instance(tmp_path):
    before = set(gcs_addresses())
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "erbench.cli", "evaluate", str(HYPERPRIOR), "--quick",
                           "-c", "attack.noise", "--limit", "8", "--executor", "ray", "--jobs", "2",
                           "--no-progress", "--out", str(tmp_path), "--cache-dir", str(tmp_path / "cache")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "11 cells (11 of 11 computed now)" in done.stdout  # erbench-v2-quick
    assert set(gcs_addresses()) == before, "the Ray instance the run started is still running"

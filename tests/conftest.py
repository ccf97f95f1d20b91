"""Shared fixtures: committed submissions, a temporary corruption cache, a tiny in-process CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from erbench.cli import main

ROOT = Path(__file__).resolve().parents[1]
SUBMISSIONS = sorted((ROOT / "submissions").rglob("*.yaml"))
REFERENCE = {p.stem: p for p in SUBMISSIONS if p.parent.name == "reference"}
FACTORIZED = next(p for k, p in REFERENCE.items() if "_fp_" in k)
HYPERPRIOR = next(p for k, p in REFERENCE.items() if "_hp_" in k)


@pytest.fixture
def run_cli(capsys):
    """Run ``erbench ARGS`` in-process; returns (exit code, stdout, stderr)."""

    def run(*args: str):
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture
def copy_submission(tmp_path):
    """Copy a submission YAML and its weights into tmp_path, so a test can break them."""

    def copy(src: Path = FACTORIZED) -> Path:
        dst = tmp_path / "subs"
        dst.mkdir(exist_ok=True)
        shutil.copy(src, dst / src.name)
        shutil.copy(src.with_suffix(".safetensors"), dst / src.with_suffix(".safetensors").name)
        return dst / src.name

    return copy


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """As erbench's workers run: one torch thread (small convolutions on shared cores run several
    times faster than with torch's default)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

"""Commands that run no model import neither torch nor compressai (7-10 s and ~1 GB per process).

Each command runs in a fresh interpreter through ``erbench.cli.main``; afterwards torch,
torchvision and compressai must be absent from ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import distribution
from pathlib import Path

import click
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from erbench.cli import cli

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "leaderboard" / "results"
HEAVY = ("torch", "torchvision", "compressai")

PROBE = """
import sys
from erbench.cli import main

code = main(sys.argv[1:])
heavy = sorted(m for m in sys.modules if m.partition(".")[0] in {heavy!r})
if heavy:
    sys.exit(f"imported {{', '.join(heavy[:5])}}{{' ...' if len(heavy) > 5 else ''}}")
sys.exit(code)
""".format(heavy=set(HEAVY))


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and group path of the CLI, e.g. ('leaderboard', 'build')."""
    paths = []
    for name, command in sorted(group.commands.items()):
        paths.append((*prefix, name))
        if isinstance(command, click.Group):
            paths += _commands(command, (*prefix, name))
    return paths


def _run(args: list[str], cwd: Path = ROOT) -> None:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"erbench {' '.join(args)}: exit {proc.returncode}\n{proc.stderr[-2000:]}"


HELP = [["--help"]] + [[*path, "--help"] for path in _commands(cli)]
FIRST_ENTRY = sorted(p.name for p in RESULTS.iterdir() if p.is_dir())[0]
COMMANDS = [
    ["list"],
    ["schema"],
    ["schema", "--results"],
    ["validate", "submissions"],  # every committed submission: schema, registries, weights' sha256 and header
    ["leaderboard", "table", "--results", str(RESULTS)],
    ["leaderboard", "table", "--results", str(RESULTS), "--corruptions"],
    ["leaderboard", "table", "--results", str(RESULTS), "--attacks", FIRST_ENTRY],
]


@pytest.mark.parametrize("args", HELP + COMMANDS, ids=" ".join)
def test_command_imports_no_torch(args):
    _run(args)


SITE_REQUIREMENTS = ROOT / "benchmark" / "erbench" / "leaderboard" / "requirements.txt"
IMPORTED = """
import sys
at_startup = set(sys.modules)  # e.g. setuptools' _distutils_hack, imported by a .pth file
import json
from importlib.metadata import packages_distributions
from erbench.cli import main

main(sys.argv[1:])
names = packages_distributions()
print(json.dumps(sorted({d for m in set(sys.modules) - at_startup for d in names.get(m.partition(".")[0], [])})))
"""
OPTIONAL = {"cloudpickle"}  # pyarrow imports it when it is installed and pickles without it


def _closure(requirements: list[str]) -> set[str]:
    """The distributions the requirements install: them and, transitively, their unconditional dependencies."""
    todo, seen = [Requirement(r) for r in requirements], set()
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen or (req.marker and not req.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        todo += [Requirement(r) for r in distribution(name).requires or []]
    return seen


def test_leaderboard_build_imports_no_torch_and_only_what_the_site_requirements_install(tmp_path):
    """The build imports neither torch nor compressai, and benchmark/erbench/leaderboard/requirements.txt (the
    Pages build's torch-free install) installs every distribution it imports."""
    proc = subprocess.run([sys.executable, "-c", IMPORTED, "leaderboard", "build", "--results", str(RESULTS),
                           "--out", str(tmp_path / "site"), "--submissions", str(ROOT / "submissions")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    imported = {canonicalize_name(d) for d in json.loads(proc.stdout.splitlines()[-1])} - {"erbench", *OPTIONAL}
    assert (tmp_path / "site" / "index.html").is_file() and not imported & set(HEAVY), sorted(imported & set(HEAVY))
    lines = [line.split("#")[0].strip() for line in SITE_REQUIREMENTS.read_text().splitlines()]
    installed = _closure([line for line in lines if line])
    assert imported and not imported - installed, sorted(imported - installed)
    assert not installed & set(HEAVY)


def test_the_probe_sees_torch_when_it_is_imported():
    """The check itself works: a command that loads a model is caught."""
    proc = subprocess.run([sys.executable, "-c", "import torch\n" + PROBE, "list"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "imported torch" in proc.stderr
    seen = subprocess.run([sys.executable, "-c", IMPORTED.replace("main(sys.argv[1:])", "import torch"), "list"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    assert "torch" in json.loads(seen.stdout.splitlines()[-1])


def test_merge_imports_no_torch(tmp_path):
    """Merging shards reads and writes Parquet only: it can run on a machine without the model stack."""
    from conftest import FACTORIZED

    from erbench.runner import evaluate

    for i in (0, 1):
        evaluate(FACTORIZED, tmp_path / f"s{i}", protocol="erbench-v1-quick", conditions=("attack.noise",), limit=4,
                 shard=(i, 2), progress=False)
    _run(["merge", str(tmp_path / "s0"), str(tmp_path / "s1"), "--out", str(tmp_path / "merged")])
    assert (tmp_path / "merged" / FACTORIZED.stem / "summary.parquet").is_file()

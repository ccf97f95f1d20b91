"""Commands that run no model import neither torch nor compressai (7-10 s and ~1 GB per process).

Each command runs in a fresh interpreter through ``erbench.cli.main``; afterwards torch,
torchvision and compressai must be absent from ``sys.modules``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest

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


def test_leaderboard_build_imports_no_torch(tmp_path):
    _run(["leaderboard", "build", "--results", str(RESULTS), "--out", str(tmp_path / "site"),
          "--submissions", str(ROOT / "submissions")])
    assert (tmp_path / "site" / "index.html").is_file()


def test_the_probe_sees_torch_when_it_is_imported():
    """The check itself works: a command that loads a model is caught."""
    proc = subprocess.run([sys.executable, "-c", "import torch\n" + PROBE, "list"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "imported torch" in proc.stderr


def test_merge_imports_no_torch(tmp_path):
    """Merging shards reads and writes Parquet only: it can run on a machine without the model stack."""
    from conftest import FACTORIZED

    from erbench.runner import evaluate

    for i in (0, 1):
        evaluate(FACTORIZED, tmp_path / f"s{i}", protocol="erbench-v1-quick", conditions=("attack.noise",), limit=4,
                 shard=(i, 2), progress=False)
    _run(["merge", str(tmp_path / "s0"), str(tmp_path / "s1"), "--out", str(tmp_path / "merged")])
    assert (tmp_path / "merged" / FACTORIZED.stem / "summary.parquet").is_file()

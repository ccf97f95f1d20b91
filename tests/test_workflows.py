"""The GitHub workflows: actionlint (with shellcheck on `run:` steps) and zizmor find nothing, the
submissions workflow selects renamed-and-edited YAMLs, and `erbench check --report` writes the
report it uploads."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import FACTORIZED, ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
SELECT = ROOT / ".ci" / "changed_submissions.sh"
# the tools come with the `test` extra, next to this interpreter
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def _tool(name: str) -> str:
    path = shutil.which(name, path=ENV["PATH"])
    assert path, f"{name} is missing: pip install -e '.[test]'"
    return path


def test_actionlint_finds_nothing():
    assert WORKFLOWS
    _tool("shellcheck")  # actionlint checks `run:` scripts with it when it is on PATH
    run = subprocess.run([_tool("actionlint"), "-oneline", *map(str, WORKFLOWS)], capture_output=True, text=True,
                         env=ENV, cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr


def test_zizmor_finds_nothing_not_accepted_in_its_config():
    run = subprocess.run([_tool("zizmor"), "--offline", "--persona", "auditor", "--min-severity", "informational",
                          "--config", ".github/zizmor.yml", "--color", "never", ".github/workflows"],
                         capture_output=True, text=True, env=ENV, cwd=ROOT)
    assert run.returncode == 0 and "No findings" in run.stdout, run.stdout + run.stderr


def _workflow(name: str) -> dict:
    return yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())


def test_permissions_and_triggers():
    subs = _workflow("submissions.yml")
    assert list(subs[True]) == ["pull_request"] and subs["permissions"] == {"contents": "read"}  # YAML 1.1: on = True
    pages = _workflow("pages.yml")
    assert pages["permissions"] == {"contents": "read"} and pages["concurrency"]["cancel-in-progress"] is False
    assert "permissions" not in pages["jobs"]["build"]
    assert pages["jobs"]["build"]["needs"] == "check" and pages["jobs"]["deploy"]["needs"] == "build"
    build = " ".join(step.get("run", "") for step in pages["jobs"]["build"]["steps"])
    assert "--no-deps -e ." in build and "leaderboard/requirements.txt" in build and "torch" not in build
    assert pages["jobs"]["deploy"]["permissions"] == {"pages": "write", "id-token": "write"}
    for path in WORKFLOWS:
        for job in yaml.safe_load(path.read_text())["jobs"].values():
            for step in job["steps"]:
                if step.get("uses", "").startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False, path.name


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def _select(repo: Path, what: str) -> list[str]:
    out = subprocess.run([str(SELECT), what, "main"], cwd=repo, check=True, capture_output=True).stdout
    return out.decode().split("\0")[:-1]


def test_changed_file_selection_includes_a_renamed_and_edited_yaml(tmp_path):
    repo = tmp_path / "repo"
    (repo / "submissions" / "team a").mkdir(parents=True)
    (repo / "benchmark").mkdir()
    old = repo / "submissions" / "team a" / "old.yaml"
    old.write_text("id: old\ntitle: a model\nauthors: [A]\nlicense: MIT\nbeta: 0.001\n")
    (repo / "submissions" / "gone.yaml").write_text("id: gone\n")
    (repo / "submissions" / "same.yaml").write_text("id: same\n")
    (repo / "benchmark" / "arch.py").write_text("x = 1\n")
    _git(repo.parent, "init", "-q", "-b", "main", "repo")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    _git(repo, "checkout", "-qb", "pr")
    new = old.with_name("new name.yaml")
    _git(repo, "mv", str(old), str(new))
    new.write_text(new.read_text().replace("id: old", "id: new name"))  # a rename git still detects, plus an edit
    _git(repo, "rm", "-q", "submissions/gone.yaml")
    (repo / "submissions" / "added.yaml").write_text("id: added\n")
    _git(repo, "mv", "benchmark/arch.py", "benchmark/my arch.py")
    (repo / ".github").mkdir()
    (repo / ".github" / "ci.yml").write_text("on: push\n")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "pr")
    assert "R0" in _git(repo, "diff", "--name-status", "main...HEAD")  # git's own diff calls it a rename
    assert _select(repo, "yamls") == ["submissions/added.yaml", "submissions/team a/new name.yaml"]
    assert _select(repo, "others") == [".github/ci.yml", "benchmark/arch.py", "benchmark/my arch.py"]
    run = ".ci/changed_submissions.sh yamls"
    assert sum(run in step.get("run", "") for step in _workflow("submissions.yml")["jobs"]["check"]["steps"]) == 1


def test_check_report_rows_and_changed_files(run_cli, copy_submission, tmp_path):
    broken = copy_submission()
    broken.with_suffix(".safetensors").write_bytes(b"not the weights")
    changed = ["benchmark/erbench/models/my arch.py", "a|b`c\nd.py"]
    listing = tmp_path / "others"
    listing.write_bytes(b"".join(p.encode() + b"\0" for p in changed))
    report = tmp_path / "report.md"
    code, out, err = run_cli("check", FACTORIZED, broken, "--report", report, "--changed-files", listing)
    assert code == 2 and f"ok  {FACTORIZED}" in out and "sha256 mismatch" in err
    text = report.read_text()
    ok_row = next(line for line in text.splitlines() if line.startswith(f"| {FACTORIZED} | ok | "))
    accuracy, bits = (float(c) for c in ok_row.split("|")[3:5])
    assert 0.8 < accuracy <= 1 and bits > 0 and ok_row.endswith("| no |")
    assert f"| {broken} | fail: {broken}: weights.sha256: sha256 mismatch" in text
    assert "changes: 2" in text and all(json.dumps(p) in text.splitlines() for p in changed)

    code, out, _ = run_cli("check", "--report", report, "--changed-files", listing)
    assert code == 0 and "No submission YAML" in report.read_text() and json.dumps(changed[0]) in report.read_text()

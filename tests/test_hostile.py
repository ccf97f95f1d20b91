"""Submissions from outside (issue 13): every hostile input ends in one line naming file and field,
exit code 2, nothing written, nothing executed, no hash of a file outside the submission root.

Each case breaks a copy of a reference submission (tmp_path/subs, its own root) and runs
``erbench evaluate`` and, where no model is needed, ``erbench validate``, in-process.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import FACTORIZED, ROOT
from safetensors.torch import load_file, save_file

from erbench.engine import worker
from erbench.errors import FILE_CHARS
from erbench.models.architectures import ARCHITECTURES
from erbench.models.sc2bench_import import main as sc2bench_import

MAX_LINE = 400


class _Exploit:
    """Unpickling it would create the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture(autouse=True)
def no_hang():
    """A case that blocks (a FIFO opened for reading) fails after 30 s instead of hanging the suite."""

    def timeout(*_):
        raise TimeoutError("the command blocked")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(30)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def no_model(monkeypatch):
    """The run fails before any model is loaded: loading one is an error of the test."""

    def refuse(*_):
        raise AssertionError("a model was loaded before the error")

    monkeypatch.setattr(worker, "context", refuse)


def _edit(spec: Path, **fields):
    """Set dotted fields (``weights__file`` for weights.file) of a submission YAML."""
    raw = yaml.safe_load(spec.read_text())
    for key, value in fields.items():
        *parents, leaf = key.split("__")
        node = raw
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    spec.write_text(yaml.safe_dump(raw, sort_keys=False))


def _rehash(spec: Path) -> None:
    weights = spec.with_suffix(".safetensors")
    _edit(spec, weights__sha256=hashlib.sha256(weights.read_bytes()).hexdigest())


def _save(spec: Path, mutate) -> None:
    weights = spec.with_suffix(".safetensors")
    tensors = load_file(str(weights))
    mutate(tensors)
    save_file(tensors, str(weights))
    _rehash(spec)


def _one_line(code: int, stderr: str, file: str, field: str | None, *fragments: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    line = lines[0]
    assert len(line) <= MAX_LINE, f"{len(line)} characters"
    assert line.startswith(f"error: {file}" if len(file) <= FILE_CHARS else "error: "), line
    for fragment in (field, *fragments):
        if fragment:
            assert fragment in line, line
    return line


def _refused(run_cli, tmp_path, spec, field, *fragments, file=None, no_secret=None, validating=None) -> str:
    """``evaluate`` and ``validate`` refuse ``spec``, evaluate with one line; nothing is written."""
    out = tmp_path / "out"
    code, _, err = run_cli("evaluate", spec, "--out", out, "--limit", "4", "--no-progress", "-c", "corruption.snow")
    line = _one_line(code, err, str(file or spec), field, *fragments)
    assert not out.exists(), "nothing may be written on error"
    code, stdout, err = run_cli("validate", validating or spec)
    assert code == 2 and not stdout and (field or fragments[0]) in err, err
    if no_secret is not None:
        assert hashlib.sha256(Path(no_secret).read_bytes()).hexdigest() not in line + err
    return line


# --- paths ------------------------------------------------------------------------------------------


def test_pickle_renamed_safetensors_is_not_unpickled(run_cli, copy_submission, tmp_path):
    spec = copy_submission()
    marker = tmp_path / "executed"
    spec.with_suffix(".safetensors").write_bytes(pickle.dumps(_Exploit(marker)))
    _rehash(spec)
    _refused(run_cli, tmp_path, spec, "weights.file", "not a .safetensors file")
    assert not marker.exists()
    torch.save(_Exploit(marker), spec.with_suffix(".safetensors"))  # a torch checkpoint (zip + pickle)
    _rehash(spec)
    _refused(run_cli, tmp_path, spec, "weights.file", "not a .safetensors file")
    assert not marker.exists()


@pytest.mark.parametrize("target", ["../../outside.safetensors", "/etc/passwd", "../../../../../../../proc/self/environ"])
def test_weights_outside_the_root_are_refused_unhashed(run_cli, copy_submission, tmp_path, target):
    spec = copy_submission()
    outside = tmp_path.parent / "outside.safetensors"
    outside.write_bytes(spec.with_suffix(".safetensors").read_bytes())
    fragment = "absolute path" if target.startswith("/") else "leaves the submission root"
    secret = {"/etc/passwd": "/etc/passwd"}.get(target, outside)
    _edit(spec, weights__file=target)
    _refused(run_cli, tmp_path, spec, "weights.file", fragment, no_secret=secret)


@pytest.mark.parametrize("target", ["/etc/passwd", "git_config"])
def test_symlink_out_of_the_root_is_refused_unhashed(run_cli, copy_submission, tmp_path, target):
    spec = copy_submission()
    # the repository's git config (a worktree's .git is a file naming the common directory)
    git_dir = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--path-format=absolute", "--git-common-dir"],
                             capture_output=True, text=True, check=True).stdout.strip()
    real = Path(target) if target.startswith("/") else Path(git_dir) / "config"
    weights = spec.with_suffix(".safetensors")
    weights.unlink()
    weights.symlink_to(real)
    _refused(run_cli, tmp_path, spec, "weights.file", "leaves the submission root", no_secret=real)


def test_yaml_symlink_out_of_its_tree_is_refused(run_cli, tmp_path):
    tree = tmp_path / "submissions" / "zz"
    tree.mkdir(parents=True)
    (tree / FACTORIZED.name).symlink_to(FACTORIZED)
    _refused(run_cli, tmp_path, tree / FACTORIZED.name, None, "symlink leaving the submission root")


def test_weights_that_are_not_safetensors_files(run_cli, copy_submission, tmp_path):
    spec = copy_submission()
    other = spec.parent / "weights.bin"
    other.write_bytes(spec.with_suffix(".safetensors").read_bytes())
    _edit(spec, weights__file="weights.bin")
    _refused(run_cli, tmp_path, spec, "weights.file", "not a .safetensors file")
    _edit(spec, weights__file="dir.safetensors")
    (spec.parent / "dir.safetensors").mkdir()
    _refused(run_cli, tmp_path, spec, "weights.file", "is a directory")


def test_fifos_do_not_block(run_cli, copy_submission, tmp_path):
    spec = copy_submission()
    weights = spec.with_suffix(".safetensors")
    weights.unlink()
    os.mkfifo(weights)
    _refused(run_cli, tmp_path, spec, "weights.file", "is a FIFO")
    fifo = spec.parent / "fifo.yaml"
    os.mkfifo(fifo)
    _refused(run_cli, tmp_path, fifo, None, "is a FIFO")
    # and in a fresh process, as CI runs it, without any alarm
    proc = subprocess.run([sys.executable, "-m", "erbench.cli", "validate", str(fifo)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "is a FIFO" in proc.stderr


def test_sparse_5_gib_weights_are_refused_by_size(run_cli, copy_submission, tmp_path):
    spec = copy_submission()
    with open(spec.with_suffix(".safetensors"), "r+b") as f:
        f.truncate(5 << 30)
    _refused(run_cli, tmp_path, spec, "weights.file", "5,368,709,120 bytes, over the 1 GiB limit")


# --- the YAML file ----------------------------------------------------------------------------------


def test_yaml_of_50_mb_is_refused_by_size(run_cli, copy_submission, tmp_path):
    spec = copy_submission()
    with open(spec, "a") as f:
        f.write("authors:\n" + "- Mallory\n" * 5_000_000)
    _refused(run_cli, tmp_path, spec, None, "over the 64 KiB limit")


def test_billion_laughs_is_refused(run_cli, copy_submission, tmp_path):
    spec = copy_submission()
    laughs = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    laughs += [f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]"
               for i in range(8)]
    text = spec.read_text().replace("  kwargs: {}", "  kwargs:\n" + "\n".join(f"    {line}" for line in laughs))
    spec.write_text(text)
    _refused(run_cli, tmp_path, spec, None, "anchors and aliases (&, *) are not allowed", "(line ")


def test_nesting_20000_deep_is_refused(run_cli, copy_submission, tmp_path):
    spec = copy_submission()
    spec.write_text(spec.read_text().replace("notes: ", "notes: " + "[" * 20_000 + "]" * 20_000 + "\nnotez: "))
    _refused(run_cli, tmp_path, spec, None, "nested deeper than 20 levels")


def test_yaml_that_is_not_utf8(run_cli, copy_submission, tmp_path):
    spec = copy_submission()
    spec.write_bytes(spec.read_bytes().replace(b"erbench maintainers", b"erbench ma\xeftres"))
    _refused(run_cli, tmp_path, spec, None, "not UTF-8 text (byte 0xef at offset")


def test_yaml_that_is_a_directory(run_cli, tmp_path):
    spec = tmp_path / "subs" / "dir.yaml"
    spec.mkdir(parents=True)
    _refused(run_cli, tmp_path, spec, None, "is a directory", validating=spec.parent)  # validate DIR: every *.yaml


def test_100k_character_names(run_cli, copy_submission, tmp_path):
    _refused(run_cli, tmp_path, tmp_path / ("a" * 100_000 + ".yaml"), None, "File name too long")
    spec = copy_submission()
    _edit(spec, weights__file="w" * 60_000 + ".safetensors")
    _refused(run_cli, tmp_path, spec, "weights.file", "at most 255 characters")


def test_a_long_rejected_value_is_not_echoed_whole(run_cli, copy_submission, tmp_path):
    spec = copy_submission()
    _edit(spec, beta="x" * 50_000)
    _refused(run_cli, tmp_path, spec, "beta", "valid number", "(got 'xxx", "xxx...xxx", "xxx')")
    _edit(spec, beta=1e-3, model__architecture="x" * 10_000)
    _refused(run_cli, tmp_path, spec, "model.architecture", "unknown architecture 'xxx", "xxx...xxx")


# --- the schema and the registries ------------------------------------------------------------------


@pytest.mark.parametrize("sid", ["../evil", "sub/dir", ".hidden", "a b"])
def test_ids_with_path_characters(run_cli, copy_submission, tmp_path, sid):
    spec = copy_submission()
    _edit(spec, id=sid)
    _refused(run_cli, tmp_path, spec, "id", "pattern")


@pytest.mark.parametrize("value, fragment", [
    ("abc", "must be an integer in [1, 512], got 'abc'"),
    (-1, "must be in [1, 512]"),
    (32.0, "must be an integer in [1, 512], got 32.0"),
    ([1, 2], "got [1, 2]"),
    (True, "got True"),
    (20000, "must be in [1, 512] (bounds that keep the model small), got 20000"),
])
def test_kwargs_are_typed_and_bounded(run_cli, copy_submission, tmp_path, no_model, value, fragment):
    spec = copy_submission()
    _edit(spec, model__kwargs={"width": value})
    _refused(run_cli, tmp_path, spec, "model.kwargs.width", fragment)


@pytest.mark.parametrize("field, value, fragment", [
    ("beta", float("inf"), "finite number"),
    ("preprocessing__std", [0.5, -0.2, 0.5], "greater than 0"),
    ("preprocessing__std", [0.5, 0.0, 0.5], "greater than 0"),
    ("preprocessing__mean", [0.0, float("nan"), 0.0], "finite number"),
])
def test_numbers_are_finite_and_std_positive(run_cli, copy_submission, tmp_path, no_model, field, value, fragment):
    spec = copy_submission()
    _edit(spec, **{field: value})
    _refused(run_cli, tmp_path, spec, field.replace("__", "."), fragment)


def _tree(tmp_path: Path) -> tuple[Path, Path]:
    """tmp_path/submissions: a reference entry and a copy of it under zz/ with the same id."""
    ref = tmp_path / "submissions" / "reference" / FACTORIZED.name
    ref.parent.mkdir(parents=True)
    ref.write_bytes(FACTORIZED.read_bytes())
    ref.with_suffix(".safetensors").write_bytes(FACTORIZED.with_suffix(".safetensors").read_bytes())
    dup = tmp_path / "submissions" / "zz" / FACTORIZED.name
    dup.parent.mkdir()
    dup.write_bytes(FACTORIZED.read_bytes())
    _edit(dup, weights__file=f"../reference/{FACTORIZED.stem}.safetensors")
    return ref, dup


def test_duplicate_ids_are_refused_everywhere(run_cli, tmp_path, no_model):
    ref, dup = _tree(tmp_path)
    _refused(run_cli, tmp_path, dup, "id", f"also used by submissions/reference/{ref.name}")
    _refused(run_cli, tmp_path, ref, "id", f"also used by submissions/zz/{dup.name}")
    code, _, err = run_cli("check", dup)
    assert code == 2 and "also used by" in err
    code, out, err = run_cli("validate", tmp_path / "submissions")
    assert code == 2 and not out
    assert err.splitlines() == [
        f"error: {ref}: id: id '{ref.stem}' is also used by submissions/zz/{dup.name} (ids are unique under submissions/)",
        f"error: {dup}: id: id '{dup.stem}' is also used by submissions/reference/{ref.name} "
        "(ids are unique under submissions/)"]
    (tmp_path / "submissions" / "zz" / dup.name).unlink()
    code, out, err = run_cli("validate", tmp_path / "submissions")
    assert code == 0 and out == f"ok {ref}\n", err


def test_validate_reports_every_problem(run_cli, copy_submission, tmp_path):
    spec = copy_submission()
    _edit(spec, beta=float("inf"), model__kwargs={"width": "abc", "depth": 3}, weights__sha256="0" * 64)
    code, out, err = run_cli("validate", spec)
    assert code == 2 and not out
    lines = err.splitlines()
    assert len(lines) == 1 and "beta" in lines[0], "a schema error stops the checks that need the fields"
    _edit(spec, beta=1e-3, dataset="digit")
    code, out, err = run_cli("validate", spec)
    fields = [line.split(": ")[2] for line in err.splitlines()]
    assert code == 2 and fields == ["model.kwargs.width", "model.kwargs.depth", "dataset", "weights.sha256"], err
    assert all(line.startswith(f"error: {spec}: ") for line in err.splitlines())


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_declared_kwargs_are_the_builders(name):
    arch = ARCHITECTURES.get(name)
    params = inspect.signature(arch.builder()).parameters
    assert {k: p.default for k, p in params.items()} == {k: a.default for k, a in arch.kwargs.items()}
    for arg in arch.kwargs.values():
        assert arg.lo <= arg.default <= arg.hi and arg.problem(arg.default) is None


# --- the weights' contents --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype, shown", [(torch.int8, "I8"), (torch.float64, "F64"), (torch.float16, "F16")])
def test_weights_that_are_not_float32(run_cli, copy_submission, tmp_path, dtype, shown):
    spec = copy_submission()
    _save(spec, lambda t: t.update({k: v.to(dtype) for k, v in t.items()}))
    weights = spec.with_suffix(".safetensors")
    first = sorted(load_file(str(weights)))[0]
    _refused(run_cli, tmp_path, spec, first, f"dtype {shown}; erbench loads float32 (F32) weights only", file=weights)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_name_the_tensor(run_cli, copy_submission, tmp_path, value):
    spec = copy_submission()
    _save(spec, lambda t: t.update({"head.0.weight": torch.full_like(t["head.0.weight"], value)}))
    weights = spec.with_suffix(".safetensors")
    _refused(run_cli, tmp_path, spec, "head.0.weight", "2400 of 2400 values are NaN or infinite", file=weights)


def test_malformed_safetensors_header(run_cli, copy_submission, tmp_path):
    spec = copy_submission()
    weights = spec.with_suffix(".safetensors")
    data = weights.read_bytes()
    n = int.from_bytes(data[:8], "little")
    weights.write_bytes(data[:8] + data[8:8 + n].replace(b'"F32"', b'"F3\xff"', 1) + data[8 + n:])
    _rehash(spec)
    _refused(run_cli, tmp_path, spec, "weights.file", "not a .safetensors file")
    weights.write_bytes((1 << 40).to_bytes(8, "little") + data[8:])
    _rehash(spec)
    _refused(run_cli, tmp_path, spec, "weights.file", "header length 1,099,511,627,776")


# --- the command line -------------------------------------------------------------------------------


@pytest.fixture(params=["file", "under_a_file", "read_only"])
def bad_out(request, tmp_path):
    if request.param == "read_only":
        if os.geteuid() == 0:  # root writes anywhere chmod allows nothing: use a read-only file system
            return Path("/proc/erbench-out"), "cannot write results here"
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        return ro / "out", "cannot write results here"
    (tmp_path / "f").write_text("not a directory")
    return (tmp_path / "f", "is a file") if request.param == "file" else (tmp_path / "f" / "out", "is under")


def test_bad_out_is_refused_before_the_run(run_cli, tmp_path, no_model, bad_out):
    out, fragment = bad_out
    before = sorted(tmp_path.rglob("*"))
    code, _, err = run_cli("evaluate", FACTORIZED, "--out", out, "--limit", "4", "--no-progress")
    _one_line(code, err, str(out), "--out", fragment)
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize("kind", ["file", "foreign_directory"])
def test_existing_non_result_path_is_never_deleted(run_cli, tmp_path, no_model, kind):
    target = tmp_path / "out" / FACTORIZED.stem
    if kind == "file":
        target.parent.mkdir()
        target.write_text("precious")
        keep = target
    else:
        target.mkdir(parents=True)
        keep = target / "thesis.tex"
        keep.write_text("precious")
    before = sorted(tmp_path.rglob("*"))
    code, _, err = run_cli("evaluate", FACTORIZED, "--out", target.parent, "--limit", "4", "--no-progress")
    what = "not a directory" if kind == "file" else "not an erbench result directory"
    _one_line(code, err, str(target), "--out", what, "left untouched")
    assert keep.read_text() == "precious" and sorted(tmp_path.rglob("*")) == before


def test_check_limit_zero(run_cli):
    code, _, err = run_cli("check", FACTORIZED, "--limit", "0")
    assert code == 2 and "--limit" in err and "Traceback" not in err


def test_sc2bench_import_of_a_checkpoint_that_is_not_a_dict(tmp_path, capsys):
    for content in ([1, 2], {"model": [torch.zeros(1)]}, {"model": {"fc.weight": 3}}):
        ckpt = tmp_path / "ckpt.pt"
        torch.save(content, ckpt)
        assert sc2bench_import([str(ckpt), str(tmp_path / "w.safetensors"), "--family", "factorized"]) == 2
        err = capsys.readouterr().err
        _one_line(2, err, str(ckpt), None, "expected a state dict")
        assert not (tmp_path / "w.safetensors").exists()


def test_a_run_deletes_nothing_of_its_neighbours_under_out(run_cli, tmp_path):
    out = tmp_path / "out"
    neighbours = [out / f".{FACTORIZED.stem}.backup" / "summary.parquet",
                  out / f".{FACTORIZED.stem}.old.abcd1234" / "notes.txt", out / "README.md"]
    for path in neighbours:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("precious")
    code, _, err = run_cli("evaluate", FACTORIZED, "--out", out, "--limit", "4", "--no-progress",
                           "-c", "corruption.snow", "--cache-dir", tmp_path / "cache")
    assert code == 0, err
    assert all(p.read_text() == "precious" for p in neighbours)
    assert (out / FACTORIZED.stem / "summary.parquet").is_file()

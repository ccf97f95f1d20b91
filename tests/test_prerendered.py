"""Pre-rendered corruption sets (CIFAR-10-C, ImageNet-C) as the corruption cells' source, on fake data in
their published on-disk formats: the coded pixels are the files' pixels, rows are labelled by source, the
two sources never share a cell, rendered cells keep their keys, and mistakes are one error line."""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import FACTORIZED
from PIL import Image
from test_tracks import cifar_pins, edit, manifests, one_error_line, write_cifar, write_imagenet  # noqa: F401

from erbench.cells import Cell
from erbench.codec import measure
from erbench.data.datasets import load_dataset
from erbench.engine.plan import condition_version, make_plan
from erbench.engine.store import KEY_META, PARTS
from erbench.models.loader import load_model
from erbench.spec import load_submission

N = 20  # fake CIFAR-10 test images
FOG = "corruption.fog"


def write_cifar10c(croot: Path, labels, names=("fog", "snow"), n: int = N) -> dict[str, np.ndarray]:
    """CIFAR-10-C as published: labels.npy (5n,) and <name>.npy (5n, 32, 32, 3) uint8, severities 1-5 in order."""
    folder = croot / "CIFAR-10-C"
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "labels.npy", np.tile(np.asarray(labels, dtype=np.uint8), 5))
    rng = np.random.default_rng(2)
    arrays = {name: rng.integers(0, 256, (5 * n, 32, 32, 3), dtype=np.uint8) for name in names}
    for name, array in arrays.items():
        np.save(folder / f"{name}.npy", array)
    return arrays


@pytest.fixture
def cifar(manifests, copy_submission, tmp_path):  # noqa: F811
    root, croot = tmp_path / "data", tmp_path / "corruptions"
    _, labels = write_cifar(root, N)
    cifar_pins(manifests, root, N)
    arrays = write_cifar10c(croot, labels)
    spec = copy_submission(FACTORIZED)
    edit(spec, lambda s: s.__setitem__("dataset", "cifar10"))
    return spec, root, croot, arrays


def _run(run_cli, spec, root, out, *extra):
    return run_cli("evaluate", spec, "--data-root", root, "--out", out, "--quick", "-c", FOG, "--limit", "8",
                   "--no-progress", *extra)


def test_cifar10c_rows_code_the_files_pixels(run_cli, cifar, tmp_path):
    spec, root, croot, _ = cifar
    out = tmp_path / "out"
    code, _, err = _run(run_cli, spec, root, out, "--corruption-source", "prerendered", "--corruption-root", croot)
    assert code == 0, err
    rows = pd.read_parquet(out / spec.stem / "per_image.parquet")
    fog = rows[rows["condition"] == FOG]
    assert len(fog) == 5 * 8 and set(fog["corruption_source"]) == {"CIFAR-10-C"}
    assert set(fog["corruption_sha256"]) == {hashlib.sha256((croot / "CIFAR-10-C" / "fog.npy").read_bytes()).hexdigest()}
    assert rows.loc[rows["kind"] != "corruption", ["corruption_source", "corruption_sha256"]].isna().all().all()
    # what was coded: the file's rows (s - 1) * N + i, read here with numpy, coded independently
    sub = load_submission(spec)
    model = load_model(sub, spec)
    clean = rows[rows["condition"] == "clean"].sort_values("image_index")
    for severity, group in fog.groupby("severity"):
        group = group.sort_values("image_index")
        pixels = np.load(croot / "CIFAR-10-C" / "fog.npy")[(int(severity) - 1) * N + group["image_index"].to_numpy()]
        m = measure(model, pixels)
        np.testing.assert_array_equal(group["bits_coded"], m["bits_coded"])
        np.testing.assert_array_equal(group["pred"], m["pred"])
        reference = load_dataset("cifar10", root=root).images[group["image_index"].to_numpy()]
        linf = np.abs(pixels.astype(float) - reference.astype(float)).reshape(len(pixels), -1).max(1) / 255
        np.testing.assert_allclose(group["perturbation_linf"], linf)
    summary = pd.read_parquet(out / spec.stem / "summary.parquet")
    assert set(summary.loc[summary["kind"] == "corruption", "corruption_source"]) == {"CIFAR-10-C"}
    assert len(clean) == 8 and summary["schema_version"].eq("3").all()


def test_rendered_and_prerendered_runs_never_share_a_cell(run_cli, cifar, tmp_path):
    spec, root, croot, _ = cifar
    out = tmp_path / "out"
    prerendered = ("--corruption-source", "prerendered", "--corruption-root", croot)
    assert _run(run_cli, spec, root, out, "--cache-dir", tmp_path / "cache")[0] == 0
    rendered = pd.read_parquet(out / spec.stem / "summary.parquet")
    assert set(rendered.loc[rendered["kind"] == "corruption", "corruption_source"]) == {"imagecorruptions"}
    code, stdout, err = _run(run_cli, spec, root, out, *prerendered)
    assert code == 0 and "(5 of 6 computed now)" in stdout, err  # clean is shared, the fog cells are not
    assert len(list((out / spec.stem / PARTS).glob("*.parquet"))) == 11
    summary = pd.read_parquet(out / spec.stem / "summary.parquet")
    assert set(summary.loc[summary["kind"] == "corruption", "corruption_source"]) == {"CIFAR-10-C"}
    assert not np.array_equal(summary.loc[summary["kind"] == "corruption", "bits_coded_mean"],
                              rendered.loc[rendered["kind"] == "corruption", "bits_coded_mean"])
    for args in ((), prerendered):  # each source resumes from its own parts
        code, stdout, err = _run(run_cli, spec, root, out, "--cache-dir", tmp_path / "cache", *args)
        assert code == 0 and "(0 of 6 computed now)" in stdout, err


def test_rendered_cell_keys_are_those_of_schema_2():
    identity = {"protocol": "erbench-v2", "submission_id": "s", "spec_sha256": "a", "defense": "none",
                "dataset": "digits", "dataset_sha256": "b", "images": [0, 8], "device": "cpu"}
    cells = (Cell("clean"), Cell(FOG, severity=2), Cell("attack.noise", norm="linf", eps=8 / 255),
             Cell(FOG, severity=2, corruption_source="CIFAR-10-C"))
    plan = make_plan(identity, cells)
    old_fields = ("condition", "severity", "norm", "eps", "variant", "steps", "seed")
    for task in plan.tasks[:3]:  # erbench <= schema 2: the 7 cell fields, schema_version "2" in the identity
        blob = {**identity, "schema_version": "2", "cell": {k: asdict(task.cell)[k] for k in old_fields},
                "condition_version": condition_version(task.cell)}
        assert task.key == hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest(), task.cell
    assert plan.tasks[3].key != plan.tasks[1].key
    assert Cell(FOG, severity=2) == Cell(FOG, severity=2, corruption_source="imagecorruptions")
    with pytest.raises(ValueError, match="only corruption cells"):
        Cell("clean", corruption_source="CIFAR-10-C")


def test_a_schema_2_part_resumes_and_is_upgraded(run_cli, cifar, tmp_path):
    spec, root, croot, _ = cifar
    out = tmp_path / "out"
    assert _run(run_cli, spec, root, out, "--cache-dir", tmp_path / "cache")[0] == 0
    before = pd.read_parquet(out / spec.stem / "per_image.parquet")
    for part in (out / spec.stem / PARTS).glob("*.parquet"):  # rewritten as erbench wrote them in schema 2
        table = pq.read_table(part)
        table = table.drop_columns(["corruption_source", "corruption_sha256"])
        table = table.set_column(table.schema.get_field_index("schema_version"), "schema_version",
                                 pa.array(["2"] * len(table)))
        key = table.schema.metadata[KEY_META].decode()
        staging = part.parent / "rewrite.tmp"
        pq.write_table(table, staging)
        part.unlink()
        staging.rename(part.parent / f"{key}.{hashlib.sha256(staging.read_bytes()).hexdigest()[:16]}.parquet")
    code, stdout, err = _run(run_cli, spec, root, out, "--cache-dir", tmp_path / "cache")
    assert code == 0 and "(0 of 6 computed now)" in stdout, err
    after = pd.read_parquet(out / spec.stem / "per_image.parquet")
    pd.testing.assert_frame_equal(after.drop(columns="created_utc"), before.drop(columns="created_utc"))


# --- ImageNet-C ------------------------------------------------------------------------------------------


def write_imagenetc(croot: Path, files: list[str], corruption: str = "fog") -> None:
    """ImageNet-C as published: 224x224 JPEGs in <corruption>/<severity>/<wnid>/ for severities 1-5."""
    rng = np.random.default_rng(3)
    for severity in range(1, 6):
        for name in files:
            path = croot / "ImageNet-C" / corruption / str(severity) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            coarse = rng.integers(0, 256, (15, 15, 3), dtype=np.uint8)
            Image.fromarray(coarse).resize((224, 224), Image.BICUBIC).save(path, "JPEG", quality=85)


@pytest.fixture
def imagenet(run_cli, manifests, copy_submission, tmp_path):  # noqa: F811
    root, croot = tmp_path / "val", tmp_path / "corruptions"
    files = write_imagenet(root, manifests)
    assert run_cli("data", "lock", "imagenet-val-5k", "--root", root)[0] == 0
    write_imagenetc(croot, files)
    spec = copy_submission(FACTORIZED)
    edit(spec, lambda s: s.__setitem__("dataset", "imagenet-val-5k"))
    return spec, root, croot, files


def test_imagenetc_rows_code_the_jpegs_as_they_are(run_cli, imagenet, tmp_path, monkeypatch):
    from erbench.models import blocks

    spec, root, croot, files = imagenet
    monkeypatch.setattr(blocks.rowwise, "__kwdefaults__", {"rows": len(files)})  # 7 rows, not 64: speed only
    out = tmp_path / "out"
    code, _, err = run_cli("evaluate", spec, "--data-root", root, "--out", out, "--quick", "-c", FOG,
                           "--no-progress", "--corruption-source", "prerendered", "--corruption-root", croot)
    assert code == 0, err
    rows = pd.read_parquet(out / spec.stem / "per_image.parquet")
    fog = rows[rows["condition"] == FOG]
    assert len(fog) == 5 * len(files) and set(fog["corruption_source"]) == {"ImageNet-C"}
    model = load_model(load_submission(spec), spec)
    for severity, group in fog.groupby("severity"):
        directory = croot / "ImageNet-C" / "fog" / str(int(severity))
        group = group.sort_values("image_index")
        pixels = np.stack([np.asarray(Image.open(directory / files[i]).convert("RGB")) for i in group["image_index"]])
        assert pixels.shape == (len(files), 224, 224, 3)
        m = measure(model, pixels)
        np.testing.assert_array_equal(group["bits_coded"], m["bits_coded"])
        listing = subprocess.run(["sha256sum", *files], cwd=directory, capture_output=True, check=True).stdout
        assert set(group["corruption_sha256"]) == {hashlib.sha256(listing).hexdigest()}


def test_robustbench_loaders_give_the_same_pixels(tmp_path):
    """erbench reads the files itself (robustbench's CIFAR-10-C loader assumes 10,000 images and downloads
    when the folder is missing; its ImageNet-C loader needs all 1,000 class folders and loads 5,000 images
    at once): on files of the published sizes, robustbench's x / 255 gives back erbench's uint8 exactly."""
    import torch

    from erbench.conditions.prerendered import read_cifar10c, read_imagenetc
    from erbench.data.manifest import MANIFEST_DIR
    from erbench.data.robustbench_compat import import_robustbench

    k = torch.arange(256, dtype=torch.uint8)  # torchvision ToTensor: float32 k / 255
    assert torch.equal((k.float().div(255) * 255).round().to(torch.uint8), k)

    rb = import_robustbench()
    from robustbench.loaders import CustomImageFolder
    from torchvision import transforms

    n_total, used = 10000, 6
    folder = tmp_path / "CIFAR-10-C"
    folder.mkdir()
    rng = np.random.default_rng(4)
    labels = np.tile(rng.integers(0, 10, n_total).astype(np.uint8), 5)
    np.save(folder / "labels.npy", labels)
    full = np.lib.format.open_memmap(folder / "fog.npy", mode="w+", dtype=np.uint8, shape=(5 * n_total, 32, 32, 3))
    for s in range(5):  # the rows compared; the rest of the file stays zero (sparse)
        full[s * n_total:s * n_total + used] = rng.integers(0, 256, (used, 32, 32, 3), dtype=np.uint8)
    full.flush()
    del full
    for severity in (1, 4):
        x, y = rb.data.load_cifar10c(used, severity, str(tmp_path), corruptions=["fog"])
        ours, _ = read_cifar10c(tmp_path, Cell(FOG, severity=severity), np.arange(used), n_total)
        np.testing.assert_array_equal((x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy(), ours)
        assert y.tolist() == labels[:used].tolist()

    classes = (MANIFEST_DIR / "imagenet-classes.txt").read_text().split()
    files = (MANIFEST_DIR / "imagenet-val-5k.txt").read_text().splitlines()[:3]
    write_imagenetc(tmp_path, files)
    directory = tmp_path / "ImageNet-C" / "fog" / "2"
    for wnid in classes:
        (directory / wnid).mkdir(exist_ok=True)
    reference = CustomImageFolder(str(directory), transforms.ToTensor())
    ours, _ = read_imagenetc(tmp_path, Cell(FOG, severity=2), files, (224, 224))
    for i in range(len(files)):
        x, y, path = reference[i]
        assert Path(path) == directory / files[i] and y == classes.index(files[i].split("/")[0])
        np.testing.assert_array_equal((x * 255).round().to(torch.uint8).permute(1, 2, 0).numpy(), ours[i])


# --- mistakes: one line, exit 2, nothing written -----------------------------------------------------------


@pytest.mark.parametrize("case", ["no root", "no CIFAR-10-C", "missing corruption", "wrong labels", "short file"])
def test_cifar10c_mistakes_are_one_line(run_cli, cifar, tmp_path, monkeypatch, case):
    spec, root, croot, _ = cifar
    monkeypatch.delenv("ERBENCH_DATA_CIFAR_10_C", raising=False)
    args = ["--corruption-source", "prerendered"]
    conditions = FOG
    if case != "no root":
        args += ["--corruption-root", tmp_path if case == "no CIFAR-10-C" else croot]
    if case == "missing corruption":
        conditions = "corruption.frost"
    if case == "wrong labels":
        labels = np.load(croot / "CIFAR-10-C" / "labels.npy")
        labels[3 * N + 1] = (labels[3 * N + 1] + 1) % 10
        np.save(croot / "CIFAR-10-C" / "labels.npy", labels)
    if case == "short file":
        np.save(croot / "CIFAR-10-C" / "fog.npy", np.zeros((4 * N, 32, 32, 3), dtype=np.uint8))
    out = tmp_path / "out"
    code, _, err = run_cli("evaluate", spec, "--data-root", root, "--out", out, "--quick", "-c", conditions,
                           "--no-progress", *args)
    line = one_error_line(err)
    assert code == 2 and not out.exists()
    expected = {"no root": ["no corruption root given", "<root>/CIFAR-10-C/{labels.npy,<corruption>.npy}",
                            "--corruption-root", "ERBENCH_DATA_CIFAR_10_C"],
                "no CIFAR-10-C": ["no CIFAR-10-C directory here", "--corruption-root", "ERBENCH_DATA_CIFAR_10_C"],
                "missing corruption": ["no frost.npy", "<root>/CIFAR-10-C/frost.npy"],
                "wrong labels": ["labels.npy is not the cifar10 test labels"],
                "short file": ["(80, 32, 32, 3) uint8", "expected (100, 32, 32, 3) uint8"]}[case]
    for fragment in expected:
        assert fragment in line, line


def test_imagenetc_missing_file_and_digits_are_one_line(run_cli, imagenet, tmp_path):
    spec, root, croot, files = imagenet
    (croot / "ImageNet-C" / "fog" / "4" / files[2]).unlink()
    out = tmp_path / "out"
    code, _, err = run_cli("evaluate", spec, "--data-root", root, "--out", out, "--quick", "-c", FOG,
                           "--no-progress", "--corruption-source", "prerendered", "--corruption-root", croot)
    line = one_error_line(err)
    assert code == 2 and not out.exists() and str(croot / "ImageNet-C" / "fog" / "4" / files[2]) in line
    assert "<root>/ImageNet-C/<corruption>/<severity>/<wnid>/<file>.JPEG" in line and "--corruption-root" in line
    code, _, err = run_cli("evaluate", FACTORIZED, "--out", out, "--quick", "-c", FOG, "--no-progress",
                           "--corruption-source", "prerendered", "--corruption-root", croot)
    line = one_error_line(err)
    assert code == 2 and not out.exists() and "digits has no pre-rendered corruption set" in line

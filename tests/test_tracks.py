"""Real data tracks (CIFAR-10, ImageNet-val-5k) on fake data written in their exact on-disk formats.

The fake files are what the real ones are: a Python 2 protocol-2 pickle for CIFAR-10's test_batch,
PIL-written JPEGs (RGB, greyscale, CMYK; several sizes) in ImageNet's class folders. Committed
manifests are never touched: tests point $ERBENCH_MANIFESTS at copies pinning the fake files.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import FACTORIZED
from PIL import Image

from erbench.data.datasets import load_dataset
from erbench.data.local import env_var, lock_path
from erbench.data.manifest import MANIFEST_DIR, MANIFESTS_ENV, arrays_sha256
from erbench.errors import ErbenchError

CIFAR_MD5 = "40351d587109b95175f43aff81a1287e"
IMAGENET_LIST = (MANIFEST_DIR / "imagenet-val-5k.txt").read_text().splitlines()


class Py2Pickler(pickle._Pickler):
    """Pickles as Python 2's cPickle did: every string (str or bytes) as a byte string (BINSTRING)."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj):
        data = obj.encode("latin-1") if isinstance(obj, str) else obj
        head = pickle.SHORT_BINSTRING + bytes([len(data)]) if len(data) < 256 else pickle.BINSTRING + struct.pack(
            "<i", len(data))
        self.write(head + data)
        self.memoize(obj)

    dispatch[str] = save_py2_str
    dispatch[bytes] = save_py2_str


def py2_pickle(obj) -> bytes:
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def manifests(tmp_path, monkeypatch):
    """A copy of data_manifests/ in use ($ERBENCH_MANIFESTS), no data-root variable set."""
    directory = tmp_path / "manifests"
    shutil.copytree(MANIFEST_DIR, directory)
    monkeypatch.setenv(MANIFESTS_ENV, str(directory))
    for track in ("cifar10", "imagenet-val-5k"):
        monkeypatch.delenv(env_var(track), raising=False)
    return directory


def edit(path: Path, mutate) -> None:
    spec = yaml.safe_load(path.read_text())
    mutate(spec)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))


def cifar_pins(manifests: Path, root: Path, n: int) -> None:
    def pin(m):
        m["local"]["md5"] = {"cifar-10-batches-py/test_batch": md5(root / "cifar-10-batches-py" / "test_batch")}
        m["split"]["test"] = n

    edit(manifests / "cifar10.yaml", pin)


def write_cifar(root: Path, n: int = 20) -> tuple[np.ndarray, list[int]]:
    """A CIFAR-10 python test_batch (and batches.meta) with n random images."""
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = [int(x) for x in rng.integers(0, 10, n)]
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    batch = {"data": data, "labels": labels, "batch_label": "testing batch 1 of 1",
             "filenames": [f"img_{i}.png" for i in range(n)]}
    (folder / "test_batch").write_bytes(py2_pickle(batch))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta").write_bytes(py2_pickle({"label_names": names, "num_cases_per_batch": 10000}))
    return data, labels


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in stderr, stderr
    assert "..." not in lines[0], f"cut by ErbenchError.line(): {lines[0]}"
    return lines[0]


# --- CIFAR-10 ----------------------------------------------------------------------------------------


def test_cifar_decodes_as_torchvision_and_by_hand(manifests, tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR10

    root = tmp_path / "data"
    data, labels = write_cifar(root)
    cifar_pins(manifests, root, 20)
    monkeypatch.setenv("ERBENCH_DATA_CIFAR10", str(root))  # the variable, no --data-root
    dataset = load_dataset("cifar10")
    by_hand = np.stack([data[:, c * 1024:(c + 1) * 1024].reshape(-1, 32, 32) for c in range(3)], axis=-1)
    np.testing.assert_array_equal(dataset.images, by_hand)
    np.testing.assert_array_equal(dataset.labels, labels)
    assert dataset.sha256 == arrays_sha256(by_hand, np.array(labels))
    # torchvision's own reader, its checksums pointed at the fake files (it checks the train batches too)
    monkeypatch.setattr(CIFAR10, "train_list", [])
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", md5(root / "cifar-10-batches-py" / "test_batch")]])
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": md5(root / "cifar-10-batches-py" / "batches.meta")})
    reference = CIFAR10(str(root), train=False, download=False)
    np.testing.assert_array_equal(dataset.images, reference.data)
    assert reference.targets == labels and reference.classes[0] == "airplane"


class _Creates:
    """Unpickling this creates ``path`` (as a malicious test_batch would run any code)."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return open, (str(self.path), "w")


def test_cifar_checksum_is_checked_before_unpickling(run_cli, manifests, tmp_path):
    root = tmp_path / "data"
    (root / "cifar-10-batches-py").mkdir(parents=True)
    batch = root / "cifar-10-batches-py" / "test_batch"
    marker = tmp_path / "pwned"
    batch.write_bytes(py2_pickle({"data": _Creates(marker)}))
    code, _, err = run_cli("data", "verify", "cifar10", "--root", root)
    line = one_error_line(err)
    assert code == 2 and str(batch) in line and "md5 mismatch" in line
    assert CIFAR_MD5 in line and md5(batch) in line
    assert not marker.exists()


def test_malicious_pickle_with_the_pinned_md5_runs_no_code(manifests, tmp_path):
    root = tmp_path / "data"
    (root / "cifar-10-batches-py").mkdir(parents=True)
    marker, control = tmp_path / "pwned", tmp_path / "control"
    (root / "cifar-10-batches-py" / "test_batch").write_bytes(py2_pickle({"data": _Creates(marker)}))
    cifar_pins(manifests, root, 20)
    with pytest.raises(ErbenchError, match=r"global 'io\.open' is not allowed"):
        load_dataset("cifar10", root=root)
    assert not marker.exists()
    pickle.loads(py2_pickle({"data": _Creates(control)}))  # the same payload runs when unrestricted
    assert control.exists()


def _cifar_submission(copy_submission) -> Path:
    spec = copy_submission(FACTORIZED)
    edit(spec, lambda s: s.__setitem__("dataset", "cifar10"))
    return spec


@pytest.mark.parametrize("case", ["unset", "not a directory", "wrong layout"])
def test_data_root_errors_are_one_line(run_cli, manifests, copy_submission, tmp_path, case):
    spec = _cifar_submission(copy_submission)
    root = {"unset": None, "not a directory": tmp_path / "nowhere", "wrong layout": tmp_path}[case]
    out = tmp_path / "out"
    args = ("--data-root", root) if root is not None else ()
    code, _, err = run_cli("evaluate", spec, "--out", out, "--limit", "8", "--no-progress", *args)
    line = one_error_line(err)
    assert code == 2 and not out.exists()
    for fragment in ("cifar10", "<root>/cifar-10-batches-py/test_batch", "--data-root", "ERBENCH_DATA_CIFAR10"):
        assert fragment in line, line
    assert {"unset": "no data root", "not a directory": "not a directory", "wrong layout": "test_batch is not here"}[
        case] in line
    code, _, err = run_cli("check", spec, *args)  # the pre-submission check says the same
    assert code == 2 and "ERBENCH_DATA_CIFAR10" in one_error_line(err)


def test_cifar_submission_end_to_end(run_cli, manifests, copy_submission, tmp_path):
    import pandas as pd

    root = tmp_path / "data"
    data, labels = write_cifar(root)
    cifar_pins(manifests, root, 20)
    spec = _cifar_submission(copy_submission)
    out = tmp_path / "out"
    common = ("--out", out, "--quick", "-c", "corruption.snow", "--limit", "8", "--no-progress",
              "--cache-dir", tmp_path / "cache")
    code, stdout, err = run_cli("evaluate", spec, "--data-root", root, *common)
    assert code == 0, err
    summary = pd.read_parquet(out / spec.stem / "summary.parquet")
    assert set(summary["dataset"]) == {"cifar10"} and (summary["n_images"] == 8).all()
    by_hand = np.stack([data[:, c * 1024:(c + 1) * 1024].reshape(-1, 32, 32) for c in range(3)], axis=-1)
    assert set(summary["dataset_sha256"]) == {arrays_sha256(by_hand, np.array(labels))}
    # the same data elsewhere: the data root is in no cell key, every cell is committed already
    shutil.copytree(root, tmp_path / "elsewhere")
    code, stdout, err = run_cli("evaluate", spec, "--data-root", tmp_path / "elsewhere", *common)
    assert code == 0 and f"(0 of {len(summary)} computed now)" in stdout, err


# --- ImageNet-val-5k -----------------------------------------------------------------------------------

# (width, height, mode): landscape, portrait, greyscale, CMYK, exactly 256, smaller than the crop, odd sides
FAKE_IMAGES = [(500, 375, "RGB"), (375, 500, "RGB"), (333, 500, "L"), (500, 333, "CMYK"), (256, 256, "RGB"),
               (180, 120, "RGB"), (301, 257, "RGB")]


def write_imagenet(root: Path, manifests: Path) -> list[str]:
    """JPEGs for the first listed files, and a manifest selecting just those."""
    rng = np.random.default_rng(1)
    files = IMAGENET_LIST[:len(FAKE_IMAGES)]
    for name, (w, h, mode) in zip(files, FAKE_IMAGES):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        coarse = rng.integers(0, 256, (h // 16 + 1, w // 16 + 1, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize((w, h), Image.BICUBIC)
        image.convert(mode).save(path, "JPEG", quality=90)
    (manifests / "fake-5k.txt").write_text("\n".join(files))

    def select(m):
        m["local"]["images"] = {"file": "fake-5k.txt", "sha256": hashlib.sha256(
            (manifests / "fake-5k.txt").read_bytes()).hexdigest()}
        m["split"]["test"] = len(files)

    edit(manifests / "imagenet-val-5k.yaml", select)
    return files


def test_imagenet_lock_then_load_matches_torchvision(run_cli, manifests, tmp_path):
    from torchvision import transforms

    root = tmp_path / "val"
    files = write_imagenet(root, manifests)
    code, stdout, err = run_cli("data", "lock", "imagenet-val-5k", "--root", root)
    assert code == 0, err
    lock = json.loads(lock_path("imagenet-val-5k").read_text())
    assert lock_path("imagenet-val-5k").parent == manifests
    assert lock["files"] == {f: hashlib.sha256((root / f).read_bytes()).hexdigest() for f in files}
    assert list(lock["files"]) == files  # image_index order

    dataset = load_dataset("imagenet-val-5k", root=root)
    reference = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224)])
    for i, name in enumerate(files):
        with Image.open(root / name) as image:
            expected = np.asarray(reference(image.convert("RGB")))
        np.testing.assert_array_equal(dataset.images[i], expected, err_msg=name)
    classes = (MANIFEST_DIR / "imagenet-classes.txt").read_text().split()
    assert dataset.labels.tolist() == [classes.index(f.split("/")[0]) for f in files]
    assert lock["arrays_sha256"] == dataset.sha256 and dataset.sha256 in stdout


def test_imagenet_verification_names_the_file(run_cli, manifests, tmp_path):
    root = tmp_path / "val"
    files = write_imagenet(root, manifests)
    code, _, err = run_cli("data", "verify", "imagenet-val-5k", "--root", root)
    assert code == 2 and "erbench data lock imagenet-val-5k --root DIR" in one_error_line(err)
    assert run_cli("data", "lock", "imagenet-val-5k", "--root", root)[0] == 0

    tampered = root / files[3]
    good = tampered.read_bytes()
    tampered.write_bytes(good[:-1] + b"\0")
    code, _, err = run_cli("data", "verify", "imagenet-val-5k", "--root", root)
    line = one_error_line(err)
    assert code == 2 and str(tampered) in line and "sha256 mismatch" in line
    tampered.write_bytes(good)

    (root / files[5]).unlink()
    code, _, err = run_cli("data", "verify", "imagenet-val-5k", "--root", root)
    line = one_error_line(err)
    assert code == 2 and str(root / files[5]) in line and "missing" in line

    code, _, err = run_cli("data", "verify", "imagenet-val-5k", "--root", tmp_path)  # the parent: wrong layout
    line = one_error_line(err)
    assert code == 2 and "<root>/<wnid>/ILSVRC2012_val_<8 digits>.JPEG" in line
    assert "--data-root" in line and "ERBENCH_DATA_IMAGENET_VAL_5K" in line


def test_imagenet_another_decoder_is_detected(run_cli, manifests, tmp_path):
    root = tmp_path / "val"
    write_imagenet(root, manifests)
    assert run_cli("data", "lock", "imagenet-val-5k", "--root", root)[0] == 0
    path = lock_path("imagenet-val-5k")
    lock = json.loads(path.read_text())
    path.write_text(json.dumps({**lock, "arrays_sha256": "0" * 64, "decoder": "another decoder"}))
    with pytest.raises(ErbenchError, match="decoded arrays sha256 mismatch.*locked with another decoder"):
        load_dataset("imagenet-val-5k", root=root)
    edit(manifests / "imagenet-val-5k.yaml", lambda m: m.__setitem__("title", "changed"))
    with pytest.raises(ErbenchError, match="another version of imagenet-val-5k.yaml"):
        load_dataset("imagenet-val-5k", root=root)


# --- committed manifests -----------------------------------------------------------------------------


def test_committed_imagenet_lists_are_robustbench_s():
    from importlib.util import find_spec

    helpers = Path(find_spec("robustbench").submodule_search_locations[0]) / "helper_files"  # not imported
    assert (MANIFEST_DIR / "imagenet-val-5k.txt").read_bytes() == (helpers / "imagenet_test_image_ids.txt").read_bytes()
    class_to_id = json.loads((helpers / "imagenet_class_to_id_map.json").read_text())
    classes = (MANIFEST_DIR / "imagenet-classes.txt").read_text().splitlines()
    assert classes == sorted(class_to_id) and [class_to_id[c] for c in classes] == list(range(1000))
    assert len(IMAGENET_LIST) == len(set(IMAGENET_LIST)) == 5000


def test_committed_real_tracks_are_pinned():
    from erbench.data.manifest import load_manifest

    cifar, imagenet = load_manifest("cifar10"), load_manifest("imagenet-val-5k")
    assert cifar.local.md5 == {"cifar-10-batches-py/test_batch": CIFAR_MD5} and not cifar.local.lock
    assert imagenet.local.lock and imagenet.split.test == 5000 and imagenet.num_classes == 1000
    assert (cifar.image_size, imagenet.image_size) == ((32, 32), (224, 224))

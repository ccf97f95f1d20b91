"""Each user mistake: one clear line naming file and field, exit code 2, nothing written."""

from __future__ import annotations

import pytest
import torch
import yaml
from conftest import FACTORIZED, HYPERPRIOR
from safetensors.torch import load_file, save_file

from erbench.models.loader import file_sha256


def _edit(path, mutate):
    spec = yaml.safe_load(path.read_text())
    mutate(spec)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))


def _expect_error(run_cli, spec, out, *fragments, extra=("-c", "corruption.snow")):
    code, stdout, stderr = run_cli("evaluate", spec, "--out", out, "--limit", "8", "--no-progress", *extra)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in stderr
    assert not out.exists() or not any(out.iterdir()), "nothing may be written on error"
    return lines[0]


def test_malformed_yaml(run_cli, copy_submission, tmp_path):
    spec = copy_submission()
    spec.write_text(spec.read_text() + "model: [unclosed\n")
    _expect_error(run_cli, spec, tmp_path / "out", str(spec), "malformed YAML", "line")


def test_duplicate_key(run_cli, copy_submission, tmp_path):
    spec = copy_submission()
    spec.write_text(spec.read_text() + "beta: 0.5\n")
    _expect_error(run_cli, spec, tmp_path / "out", "duplicate key 'beta'")


def test_misspelled_key_suggests_the_right_one(run_cli, copy_submission, tmp_path):
    spec = copy_submission()
    _edit(spec, lambda s: s.__setitem__("entropy_modle", s.pop("entropy_model")))
    _expect_error(run_cli, spec, tmp_path / "out", "entropy_modle", "did you mean 'entropy_model'")


def test_misspelled_nested_key(run_cli, copy_submission, tmp_path):
    spec = copy_submission()
    _edit(spec, lambda s: s["weights"].__setitem__("sha", s["weights"].pop("sha256")))
    _expect_error(run_cli, spec, tmp_path / "out", "weights.sha", "did you mean 'sha256'")


def test_wrong_type(run_cli, copy_submission, tmp_path):
    spec = copy_submission()
    _edit(spec, lambda s: s.__setitem__("beta", "large"))
    _expect_error(run_cli, spec, tmp_path / "out", "beta", "'large'")


def test_unknown_architecture_suggests_nearest(run_cli, copy_submission, tmp_path):
    spec = copy_submission()
    _edit(spec, lambda s: s["model"].__setitem__("architecture", "small_cnn_factorised"))
    _expect_error(run_cli, spec, tmp_path / "out", "model.architecture", "did you mean 'small_cnn_factorized'")


def test_unknown_architecture_argument(run_cli, copy_submission, tmp_path):
    spec = copy_submission()
    _edit(spec, lambda s: s["model"].__setitem__("kwargs", {"latent_chanels": 16}))
    _expect_error(run_cli, spec, tmp_path / "out", "model.kwargs.latent_chanels", "did you mean 'latent_channels'")


def test_family_contradicts_architecture(run_cli, copy_submission, tmp_path):
    spec = copy_submission()
    _edit(spec, lambda s: s.__setitem__("entropy_model", "hyperprior"))
    _expect_error(run_cli, spec, tmp_path / "out", "entropy_model", "contradicts", "factorized")


def test_unknown_dataset(run_cli, copy_submission, tmp_path):
    spec = copy_submission()
    _edit(spec, lambda s: s.__setitem__("dataset", "digit"))
    _expect_error(run_cli, spec, tmp_path / "out", "dataset", "did you mean 'digits'")


def test_id_must_match_file_name(run_cli, copy_submission, tmp_path):
    spec = copy_submission()
    _edit(spec, lambda s: s.__setitem__("id", "something_else"))
    _expect_error(run_cli, spec, tmp_path / "out", "id", "file name")


def test_missing_weights_file(run_cli, copy_submission, tmp_path):
    spec = copy_submission()
    spec.with_suffix(".safetensors").unlink()
    _expect_error(run_cli, spec, tmp_path / "out", "weights.file", "not found")


def test_weights_checksum_mismatch_prints_both(run_cli, copy_submission, tmp_path):
    spec = copy_submission()
    weights = spec.with_suffix(".safetensors")
    expected = file_sha256(weights)
    weights.write_bytes(weights.read_bytes() + b" ")
    line = _expect_error(run_cli, spec, tmp_path / "out", "weights.sha256", expected, file_sha256(weights))
    assert "expected" in line


def test_weights_that_do_not_fit_name_the_tensor(run_cli, copy_submission, tmp_path):
    spec = copy_submission()
    weights = spec.with_suffix(".safetensors")
    tensors = load_file(str(weights))
    tensors["head.0.weight"] = torch.zeros(8, 3, 5, 5)
    save_file(tensors, str(weights))
    _edit(spec, lambda s: s["weights"].__setitem__("sha256", file_sha256(weights)))
    _expect_error(run_cli, spec, tmp_path / "out", "head.0.weight", "(8, 3, 5, 5)", "expected (32, 3, 5, 5)")


def test_weights_of_another_architecture(run_cli, copy_submission, tmp_path):
    spec = copy_submission()
    hp_weights = HYPERPRIOR.with_suffix(".safetensors")
    weights = spec.with_suffix(".safetensors")
    weights.write_bytes(hp_weights.read_bytes())
    _edit(spec, lambda s: s["weights"].__setitem__("sha256", file_sha256(weights)))
    _expect_error(run_cli, spec, tmp_path / "out", "do not fit")


def test_condition_filter_that_matches_nothing(run_cli, tmp_path):
    out = tmp_path / "out"
    _expect_error(run_cli, FACTORIZED, out, "--conditions", "matches no condition", extra=("-c", "corruption.snoww"))


def test_missing_submission_file(run_cli, tmp_path):
    _expect_error(run_cli, tmp_path / "nope.yaml", tmp_path / "out", "nope.yaml", "file not found")


def test_non_finite_outputs_name_condition_and_count(run_cli, copy_submission, tmp_path):
    """Finite weights (non-finite ones are refused at loading: test_hostile.py) whose logits overflow."""
    spec = copy_submission()
    weights = spec.with_suffix(".safetensors")
    tensors = load_file(str(weights))
    tensors["tail.6.weight"] = torch.full_like(tensors["tail.6.weight"], 3e38)
    save_file(tensors, str(weights))
    _edit(spec, lambda s: s["weights"].__setitem__("sha256", file_sha256(weights)))
    _expect_error(run_cli, spec, tmp_path / "out", "NaN/Inf", "clean", "8 of 8 images")


def test_existing_results_survive_a_failed_run(run_cli, copy_submission, tmp_path):
    spec = copy_submission()
    out = tmp_path / "out"
    code, _, err = run_cli("evaluate", spec, "--out", out, "--limit", "8", "--no-progress", "-c", "corruption.fog")
    assert code == 0, err
    before = (out / spec.stem / "summary.parquet").read_bytes()
    spec.with_suffix(".safetensors").write_bytes(b"garbage")
    code, _, err = run_cli("evaluate", spec, "--out", out, "--limit", "8", "--no-progress")
    assert code == 2 and "sha256 mismatch" in err
    assert (out / spec.stem / "summary.parquet").read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == [spec.stem]


@pytest.mark.parametrize("device", ["tpu:0"])
def test_unusable_device(run_cli, tmp_path, device):
    _expect_error(run_cli, FACTORIZED, tmp_path / "out", "--device", extra=("--device", device, "-c", "corruption.snow"))

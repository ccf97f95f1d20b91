"""The reference zoo: every entry is committed, and retraining reproduces the weights bit for bit."""

from __future__ import annotations

import pytest
from conftest import REFERENCE

from erbench.models.loader import file_sha256
from erbench.spec import load_submission
from erbench.zoo import ZOO, build_entry, write_entry


def test_every_zoo_entry_is_committed_and_vice_versa():
    assert set(ZOO) == set(REFERENCE)


@pytest.mark.parametrize("name", list(ZOO))
def test_committed_yaml_matches_its_recipe(name):
    sub, entry = load_submission(REFERENCE[name]), ZOO.get(name)
    assert (sub.model.architecture, sub.beta, sub.entropy_model) == (entry.architecture, entry.recipe.beta, entry.family)
    assert sub.training == f"erbench zoo train {name}"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["digits_small_cnn_fp_b1e-3", "digits_small_cnn_hp_b1e-4"])
def test_retraining_is_bit_identical(name, tmp_path):
    entry = ZOO.get(name)
    path = write_entry(entry, build_entry(entry, progress=False), tmp_path)
    assert file_sha256(path.with_suffix(".safetensors")) == load_submission(REFERENCE[name]).weights.sha256

"""CONTRIBUTING.md's Python (build a registered architecture, save its weights, load them back
strictly) runs as written."""

from __future__ import annotations

import re

import pytest
from conftest import ROOT

from erbench.errors import ErbenchError
from erbench.models.architectures import ARCHITECTURES

BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "CONTRIBUTING.md").read_text(), re.S)


def test_contributing_python_runs(tmp_path, monkeypatch):
    assert BLOCKS
    monkeypatch.chdir(tmp_path)
    for block in BLOCKS:
        exec(compile(block, "CONTRIBUTING.md", "exec"), {})
    assert (tmp_path / "mymodel.safetensors").is_file()


def test_load_weights_of_another_architecture_names_the_tensor(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "hp.safetensors"
    save_file(ARCHITECTURES.get("small_cnn_hyperprior").build().weights(), str(path))
    with pytest.raises(ErbenchError, match="tensor 'entropy.gaussian.* is unexpected"):
        ARCHITECTURES.get("small_cnn_factorized").build().load_weights(path)

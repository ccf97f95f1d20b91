"""Build a submission's model and load its verified weights."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from erbench.errors import ErbenchError
from erbench.models.architectures import ARCHITECTURES
from erbench.models.split import SplitModel
from erbench.spec import Submission, weights_path


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_model(sub: Submission) -> SplitModel:
    model = ARCHITECTURES.get(sub.model.architecture).build(**sub.model.kwargs)
    model.set_preprocessing(list(sub.preprocessing.mean), list(sub.preprocessing.std))
    if sub.defense is not None:
        model.defense = sub.defense.build()
    return model


def _check_fit(model: SplitModel, tensors: dict[str, torch.Tensor], path: Path) -> None:
    expected = model.weights()
    for name, ref in expected.items():
        if name not in tensors:
            raise ErbenchError(f"weights do not fit the architecture: tensor '{name}' is missing", file=path)
        if tuple(tensors[name].shape) != tuple(ref.shape):
            raise ErbenchError(
                f"weights do not fit the architecture: tensor '{name}' has shape {tuple(tensors[name].shape)}, "
                f"expected {tuple(ref.shape)}",
                file=path,
            )
    extra = sorted(set(tensors) - set(expected))
    if extra:
        raise ErbenchError(f"weights do not fit the architecture: unexpected tensor '{extra[0]}'", file=path)


def load_model(sub: Submission, spec_path: str | Path, device: str = "cpu") -> SplitModel:
    """Verify the weights' sha256, load them strictly, and build the coder tables."""
    path = weights_path(sub, spec_path)
    if not path.is_file():
        raise ErbenchError(f"weights file not found: {path}", file=spec_path, field="weights.file")
    actual = file_sha256(path)
    if actual != sub.weights.sha256:
        raise ErbenchError(
            f"sha256 mismatch for {path.name}: expected {sub.weights.sha256}, got {actual}",
            file=spec_path, field="weights.sha256",
        )
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise ErbenchError(f"not a readable .safetensors file: {exc}", file=path) from None
    model = build_model(sub)
    _check_fit(model, tensors, path)
    model.load_state_dict(tensors, strict=False)
    model.to(device).eval()
    model.update()
    return model

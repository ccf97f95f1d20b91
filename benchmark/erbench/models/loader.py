"""Build a submission's model and load its verified weights.

Order (docs/submissions.md): the weights file's path, size, sha256, header and values (erbench.spec,
erbench.weights); the header's shapes against the architecture's, computed on fake tensors (nothing
allocated); only then the model is built and its coder tables derived.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_bytes
from torch._subclasses.fake_tensor import FakeTensorMode

from erbench.errors import ErbenchError
from erbench.models.architectures import ARCHITECTURES
from erbench.files import file_sha256  # noqa: F401  (re-exported: zoo, sc2bench_import)
from erbench.models.split import SplitModel
from erbench.spec import Submission, read_submission_weights

Shapes = dict[str, tuple[int, ...]]


def build_model(sub: Submission) -> SplitModel:
    model = ARCHITECTURES.get(sub.model.architecture).build(**sub.model.kwargs)
    model.set_preprocessing(list(sub.preprocessing.mean), list(sub.preprocessing.std))
    if sub.defense is not None:
        model.defense = sub.defense.build()
    return model


def expected_shapes(architecture: str, **kwargs) -> Shapes:
    """The shapes of the tensors a weights file of ``architecture`` holds, built on fake tensors."""
    builder = ARCHITECTURES.get(architecture).builder()  # imported outside the fake mode
    with FakeTensorMode(allow_non_fake_inputs=True):
        return {name: tuple(t.shape) for name, t in builder(**kwargs).weights().items()}


def check_fit(expected: Shapes, actual: Shapes, path: str | Path) -> None:
    """Every expected tensor present with its shape, and no other."""
    for name, shape in expected.items():
        if name not in actual:
            raise ErbenchError(f"weights do not fit the architecture: tensor '{name}' is missing", file=path)
        if tuple(actual[name]) != shape:
            raise ErbenchError(f"weights do not fit the architecture: tensor '{name}' has shape "
                               f"{tuple(actual[name])}, expected {shape}", file=path)
    extra = sorted(set(actual) - set(expected))
    if extra:
        raise ErbenchError(f"weights do not fit the architecture: unexpected tensor '{extra[0]}'", file=path)


def load_model(sub: Submission, spec_path: str | Path, device: str = "cpu") -> SplitModel:
    """Verify the weights (sha256, header, finite values, shapes), then build the model, load them
    strictly and build the coder tables."""
    weights, problems = read_submission_weights(sub, spec_path)
    if problems:
        raise problems[0]
    check_fit(expected_shapes(sub.model.architecture, **sub.model.kwargs), weights.shapes, weights.path)
    try:
        tensors = load_bytes(weights.data)
    except SafetensorError as exc:
        raise ErbenchError(f"not a readable .safetensors file: {exc}", file=weights.path) from None
    model = build_model(sub)
    model.load_state_dict(tensors, strict=False)
    model.to(device).eval()
    model.update()
    return model

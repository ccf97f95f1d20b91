"""Submission spec (``submissions/**/<id>.yaml``): typed schema, strict YAML loading, clear errors.

Every check that needs no torch lives here (``erbench validate``); docs/submissions.md lists them in order.
"""

from __future__ import annotations

import json
import os
from collections.abc import Hashable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from erbench.errors import ErbenchError, did_you_mean, shorten
from erbench.files import (SUBMISSIONS_DIR, WEIGHTS_MAX_BYTES, YAML_MAX_BYTES, inside, read_regular, submission_root,
                           submissions_tree)
from erbench.weights import Weights, read_weights

if TYPE_CHECKING:
    from erbench.defense import LikelihoodTVDefense

FAMILIES = ("factorized", "hyperprior")
YAML_MAX_DEPTH = 20
MAX_SCHEMA_ERRORS = 20


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ModelSpec(_Strict):
    architecture: str = Field(description="registered architecture name (see `erbench list`)")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of the architecture builder")


class WeightsSpec(_Strict):
    file: str = Field(max_length=255, pattern=r"^[^\x00-\x1f]+$",
                      description=".safetensors file, relative to the YAML file, inside the submission root")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the weights file")


_Positive = Annotated[float, Field(gt=0)]


class Preprocessing(_Strict):
    """Applied inside the model to images in [0, 1]: (x - mean) / std, per channel."""

    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[_Positive, _Positive, _Positive] = (1.0, 1.0, 1.0)


class DefenseSpec(_Strict):
    """A submission's input defense, run on the edge device before encoding."""

    name: Literal["likelihood_tv"] = Field(description="likelihood-guided masked total-variation denoising")
    iterations: int = Field(default=100, ge=1, le=10_000, description="dual projected-gradient iterations")
    weight: float = Field(default=0.1, gt=0, description="TV weight on the background, [0, 1] pixel units")
    step: float = Field(default=0.25, gt=0, le=0.25, description="dual step size (converges for <= 1/4)")
    object_weight: float = Field(default=0.1, ge=0, le=1,
                                 description="TV weight on the costliest latent positions, as a fraction of weight")

    def label(self) -> str:
        """The ``defense`` column of the results: name and every parameter."""
        return (f"{self.name}(weight={self.weight:g},iterations={self.iterations},step={self.step:g},"
                f"object_weight={self.object_weight:g})")

    def build(self) -> LikelihoodTVDefense:
        """The defense module (defense.py, torch), imported here: validating a spec needs no torch."""
        from erbench.defense import LikelihoodTVDefense

        return LikelihoodTVDefense(self.iterations, self.weight, self.step, self.object_weight)


class Submission(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=128,
                    description="equals the YAML file name without .yaml; unique under submissions/")
    title: str
    authors: list[str] = Field(min_length=1)
    license: str
    paper: str | None = Field(default=None, description="URL of the paper describing the model")
    dataset: str = Field(description="data manifest id (data_manifests/<id>.yaml)")
    model: ModelSpec
    entropy_model: Literal["factorized", "hyperprior"]
    beta: float = Field(ge=0, description="rate weight the model was trained with (loss = CE + beta * bits)")
    weights: WeightsSpec
    preprocessing: Preprocessing = Preprocessing()
    defense: DefenseSpec | None = Field(default=None, description="input defense run on the edge device before encoding")
    training: str | None = Field(default=None, description="command that reproduces the weights")
    notes: str = ""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader without anchors and aliases (no 'billion laughs'), deep nesting or duplicate keys."""

    def __init__(self, stream):
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(None, None, "anchors and aliases (&, *) are not allowed", event.start_mark)
        if self.depth >= YAML_MAX_DEPTH:
            raise yaml.composer.ComposerError(None, None, f"nested deeper than {YAML_MAX_DEPTH} levels",
                                              event.start_mark)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _mapping_without_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, Hashable):
            raise yaml.constructor.ConstructorError(None, None, "a mapping key must be a scalar", key_node.start_mark)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key '{shorten(key)}'", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def read_yaml(path: str | Path) -> Any:
    """A submission YAML, parsed: a regular UTF-8 file of at most 64 KiB inside its submission root."""
    path = Path(path)
    if not path.resolve().is_relative_to(submission_root(path)):
        raise ErbenchError(f"is a symlink leaving the submission root {submission_root(path)}", file=path)
    data = read_regular(path, YAML_MAX_BYTES, file=path, field=None)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ErbenchError(f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})", file=path) from None
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ErbenchError(f"malformed YAML{where}: {problem}", file=path) from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer of more than 4300 digits
        raise ErbenchError(f"malformed YAML: {shorten(exc, 100)}", file=path) from None


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The pydantic model that owns the field at ``loc`` (for 'did you mean' on unknown keys)."""
    model: type[BaseModel] | None = Submission
    for part in loc[:-1]:
        field = model.model_fields.get(part) if model else None
        ann = field.annotation if field else None
        ann = next((a for a in get_args(ann) if a is not type(None)), ann)  # Optional[M] -> M
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
    return model


def _schema_error(err: dict, path: Path) -> ErbenchError:
    loc = tuple(err["loc"])
    field = ".".join(str(p) for p in loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        owner = _model_at(loc)
        hint = did_you_mean(str(loc[-1]), owner.model_fields) if owner else ""
        return ErbenchError(f"unknown key{hint}", file=path, field=field)
    if err["type"] == "missing":
        return ErbenchError("required key is missing", file=path, field=field)
    got = err.get("input")
    shown = f" (got {shorten(repr(got))})" if not isinstance(got, (dict, list)) else ""
    return ErbenchError(f"{err['msg']}{shown}", file=path, field=field)


def _parse(raw: Any, path: Path) -> tuple[Submission | None, list[ErbenchError]]:
    """The submission (None if the schema refuses it) and its schema and naming problems."""
    if not isinstance(raw, dict):
        return None, [ErbenchError("expected a mapping of submission fields", file=path)]
    try:
        sub = Submission.model_validate(raw)
    except ValidationError as exc:
        # an unknown key usually explains a "missing" one (a typo): report it first
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        found = [_schema_error(e, path) for e in errors[:MAX_SCHEMA_ERRORS]]
        if len(errors) > MAX_SCHEMA_ERRORS:
            found.append(ErbenchError(f"{len(errors) - MAX_SCHEMA_ERRORS} more schema errors", file=path))
        return None, found
    if sub.id != path.stem:
        return sub, [ErbenchError(f"id '{sub.id}' must equal the file name '{shorten(path.stem)}'", file=path,
                                  field="id")]
    return sub, []


def parse_submission(raw: Any, path: Path) -> Submission:
    sub, found = _parse(raw, path)
    if found:
        raise found[0]
    return sub


def _references(sub: Submission, path: Path) -> Iterator[ErbenchError]:
    """Against the registries, importing nothing: architecture, family, typed kwargs, dataset and manifest."""
    from erbench.data.datasets import DATASETS
    from erbench.data.manifest import manifest_path
    from erbench.models.architectures import ARCHITECTURES

    try:
        arch = ARCHITECTURES.get(sub.model.architecture, file=str(path), field="model.architecture")
    except ErbenchError as exc:
        yield exc
    else:
        if arch.family != sub.entropy_model:
            yield ErbenchError(f"'{sub.entropy_model}' contradicts architecture '{sub.model.architecture}', "
                               f"which uses the {arch.family} entropy model", file=path, field="entropy_model")
        for key, value in sub.model.kwargs.items():
            field = f"model.kwargs.{key}"
            if key not in arch.kwargs:
                hint = did_you_mean(key, arch.kwargs)
                yield ErbenchError(f"'{sub.model.architecture}' takes no argument '{shorten(key)}'{hint}",
                                   file=path, field=field)
            elif problem := arch.kwargs[key].problem(value):
                yield ErbenchError(problem, file=path, field=field)
    if sub.dataset not in DATASETS:
        yield ErbenchError(f"unknown dataset '{shorten(sub.dataset)}'{did_you_mean(sub.dataset, DATASETS)}",
                           file=path, field="dataset")
    elif not manifest_path(sub.dataset).is_file():
        yield ErbenchError(f"its data manifest {manifest_path(sub.dataset)} is missing", file=path, field="dataset")


def _duplicates(sub: Submission, path: Path) -> Iterator[ErbenchError]:
    """Other files of the same id (name) anywhere in the submissions/ tree the YAML belongs to."""
    tree = submissions_tree(path)
    if tree is None:
        return
    for other in sorted(tree.rglob(f"{sub.id}.yaml")):
        if other.resolve() != path.resolve():
            yield ErbenchError(f"id '{sub.id}' is also used by {other.relative_to(tree.parent)} "
                               f"(ids are unique under {SUBMISSIONS_DIR}/)", file=path, field="id")


def weights_path(sub: Submission, spec_path: str | Path) -> Path:
    """The weights file, resolved: a relative path to a .safetensors file inside the submission root."""
    spec_path = Path(spec_path)
    path = inside(submission_root(spec_path), spec_path.parent, sub.weights.file, file=spec_path, field="weights.file")
    if path.suffix != ".safetensors" or not sub.weights.file.endswith(".safetensors"):
        raise ErbenchError(f"'{shorten(sub.weights.file)}' is not a .safetensors file", file=spec_path,
                           field="weights.file")
    return path


def read_submission_weights(sub: Submission, spec_path: str | Path) -> tuple[Weights, list[ErbenchError]]:
    """The weights (read once, at most 1 GiB) and their sha256 and header problems."""
    path = weights_path(sub, spec_path)
    data = read_regular(path, WEIGHTS_MAX_BYTES, file=spec_path, field="weights.file")
    return read_weights(path, data, sub.weights.sha256, spec=spec_path)


def load_submission(path: str | Path) -> Submission:
    """Read, validate and cross-check a submission YAML (no torch); the first problem is an ErbenchError."""
    path = Path(path)
    sub = parse_submission(read_yaml(path), path)
    problem = next(iter([*_references(sub, path), *_duplicates(sub, path)]), None)
    if problem is not None:
        raise problem
    weights_path(sub, path)
    return sub


def problems(path: str | Path) -> list[ErbenchError]:
    """Every problem ``erbench validate`` finds without torch: the YAML file, the schema, the name and
    its uniqueness, the registries, the weights' path, size, sha256 and header."""
    path, found = Path(path), []
    try:
        sub, found = _parse(read_yaml(path), path)
        if sub is None:
            return found
        found += [*_references(sub, path), *_duplicates(sub, path)]
        found += read_submission_weights(sub, path)[1]
    except ErbenchError as exc:
        found.append(exc)
    return found


def yaml_files(paths: Iterable[Path]) -> list[Path]:
    """The files named, and every ``*.yaml`` under the directories named."""
    files = []
    for path in paths:
        if not os.path.isdir(path):
            files.append(Path(path))
            continue
        found = sorted(Path(path).rglob("*.yaml"))
        if not found:
            raise ErbenchError("no *.yaml file under this directory", file=path)
        files += found
    return files


def json_schema() -> str:
    return json.dumps(Submission.model_json_schema(), indent=2)

"""Submission spec (``submissions/**/<id>.yaml``): typed schema, strict YAML loading, clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from erbench.errors import ErbenchError, did_you_mean

if TYPE_CHECKING:
    from erbench.defense import LikelihoodTVDefense

FAMILIES = ("factorized", "hyperprior")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSpec(_Strict):
    architecture: str = Field(description="registered architecture name (see `erbench list`)")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of the architecture builder")


class WeightsSpec(_Strict):
    file: str = Field(description=".safetensors file, relative to the YAML file")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the weights file")


class Preprocessing(_Strict):
    """Applied inside the model to images in [0, 1]: (x - mean) / std, per channel."""

    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)


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
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="equals the YAML file name without .yaml")
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


class _UniqueKeyLoader(yaml.SafeLoader):
    pass


def _mapping_without_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key '{key}'", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def read_yaml(path: Path) -> Any:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ErbenchError("file not found", file=path) from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ErbenchError(f"malformed YAML{where}: {problem}", file=path) from None


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The pydantic model that owns the field at ``loc`` (for 'did you mean' on unknown keys)."""
    model: type[BaseModel] | None = Submission
    for part in loc[:-1]:
        field = model.model_fields.get(part) if model else None
        ann = field.annotation if field else None
        ann = next((a for a in get_args(ann) if a is not type(None)), ann)  # Optional[M] -> M
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
    return model


def _first_error(exc: ValidationError) -> tuple[str, str]:
    # an unknown key usually explains a "missing" one (a typo): report it first
    err = min(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    loc = tuple(err["loc"])
    field = ".".join(str(p) for p in loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        owner = _model_at(loc)
        hint = did_you_mean(str(loc[-1]), owner.model_fields) if owner else ""
        return field, f"unknown key{hint}"
    if err["type"] == "missing":
        return field, "required key is missing"
    got = err.get("input")
    shown = f" (got {got!r})" if not isinstance(got, (dict, list)) else ""
    return field, f"{err['msg']}{shown}"


def parse_submission(raw: Any, path: Path) -> Submission:
    if not isinstance(raw, dict):
        raise ErbenchError("expected a mapping of submission fields", file=path)
    try:
        sub = Submission.model_validate(raw)
    except ValidationError as exc:
        field, message = _first_error(exc)
        raise ErbenchError(message, file=path, field=field) from None
    if sub.id != path.stem:
        raise ErbenchError(f"id '{sub.id}' must equal the file name '{path.stem}'", file=path, field="id")
    return sub


def check_references(sub: Submission, path: Path) -> None:
    """Cross-checks against the registries: architecture, family, kwargs, dataset."""
    from erbench.data.datasets import DATASETS
    from erbench.models.architectures import ARCHITECTURES

    arch = ARCHITECTURES.get(sub.model.architecture, file=str(path), field="model.architecture")
    if arch.family != sub.entropy_model:
        raise ErbenchError(
            f"'{sub.entropy_model}' contradicts architecture '{sub.model.architecture}', "
            f"which uses the {arch.family} entropy model",
            file=path, field="entropy_model",
        )
    params = arch.parameters()
    for key in sub.model.kwargs:
        if key not in params:
            raise ErbenchError(
                f"'{sub.model.architecture}' takes no argument '{key}'{did_you_mean(key, params)}",
                file=path, field=f"model.kwargs.{key}",
            )
    DATASETS.get(sub.dataset, file=str(path), field="dataset")


def load_submission(path: str | Path) -> Submission:
    """Read, validate and cross-check a submission YAML; every problem is one ErbenchError."""
    path = Path(path)
    sub = parse_submission(read_yaml(path), path)
    check_references(sub, path)
    return sub


def weights_path(sub: Submission, spec_path: str | Path) -> Path:
    return (Path(spec_path).parent / sub.weights.file).resolve()


def json_schema() -> str:
    return json.dumps(Submission.model_json_schema(), indent=2)

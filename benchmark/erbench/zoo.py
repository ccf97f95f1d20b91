"""Reference zoo: the recipes behind submissions/reference/, reproduced by ``erbench zoo train``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml
from safetensors.torch import save_file

from erbench.data.datasets import load_dataset
from erbench.models.architectures import ARCHITECTURES
from erbench.models.loader import file_sha256
from erbench.models.split import SplitModel
from erbench.registry import Registry
from erbench.training import Recipe, train

REFERENCE_DIR = Path(__file__).resolve().parents[2] / "submissions" / "reference"

FAMILY_TAG = {"factorized": "fp", "hyperprior": "hp"}


@dataclass(frozen=True)
class ZooEntry:
    architecture: str
    recipe: Recipe
    dataset: str = "digits"
    kwargs: dict = field(default_factory=dict)

    @property
    def family(self) -> str:
        return ARCHITECTURES.get(self.architecture).family

    @property
    def id(self) -> str:
        arch = self.architecture.rsplit("_", 1)[0]
        return f"{self.dataset}_{arch}_{FAMILY_TAG[self.family]}_b{self.recipe.beta:.0e}".replace("e-0", "e-")


ZOO: Registry[ZooEntry] = Registry("zoo entry")


def _add(entry: ZooEntry) -> None:
    ZOO.register(entry.id, entry)


# The grid: 3 heads x 2 entropy models x 4 rate-accuracy trade-offs (docs/zoo.md). Hyperprior
# models warm up at beta = 0 and ramp beta, or they collapse to a constant latent at high beta.
FACTORIZED_BETAS = (1e-4, 3e-4, 1e-3, 3e-3)
HYPERPRIOR_BETAS = (3e-5, 1e-4, 3e-4, 1e-3)
for _head in ("small_cnn", "res_cnn", "mobile_cnn"):
    for _beta in FACTORIZED_BETAS:
        _add(ZooEntry(f"{_head}_factorized", Recipe(beta=_beta)))
    for _beta in HYPERPRIOR_BETAS:
        _add(ZooEntry(f"{_head}_hyperprior", Recipe(beta=_beta, warmup_epochs=10, ramp_epochs=20)))


def build_entry(entry: ZooEntry, progress: bool = True) -> SplitModel:
    data = load_dataset(entry.dataset, "train")
    model = ARCHITECTURES.get(entry.architecture).build(**entry.kwargs)
    return train(model, data.images, data.labels, entry.recipe, progress=progress)


def write_entry(entry: ZooEntry, model: SplitModel, out_dir: Path = REFERENCE_DIR) -> Path:
    """Write ``<id>.safetensors`` and ``<id>.yaml`` (with the weights' sha256); returns the YAML path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / f"{entry.id}.safetensors"
    save_file(model.weights(), str(weights), metadata={"erbench_zoo_entry": entry.id})
    r = entry.recipe
    spec = {
        "id": entry.id,
        "title": f"{entry.architecture.replace('_', ' ')} (beta={r.beta:g}), erbench reference",
        "authors": ["erbench maintainers"],
        "license": "MIT",
        "dataset": entry.dataset,
        "model": {"architecture": entry.architecture, "kwargs": dict(entry.kwargs)},
        "entropy_model": entry.family,
        "beta": r.beta,
        "weights": {"file": weights.name, "sha256": file_sha256(weights)},
        "training": f"erbench zoo train {entry.id}",
        "notes": (
            f"Trained by erbench: CE + beta*bits, Adam {r.lr:g}, cosine, {r.epochs} epochs, batch {r.batch_size}, "
            f"+-{r.max_shift}px shifts, warm-up {r.warmup_epochs} epochs at beta=0, ramp {r.ramp_epochs} epochs, "
            f"seed {r.seed}, {r.threads} CPU threads."
        ),
    }
    path = out_dir / f"{entry.id}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path

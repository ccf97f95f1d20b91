"""Reference zoo: the recipes behind submissions/reference/, reproduced by ``erbench zoo train``."""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import torch
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


# The grid: 3 heads x 2 entropy models x 4 rate-accuracy trade-offs (docs/zoo.md). Every model
# warms up at beta = 0 and ramps beta: without it, high-beta models collapse to a constant latent
# (measured: a depthwise-separable head at beta = 1e-3 reached 0.08 accuracy at 96 coded bits).
FACTORIZED_BETAS = (1e-4, 3e-4, 1e-3, 3e-3)
HYPERPRIOR_BETAS = (3e-5, 1e-4, 3e-4, 1e-3)
SEED_OVERRIDES: dict[tuple[str, float], int] = {}  # (architecture, beta) -> seed, recorded in the YAML notes
for _head in ("small_cnn", "res_cnn", "gdn_cnn"):
    for _family, _betas in (("factorized", FACTORIZED_BETAS), ("hyperprior", HYPERPRIOR_BETAS)):
        for _beta in _betas:
            _seed = SEED_OVERRIDES.get((f"{_head}_{_family}", _beta), 0)
            _add(ZooEntry(f"{_head}_{_family}", Recipe(beta=_beta, warmup_epochs=10, ramp_epochs=20, seed=_seed)))


def build_entry(entry: ZooEntry, progress: bool = True) -> SplitModel:
    data = load_dataset(entry.dataset, "train")
    return train(initial_model(entry), data.images, data.labels, entry.recipe, progress=progress)


def initial_model(entry: ZooEntry) -> SplitModel:
    """The untrained model, initialized from the recipe's seed (torch's start-up seed differs per process)."""
    torch.manual_seed(entry.recipe.seed)
    return ARCHITECTURES.get(entry.architecture).build(**entry.kwargs)


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


def _train_and_write(name: str, out_dir: Path) -> tuple[str, float, Path]:
    start = time.time()
    entry = ZOO.get(name)
    path = write_entry(entry, build_entry(entry, progress=False), out_dir)
    return name, time.time() - start, path


def train_entries(names: list[str], out_dir: Path = REFERENCE_DIR, jobs: int = 1):
    """Train entries (``jobs`` processes of one thread each); yields (id, seconds, yaml path) as they finish."""
    if jobs == 1:
        for name in names:
            yield _train_and_write(name, out_dir)
        return
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        futures = [pool.submit(_train_and_write, name, out_dir) for name in names]
        for future in as_completed(futures):
            yield future.result()

"""Plan: a protocol's cells for one submission, each keyed and costed; shards are slices of a plan.

A cell's key is the sha256 of everything that determines its rows: the protocol, the cell and the
erbench version of its condition, the submission (id, model spec, weights sha256, defense), the
dataset (id, sha256), the evaluated image range and the device (the runner builds this identity;
the batch size and torch threads change no row, tests/test_reproducibility.py). Two runs that agree on all of it compute the same rows, so a
committed part with that key is reused instead of recomputed. A corruption cell's ``corruption_source``
enters its key only when it is not the default (``imagecorruptions``), so the keys of rendered cells are
those of schema 2 and a pre-rendered cell never shares a key with a rendered one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from fnmatch import fnmatchcase

from erbench.cells import RENDERED, Cell
from erbench.errors import ErbenchError

# The results schema named in every cell key: schema 3 only added columns a schema-2 part is given when
# it is read (results.upgrade), so keys keep naming 2 and committed schema-2 parts are reused.
KEY_SCHEMA_VERSION = "2"

# Bump a condition's version when what it computes changes: committed parts of the old version
# are then recomputed, never reused. Patterns match "condition:variant", in order; the first match
# wins. rate_pgd:paper 2 = the published recipe exactly (version 1 is now the variant noise_y).
CONDITION_VERSIONS = (("corruption.*", "ic1.1.2-compat2"), ("attack.rate_pgd:paper", "2"), ("*", "1"))

# Expected cost of a cell in units of its clean cell, per attack iteration where the cell has
# iterations: the median measured by benchmarks/cell_costs.py over the quick battery of three
# digits entries (factorized, hyperprior, defended hyperprior), one thread (rate_pgd:paper, the
# published recipe's 16 head passes per step: 3.6x noise_y on digits_small_cnn_hp_b1e-4). It orders cells
# longest-first and weights the progress bar's ETA; it never changes a result.
COST_PER_STEP = (
    ("attack.rate_pgd:paper", 15.0), ("attack.rate_pgd:noise_y", 4.1), ("attack.rate_pgd:fgsm", 11.0), ("attack.rate_pgd:*", 1.7),
    ("attack.stealth_rate:*", 2.4), ("attack.ce_pgd:*", 1.6), ("attack.bpda_rate:unrolled", 13.0),
    ("attack.bpda_rate:*", 5.5), ("attack.dct_rate:*", 19.0), ("attack.likelihood_weighted_rate:*", 15.0),
    ("attack.noise:*", 1.5), ("corruption.*:*", 1.25), ("*", 1.0),
)


def _first(table: tuple[tuple[str, object], ...], name: str):
    return next(value for pattern, value in table if fnmatchcase(name, pattern))


def condition_version(cell: Cell) -> str:
    return _first(CONDITION_VERSIONS, f"{cell.condition}:{cell.variant}")


def cell_cost(cell: Cell) -> float:
    return _first(COST_PER_STEP, f"{cell.condition}:{cell.variant}") * max(cell.steps or 1, 1)


@dataclass(frozen=True)
class Task:
    """One cell of one submission: what a worker computes and the store commits."""

    cell: Cell
    key: str
    cost: float


@dataclass(frozen=True)
class Plan:
    """Every cell a command asked for, in protocol order, and the identity they share."""

    identity: dict  # protocol, submission, weights, dataset, image range, device (part of every key)
    tasks: tuple[Task, ...]

    @property
    def submission_id(self) -> str:
        return self.identity["submission_id"]

    @property
    def n_images(self) -> int:
        return self.identity["images"][1]

    def longest_first(self, tasks: tuple[Task, ...] | None = None) -> list[Task]:
        """The clean cell first (the reference: a broken model fails there, in seconds), then by
        decreasing expected cost."""
        return sorted(self.tasks if tasks is None else tasks,
                      key=lambda t: (t.cell.condition != "clean", -t.cost, t.key))

    def shard(self, index: int, count: int) -> tuple[Task, ...]:
        """Shard ``index`` of ``count`` (0-based): cells dealt longest-first, each to the shard with the
        least expected cost so far (ties to the lowest shard), so the slices are balanced and the same
        on every machine."""
        loads, owner = [0.0] * count, {}
        for task in self.longest_first():
            target = min(range(count), key=lambda s: (loads[s], s))
            loads[target] += task.cost
            owner[task.key] = target
        return tuple(t for t in self.tasks if owner[t.key] == index)

    def to_json(self) -> str:
        return json.dumps({"identity": self.identity,
                           "tasks": [{"cell": asdict(t.cell), "key": t.key, "cost": t.cost} for t in self.tasks]},
                          indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Plan:
        raw = json.loads(text)
        return cls(raw["identity"], tuple(Task(Cell(**t["cell"]), t["key"], t["cost"]) for t in raw["tasks"]))


def cell_key(identity: dict, cell: Cell) -> str:
    params = asdict(cell)
    if params["corruption_source"] in (None, RENDERED):
        del params["corruption_source"]
    blob = {**identity, "cell": params, "condition_version": condition_version(cell)}
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()


def make_plan(identity: dict, cells: tuple[Cell, ...]) -> Plan:
    identity = {**identity, "schema_version": KEY_SCHEMA_VERSION}
    return Plan(identity, tuple(Task(c, cell_key(identity, c), cell_cost(c)) for c in cells))


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """'i/n' (1-based, as in an array job) -> (i - 1, n)."""
    if text is None:
        return None
    try:
        i, n = (int(p) for p in text.split("/"))
    except ValueError:
        i, n = 0, 0
    if not 1 <= i <= n:
        raise ErbenchError(f"expected i/n with 1 <= i <= n, got {text[:40]!r}", field="--shard")
    return i - 1, n

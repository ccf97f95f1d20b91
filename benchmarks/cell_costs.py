"""Measured cell costs vs. the plan's expected costs (``COST_PER_STEP`` in erbench/engine/plan.py).

Usage: python benchmarks/cell_costs.py RESULTS_DIR [RESULTS_DIR ...]

Reads every committed part's compute time (Parquet metadata ``erbench_seconds``) of the plans in
the given ``erbench evaluate`` outputs and prints, per condition and variant, the measured seconds
per iteration in units of the submission's clean cell, next to the cost the plan expects.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

from erbench.engine.plan import COST_PER_STEP, _first
from erbench.engine.store import PLAN_FILE, Store


def main() -> None:
    measured: dict[str, list[float]] = defaultdict(list)
    for root in map(Path, sys.argv[1:]):
        for plan_file in sorted(root.glob(f"*/{PLAN_FILE}")):
            store = Store(root, plan_file.parent.name)
            plan, committed = store.read_plan(), store.committed()
            seconds = {t.key: store.seconds(t.key) for t in plan.tasks if t.key in committed}
            clean = next((seconds.get(t.key) for t in plan.tasks if t.cell.condition == "clean"), None)
            if not clean:
                continue
            for t in plan.tasks:
                if seconds.get(t.key):
                    name = f"{t.cell.condition}:{t.cell.variant}"
                    measured[name].append(seconds[t.key] / clean / max(t.cell.steps or 1, 1))
    print(f"{'condition:variant':44s} {'cells':>5s} {'measured/step':>13s} {'expected/step':>13s}")
    for name, values in sorted(measured.items()):
        values.sort()
        print(f"{name:44s} {len(values):5d} {values[len(values) // 2]:13.2f} {_first(COST_PER_STEP, name):13.2f}")


if __name__ == "__main__":
    main()

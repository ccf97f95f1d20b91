"""A progress bar over the cells a run computes, advancing by each cell's expected cost, so its ETA
does not treat a 100-step attack like a clean pass."""

from __future__ import annotations

from tqdm import tqdm

from erbench.engine.plan import Plan
from erbench.engine.worker import Job


class CostBar:
    def __init__(self, plan: Plan, jobs: list[Job]):
        skipped = len(plan.tasks) - len(jobs)
        self.left = len(jobs)
        self.bar = tqdm(total=sum(j.task.cost for j in jobs), desc=plan.submission_id, unit="cost",
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix} [{elapsed}<{remaining}]",
                        disable=not jobs)
        self.cells = 0
        self.total = len(jobs)
        self.bar.set_postfix_str(f"0/{self.total} cells" + (f" ({skipped} committed before)" if skipped else ""))

    def __call__(self, job: Job) -> None:
        self.cells += 1
        self.bar.set_postfix_str(f"{self.cells}/{self.total} cells, last {job.task.cell.label()}", refresh=False)
        self.bar.update(job.task.cost)
        if self.cells == self.total:
            self.bar.close()

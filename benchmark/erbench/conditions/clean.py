"""The reference condition: the test images as they are."""

from __future__ import annotations

from erbench.conditions.base import Cell, Context, Generated


class Clean:
    kind = "clean"
    summary = "the unmodified test images (reference for every delta and overhead)"

    def generate(self, cell: Cell, ctx: Context) -> Generated:
        return Generated(ctx.images)


CLEAN = Clean()  # registered as "clean" in catalog.py

"""Compact text summary of an evaluation (printed by ``erbench evaluate``) and the Markdown report
of ``erbench check --report`` (uploaded by .github/workflows/submissions.yml)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

GROUP = ["condition", "variant", "norm", "eps"]


def eps_text(norm: str, eps: float) -> str:
    """L-inf budgets in grey levels (8/255), L2 budgets as they are (1)."""
    return f"{eps * 255:g}/255" if norm == "linf" else f"{eps:g}"


def summary_table(summary: pd.DataFrame) -> str:
    """One line per condition (and attack setting); corruption severities are averaged, worst shown."""
    df = summary.copy()
    df[GROUP[1:]] = df[GROUP[1:]].astype(object).where(df[GROUP[1:]].notna(), "")
    rows = []
    for key, g in df.groupby(GROUP, sort=False):
        condition, variant, norm, eps = key
        name = condition + (f" {variant}" if variant else "") + (f" {norm} eps={eps_text(norm, eps)}" if eps != "" else "")
        rows.append({
            "condition": name,
            "cells": len(g),
            "accuracy": g["accuracy"].mean(),
            "acc_delta": g["accuracy_delta"].mean(),
            "bits/img": g["bits_coded_mean"].mean(),
            "overhead": g["overhead"].mean(),
            "worst_overhead": g["overhead"].max(),
            "decode_ok": bool(g["decode_ok_all"].all()),
        })
    table = pd.DataFrame(rows)
    fmt = {"accuracy": "{:.3f}".format, "acc_delta": "{:+.3f}".format, "bits/img": "{:.0f}".format,
           "overhead": "{:+.1%}".format, "worst_overhead": "{:+.1%}".format}
    header = (f"{summary['submission_id'].iloc[0]} ({summary['protocol'].iloc[0]}, "
              f"{int(summary['n_images'].iloc[0])} images; corruption rows average severities 1-5)")
    return header + "\n" + table.to_string(index=False, formatters=fmt)


@dataclass(frozen=True)
class CheckRow:
    """One submission's ``erbench check`` outcome: the clean numbers, or the error."""

    submission: str
    accuracy: float | None = None
    bits_coded: float | None = None
    degenerate: str | None = None  # the reason, when the clean operating point is degenerate
    error: str | None = None


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def check_report(rows: list[CheckRow], limit: int, changed_outside: list[str] | None) -> str:
    """Markdown: a row per submission; then, when known, every file the pull request changes outside
    submissions/, each as a JSON string in a code block (no file name can hide or forge a line)."""
    lines = [f"# erbench check ({limit} test images per condition)", ""]
    if rows:
        lines += ["| submission | check | clean accuracy | coded bits/image | degenerate |", "|---|---|---|---|---|"]
        for r in rows:
            if r.error is not None:
                lines.append(f"| {_cell(r.submission)} | fail: {_cell(r.error)} | | | |")
            else:
                flag = f"yes: {_cell(r.degenerate)}" if r.degenerate else "no"
                lines.append(f"| {_cell(r.submission)} | ok | {r.accuracy:.3f} | {r.bits_coded:.0f} | {flag} |")
    else:
        lines.append("No submission YAML was given.")
    if changed_outside is not None:
        lines += ["", f"## Files outside submissions/ that the pull request changes: {len(changed_outside)}", ""]
        if changed_outside:
            lines += ["Review them as a code change (a submission's own architecture code is one).", "", "```text",
                      *(json.dumps(p, ensure_ascii=False) for p in changed_outside), "```"]
        else:
            lines.append("None: the pull request changes submissions/ only.")
    return "\n".join(lines) + "\n"

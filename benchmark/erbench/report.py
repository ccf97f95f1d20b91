"""Compact text summary of an evaluation (printed by ``erbench evaluate``)."""

from __future__ import annotations

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

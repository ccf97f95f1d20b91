"""Per-cell metrics against the clean reference, with paired bootstrap confidence intervals.

For a cell with per-image coded bits b and correctness c, and the clean cell's b0 and c0 on the
same images:
* ``accuracy`` = mean(c); ``accuracy_delta`` = mean(c) - mean(c0);
* ``overhead`` = mean(b) / mean(b0) - 1 (ranked on real coded bits);
* ``extra_bits`` = mean(b) - mean(b0), bits per image;
* 95% CIs from a paired percentile bootstrap over images (the same resampled images for the
  cell and the clean reference), ``BOOTSTRAP_SAMPLES`` resamples with a fixed seed.
"""

from __future__ import annotations

import numpy as np

BOOTSTRAP_SAMPLES = 1000
BOOTSTRAP_SEED = 0
CI_LEVEL = 0.95


def _ci(samples: np.ndarray) -> tuple[float, float]:
    lo, hi = np.quantile(samples, [(1 - CI_LEVEL) / 2, (1 + CI_LEVEL) / 2])
    return float(lo), float(hi)


def cell_metrics(bits: np.ndarray, correct: np.ndarray, clean_bits: np.ndarray, clean_correct: np.ndarray) -> dict:
    """Metrics of one cell; arrays are aligned on the same images."""
    bits, clean_bits = bits.astype(np.float64), clean_bits.astype(np.float64)
    correct, clean_correct = correct.astype(np.float64), clean_correct.astype(np.float64)
    n = len(bits)
    idx = np.random.default_rng(BOOTSTRAP_SEED).integers(0, n, size=(BOOTSTRAP_SAMPLES, n))
    acc_s = correct[idx].mean(1)
    delta_s = acc_s - clean_correct[idx].mean(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        overhead_s = bits[idx].mean(1) / clean_bits[idx].mean(1) - 1
    clean_mean = clean_bits.mean()
    out = {
        "n_images": n,
        "accuracy": correct.mean(),
        "accuracy_delta": correct.mean() - clean_correct.mean(),
        "bits_coded_mean": bits.mean(),
        "bits_coded_median": float(np.median(bits)),
        "extra_bits": bits.mean() - clean_mean,
        "overhead": bits.mean() / clean_mean - 1 if clean_mean > 0 else float("nan"),
    }
    out["accuracy_ci_low"], out["accuracy_ci_high"] = _ci(acc_s)
    out["accuracy_delta_ci_low"], out["accuracy_delta_ci_high"] = _ci(delta_s)
    out["overhead_ci_low"], out["overhead_ci_high"] = _ci(overhead_s)
    return out


def degeneracy(clean_accuracy: float, num_classes: int, clean_bits_coded: float, clean_bits_estimated: float,
               n_streams: int) -> str | None:
    """Why a model is degenerate (and would look immune to entropy attacks), or None.

    * near-chance accuracy: clean accuracy below 2 / num_classes;
    * rate collapse: the latents carry almost no information -- estimated bits below 8 per coded
      stream, so the coded bits are essentially the coder's fixed per-stream overhead.
    """
    reasons = []
    if clean_accuracy < 2.0 / num_classes:
        reasons.append(f"near-chance clean accuracy {clean_accuracy:.3f}")
    if clean_bits_estimated < 8.0 * n_streams:
        reasons.append(
            f"rate collapse: {clean_bits_estimated:.1f} estimated bits per image for {n_streams} stream(s), "
            f"{clean_bits_coded:.0f} coded bits are the coder's fixed overhead"
        )
    return "; ".join(reasons) or None

"""Measure what the edge device actually sends: real coded bits, estimated bits, decode check.

Per image:
* ``bits_coded`` -- 8 x the bytes the range coder wrote for every coded latent (y, and z for the
  hyperprior); ``bits_coded_hyper`` is the z part (0 for factorized models);
* ``bits_estimated`` -- -sum log2 of the likelihoods of the rounded latents (all latents);
  ``bits_estimated_hyper`` the z part;
* ``decode_ok`` -- the decoded latent equals the rounded latent the tail sees in ``forward``;
* ``pred`` -- the class the tail predicts from the *decoded* latent (the one that counts).
"""

from __future__ import annotations

import numpy as np
import torch

from erbench.models.blocks import rowwise
from erbench.models.split import SplitModel

MEASURE_COLUMNS = (
    "pred", "bits_coded", "bits_coded_hyper", "bits_estimated", "bits_estimated_hyper", "decode_ok", "finite",
)


def to_tensor(images: np.ndarray, device: str) -> torch.Tensor:
    """uint8 NHWC -> float NCHW in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2).float().div(255.0)


def _finite(out) -> torch.Tensor:
    ok = torch.isfinite(out.logits).flatten(1).all(1) & torch.isfinite(out.y_hat).flatten(1).all(1)
    for lik in out.likelihoods.values():
        ok &= torch.isfinite(lik).flatten(1).all(1)
    return ok


@torch.no_grad()
def measure_batch(model: SplitModel, x: torch.Tensor) -> dict[str, np.ndarray]:
    out = model(x, rate_quant="round", tail_quant="round")
    finite = _finite(out).cpu().numpy()
    n = x.size(0)
    zeros_i, zeros_f = np.zeros(n, dtype=np.int64), np.zeros(n)
    if not finite.all():  # nothing meaningful to code; the runner reports the condition
        return {"pred": zeros_i, "bits_coded": zeros_i, "bits_coded_hyper": zeros_i, "bits_estimated": zeros_f,
                "bits_estimated_hyper": zeros_f, "decode_ok": np.zeros(n, dtype=bool), "finite": finite}
    coded = model.compress(x)
    y_dec = model.decompress(coded)
    logits = model.tail(y_dec)
    est = {k: (-torch.log2(v).flatten(1).sum(1)).double().cpu().numpy() for k, v in out.likelihoods.items()}
    coded_bits = {k: np.asarray(coded.bits_per_sample(k), dtype=np.int64) for k in coded.strings}
    return {
        "pred": logits.argmax(1).cpu().numpy().astype(np.int64),
        "bits_coded": sum(coded_bits.values()),
        "bits_coded_hyper": coded_bits.get("z", zeros_i),
        "bits_estimated": sum(est.values()),
        "bits_estimated_hyper": est.get("z", zeros_f),
        "decode_ok": (y_dec == out.y_hat).flatten(1).all(1).cpu().numpy(),
        "finite": finite & torch.isfinite(logits).all(1).cpu().numpy(),
    }


def measure(model: SplitModel, images: np.ndarray, device: str = "cpu", batch_size: int = 64) -> dict[str, np.ndarray]:
    """Code uint8 NHWC images in batches; per-image columns (see MEASURE_COLUMNS). The model runs on
    blocks of a fixed row count whatever ``batch_size`` (``erbench.models.blocks``), so an image's
    columns do not depend on the batch size."""
    parts = [rowwise(lambda x: measure_batch(model, x), to_tensor(images[i : i + batch_size], device))
             for i in range(0, len(images), batch_size)]
    return {k: np.concatenate([p[k] for p in parts]) for k in MEASURE_COLUMNS}

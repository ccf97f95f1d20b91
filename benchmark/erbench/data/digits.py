"""The embedded default track: scikit-learn's bundled handwritten digits as 32x32 RGB uint8.

Transform (written in data_manifests/digits.yaml): values 0..16 scaled to [0, 1], bilinear
upsampling 8x8 -> 32x32 (torch ``interpolate``, ``align_corners=False``), ``round(255 x)`` to
uint8, the grey channel copied to RGB. Split rule: index ``i`` of ``load_digits`` is a test image
iff ``i % 18 >= 13`` (497 test, 1,300 train; classes are interleaved, so every class is present).
"""

from __future__ import annotations

import numpy as np


def _is_test(n: int) -> np.ndarray:
    return np.arange(n) % 18 >= 13


def build_digits() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    # torch is imported here: resolving the registry entry (validating a submission) stays light
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    bunch = load_digits()
    grey = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    up = F.interpolate(grey, size=(32, 32), mode="bilinear", align_corners=False)
    u8 = torch.round(up.clamp(0, 1) * 255).to(torch.uint8).squeeze(1).numpy()
    images = np.repeat(u8[..., None], 3, axis=-1)
    labels = bunch.target.astype(np.int64)
    test = _is_test(len(labels))
    return {"train": (images[~test], labels[~test]), "test": (images[test], labels[test])}

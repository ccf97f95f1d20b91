"""Make imagecorruptions 1.1.2 work on current scikit-image and setuptools, without changing its maths.

* scikit-image >= 0.19 renamed ``gaussian(..., multichannel=True)`` to ``channel_axis=-1``; 1.1.2
  still passes ``multichannel``, which breaks ``gaussian_blur`` and ``glass_blur``. We give the
  library a thin adapter that translates the keyword and calls scikit-image's own ``gaussian``.
* setuptools >= 82 no longer ships ``pkg_resources``, which 1.1.2 imports for ``resource_filename``
  (the frost images). The project pins setuptools < 82; if it is absent anyway, a minimal
  ``pkg_resources`` exposing ``resource_filename`` via ``importlib.resources`` is provided.
* scikit-image >= 0.21 draws ``random_noise`` (used by ``impulse_noise``) from a fresh
  ``default_rng()`` instead of NumPy's global generator, so seeding could not make it
  reproducible. The library's ``sk`` becomes a view of scikit-image whose ``util.random_noise``
  gets a seed drawn from the global generator, which erbench seeds per image.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import sys
import types
import warnings
from functools import cache

import numpy as np


def _resource_filename(package: str, resource: str) -> str:
    return str(importlib.resources.files(package).joinpath(resource))


def _ensure_pkg_resources() -> None:
    if importlib.util.find_spec("pkg_resources") is None:
        shim = types.ModuleType("pkg_resources")
        shim.resource_filename = _resource_filename
        sys.modules["pkg_resources"] = shim


def _gaussian_adapter(skimage_gaussian):
    def gaussian(image, *args, multichannel=None, **kwargs):
        if multichannel is not None:
            kwargs["channel_axis"] = -1 if multichannel else None
        return skimage_gaussian(image, *args, **kwargs)

    return gaussian


def _skimage_with_seeded_noise(skimage, skimage_random_noise):
    def random_noise(image, *args, **kwargs):
        kwargs.setdefault("rng", int(np.random.randint(0, 2**31 - 1)))
        return skimage_random_noise(image, *args, **kwargs)

    return types.SimpleNamespace(util=types.SimpleNamespace(random_noise=random_noise), color=skimage.color)


@cache
def imagecorruptions():
    """The imagecorruptions module, made compatible (idempotent)."""
    _ensure_pkg_resources()
    with warnings.catch_warnings():  # "pkg_resources is deprecated", raised at its import
        warnings.simplefilter("ignore", UserWarning)
        import imagecorruptions as ic
        import imagecorruptions.corruptions as impl
    import skimage.color
    from skimage.filters import gaussian
    from skimage.util import random_noise

    impl.gaussian = _gaussian_adapter(gaussian)
    impl.sk = _skimage_with_seeded_noise(skimage, random_noise)
    return ic

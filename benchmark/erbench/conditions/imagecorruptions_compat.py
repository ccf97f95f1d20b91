"""Make imagecorruptions 1.1.2 work on current scikit-image and setuptools, without changing its maths.

* scikit-image >= 0.19 renamed ``gaussian(..., multichannel=True)`` to ``channel_axis=-1``; 1.1.2
  still passes ``multichannel``, which breaks ``gaussian_blur`` and ``glass_blur``. We give the
  library a thin adapter that translates the keyword and calls scikit-image's own ``gaussian``.
* setuptools >= 82 no longer ships ``pkg_resources``, which 1.1.2 imports for ``resource_filename``
  (the frost images). The project pins setuptools < 82; if it is absent anyway, a minimal
  ``pkg_resources`` exposing ``resource_filename`` via ``importlib.resources`` is provided.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import sys
import types
from functools import cache


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


@cache
def imagecorruptions():
    """The imagecorruptions module, made compatible (idempotent)."""
    _ensure_pkg_resources()
    import imagecorruptions as ic
    import imagecorruptions.corruptions as impl
    from skimage.filters import gaussian

    impl.gaussian = _gaussian_adapter(gaussian)
    return ic

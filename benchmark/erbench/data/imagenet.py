"""ImageNet-val-5k: a fixed 5,000-image subset of the ILSVRC2012 validation set in class folders.

The selected files (``<wnid>/ILSVRC2012_val_<8 digits>.JPEG``, in image_index order) and the 1,000
class ids (sorted wnids: label = line index) are committed next to the manifest. Each image is
decoded as torchvision's ``ImageFolder`` and ``Resize(256)``/``CenterCrop(224)`` on PIL images do:
RGB, shorter side to 256 (the longer to ``int(256 * long / short)``) with PIL's bilinear filter
(antialiased when shrinking: torchvision passes PIL images to ``Image.resize``), then the central
224x224 crop (offset ``int(round((side - 224) / 2))``), as uint8 HWC.
"""

from __future__ import annotations

import io

import numpy as np

from erbench.data.local import Blobs, LocalTrack
from erbench.data.manifest import Manifest, read_list
from erbench.errors import ErbenchError

RESIZE = 256


def preprocess(image, crop: int) -> np.ndarray:
    """A PIL image -> (crop, crop, 3) uint8: RGB, shorter side to RESIZE (bilinear), center crop."""
    from PIL import Image

    image = image.convert("RGB")
    w, h = image.size
    short, long = min(w, h), max(w, h)
    new_short, new_long = RESIZE, int(RESIZE * long / short)
    size = (new_short, new_long) if w <= h else (new_long, new_short)
    if size != (w, h):
        image = image.resize(size, Image.BILINEAR)
    left, top = int(round((size[0] - crop) / 2.0)), int(round((size[1] - crop) / 2.0))
    return np.asarray(image.crop((left, top, left + crop, top + crop)), dtype=np.uint8)


def _files(manifest: Manifest) -> list[str]:
    return read_list(manifest.local.images)


def _decode(manifest: Manifest, blobs: Blobs) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image, UnidentifiedImageError

    index = {wnid: i for i, wnid in enumerate(read_list(manifest.local.classes))}
    files = _files(manifest)
    unknown = next((f for f in files if f.split("/")[0] not in index), None)
    if unknown is not None:
        raise ErbenchError(f"'{unknown}' is in no class of {manifest.local.classes.file}", field="local.images")
    labels = np.array([index[f.split("/")[0]] for f in files], dtype=np.int64)
    crop = manifest.image_size[0]
    images = np.empty((len(files), crop, crop, 3), dtype=np.uint8)
    for i, (path, data) in enumerate(blobs):
        try:
            with Image.open(io.BytesIO(data)) as image:
                images[i] = preprocess(image, crop)
        except (UnidentifiedImageError, OSError) as exc:
            raise ErbenchError(f"cannot decode the image: {exc}", file=path) from None
    return images, labels


def _decoder() -> str:
    import PIL
    from PIL import features

    turbo = features.version("libjpeg_turbo")
    return f"Pillow {PIL.__version__}, " + (f"libjpeg-turbo {turbo}" if turbo else f"libjpeg {features.version('jpg')}")


TRACK = LocalTrack(files=_files, decode=_decode, decoder=_decoder)

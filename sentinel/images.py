"""Image files as the camera would deliver them: upright, transparency on white, one error type.

Technicians point `scan-image`, `faces enroll` and `faces match` at photos from phones and at
exported PNGs; all of them need the same care (EXIF orientation, transparent backgrounds, 16-bit
scans, a one-line reason instead of a Pillow traceback), so it lives here once.

A truncated file is an error, never a picture padded with grey: face_recognition sets Pillow's
process-wide `ImageFile.LOAD_TRUNCATED_IMAGES = True` when it is imported, so the load here holds
it off for its own duration (under a lock; another thread's load is at most stricter meanwhile).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
_STRICT = threading.Lock()


class ImageError(Exception):
    """An image file that cannot be used, with a reason a technician can act on."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def load_grey(path: str | Path) -> "np.ndarray":
    """H×W uint8, as the decoders see a camera frame's Y plane."""
    return _load(path, "L")


def load_rgb(path: str | Path) -> "np.ndarray":
    """H×W×3 uint8 RGB, as the face engine wants it."""
    return _load(path, "RGB")


def _load(path: str | Path, mode: str) -> "np.ndarray":
    """Phones store photos sideways with an EXIF orientation tag; decoders and detectors would
    then report positions in the sideways frame, so the tag is applied first."""
    import numpy as np
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if path.is_dir():
        raise ImageError(path, "is a directory, not an image file")
    try:
        with _no_truncated_images(), Image.open(path) as image:
            image.load()
            image = _flatten(ImageOps.exif_transpose(image))
            return np.ascontiguousarray(np.asarray(image.convert(mode), dtype=np.uint8))
    except FileNotFoundError:
        raise ImageError(path, "no such file") from None
    except PermissionError:
        raise ImageError(path, "permission denied") from None
    except UnidentifiedImageError:
        raise ImageError(path, "not an image file (or a format Pillow cannot read)") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImageError(path, f"cannot read image: {_one_line(exc)}") from None


@contextlib.contextmanager
def _no_truncated_images() -> Iterator[None]:
    from PIL import ImageFile

    with _STRICT:
        saved = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            yield
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = saved


def _flatten(image):
    """8 bits per channel, no alpha: transparency shown on white (a QR code exported with a
    transparent background would otherwise turn black on black), 16-bit scans scaled, not clipped."""
    import numpy as np
    from PIL import Image

    if image.mode in _SIXTEEN_BIT:
        return Image.fromarray((np.asarray(image, dtype=np.uint16) >> 8).astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return image


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__

"""The face engine: dlib's HOG face detector and its 128-number face encoding, through the
`face_recognition` package, loaded only when first used.

`face_recognition` is an optional extra (see `INSTALL_HINT`): the core, the CLI's other commands
and a kiosk with face matching off never import it, dlib or its 100 MB of models. Importing this
module is cheap; `FaceEngine()` is what loads them (about a second on a PC, several on a Pi).

Boxes are `FaceBox(left, top, right, bottom)` in pixels of the image they were found in;
`face_recognition` itself speaks (top, right, bottom, left).
"""

from __future__ import annotations

import importlib.util
import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sentinel.images import ImageError, load_rgb  # noqa: F401 - image files: the one loader, re-exported here

if TYPE_CHECKING:  # numpy is only a type here: importing sentinel.faces must stay cheap
    import numpy as np

#: how to get the engine; install.sh --dev does this for developers and CI
INSTALL_HINT = (
    "face matching needs dlib and face_recognition: "
    "pip install 'digital-sentinel[face]' && pip install --no-deps face_recognition "
    "(./install.sh --dev installs both)"
)
#: the HOG detector's smallest face box: faces narrower than this (in the pixels the detector
#: sees) are not found without upsampling. Measured: boxes come in steps of 72, 86, 104, … px.
HOG_MIN_FACE_PX = 72
#: the most the detector upsamples a frame (each step doubles width and height: 4× the time)
MAX_UPSAMPLE = 2
ENCODING_LENGTH = 128


class EngineUnavailable(RuntimeError):
    """The face engine is not installed (or broken); the message says how to install it."""


@dataclass(frozen=True, slots=True)
class FaceBox:
    """A face's box in pixels: left and top inclusive, right and bottom exclusive."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    def scaled(self, fx: float, fy: float | None = None) -> "FaceBox":
        fy = fx if fy is None else fy
        return FaceBox(round(self.left * fx), round(self.top * fy), round(self.right * fx), round(self.bottom * fy))

    def clipped(self, width: int, height: int) -> "FaceBox":
        return FaceBox(max(0, self.left), max(0, self.top), min(width, self.right), min(height, self.bottom))

    def as_dict(self) -> dict[str, int]:
        return {"left": self.left, "top": self.top, "width": self.width, "height": self.height}

    @classmethod
    def from_css(cls, css: tuple[int, int, int, int]) -> "FaceBox":
        top, right, bottom, left = css
        return cls(int(left), int(top), int(right), int(bottom))

    def css(self) -> tuple[int, int, int, int]:
        return (self.top, self.right, self.bottom, self.left)


def available() -> bool:
    """Whether the engine's packages are installed, without importing them."""
    return all(importlib.util.find_spec(m) is not None for m in ("dlib", "face_recognition_models", "face_recognition"))


_lock = threading.Lock()
_module: Any = None


def load() -> Any:
    """The `face_recognition` module, imported once; EngineUnavailable when it cannot be."""
    global _module
    with _lock:
        if _module is not None:
            return _module
        missing = [m for m in ("dlib", "face_recognition_models", "face_recognition") if importlib.util.find_spec(m) is None]
        if missing:
            raise EngineUnavailable(f"{', '.join(missing)} not installed; {INSTALL_HINT}")
        try:
            import face_recognition
        except (ImportError, OSError) as e:
            raise EngineUnavailable(f"cannot load face_recognition ({type(e).__name__}: {e}); {INSTALL_HINT}") from None
        except SystemExit:  # face_recognition calls quit() when its models are missing
            raise EngineUnavailable(f"face_recognition could not find its models; {INSTALL_HINT}") from None
        _module = face_recognition
        return _module


def upsample_for(min_face_px: float, scale: float) -> int:
    """How many times the detector must double the frame so that a face `min_face_px` wide in the
    original frame, seen at `scale`, is at least the detector's smallest face."""
    seen = min_face_px * scale
    if seen >= HOG_MIN_FACE_PX:
        return 0
    return min(MAX_UPSAMPLE, math.ceil(math.log2(HOG_MIN_FACE_PX / max(seen, 1e-6))))


class FaceEngine:
    """Detection and encoding. Thread-safe for one caller at a time (dlib's models are shared)."""

    def __init__(self) -> None:
        self._fr = load()
        import dlib

        self._detector = dlib.get_frontal_face_detector()  # what face_locations(model="hog") uses
        self._lock = threading.Lock()

    def detect(self, image: "np.ndarray", upsample: int = 0, min_score: float = 0.0) -> list[FaceBox]:
        """Face boxes in `image` (H×W grey or H×W×3 RGB, uint8) whose detector score is above
        `min_score` (dlib's own threshold is 0). HOG works on gradients: grey finds the same faces."""
        return [box for box, _ in self.detect_scored(image, upsample, min_score)]

    def detect_scored(self, image: "np.ndarray", upsample: int = 0, min_score: float = 0.0) -> list[tuple[FaceBox, float]]:
        with self._lock:
            rects, scores, _ = self._detector.run(image, upsample, min_score)
        h, w = image.shape[:2]
        return [
            (FaceBox(r.left(), r.top(), r.right(), r.bottom()).clipped(w, h), float(score))
            for r, score in zip(rects, scores)
        ]

    def encode(self, image: "np.ndarray", boxes: list[FaceBox], jitters: int = 1) -> list["np.ndarray"]:
        """One 128-number encoding per box (boxes in `image`'s pixels)."""
        if not boxes:
            return []
        with self._lock:
            return list(self._fr.face_encodings(image, [b.css() for b in boxes], num_jitters=jitters, model="small"))


    def landmarks(self, image: "np.ndarray", boxes: list[FaceBox]) -> list["np.ndarray | None"]:
        """dlib's 68 landmarks (68×2, image pixels) per box, for the liveness check; None for a
        face whose landmarks do not come out whole."""
        from sentinel.faces.liveness import landmarks_from_parts

        if not boxes:
            return []
        with self._lock:
            found = self._fr.face_landmarks(image, [b.css() for b in boxes], model="large")
        return [landmarks_from_parts(parts) for parts in found]


def as_rgb(image: "np.ndarray") -> "np.ndarray":
    """H×W×3 uint8, C-contiguous: grey planes are replicated (dlib reads RGB or grey, and the
    encoder wants three channels)."""
    import numpy as np

    if image.ndim == 2:
        return np.ascontiguousarray(np.repeat(image[:, :, None], 3, axis=2))
    if image.shape[2] == 4:
        image = image[:, :, :3]
    return np.ascontiguousarray(image, dtype=np.uint8)


def resize(image: "np.ndarray", width: int) -> "np.ndarray":
    """`image` scaled to `width` pixels wide (aspect kept), bilinear: what a lores stream does."""
    import numpy as np
    from PIL import Image

    h, w = image.shape[:2]
    if w == width:
        return image
    height = max(1, round(h * width / w))
    return np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))

"""The face engine: dlib's HOG face detector, its 5-point shape predictor and its 128-number
ResNet face encoder, from the model files of `face-recognition-models`, only when first used; and
dlib's 68-point shape predictor, loaded only where landmarks are wanted (the liveness check,
sentinel/faces/liveness.py). dlib finds the face, its landmarks and cuts the face chip; the
encoder's network runs with numpy (sentinel/faces/encoder.py: dlib's numbers to within its
weights' half precision, 5× faster than the dlib wheels, built without BLAS, in half the memory),
or through dlib where the file is not the network that module knows.

Why not `import face_recognition`: it loads all four models at import, among them the 68-point
predictor (89 MB of heap) that matching never uses and the CNN detector, and imports
`pkg_resources` to find the files: measured 146.7 MB and 1.0-1.15 s against 53.4 MB and 0.36 s for
the three models the engine uses (issue 18; docs/benchmarks.md has the kiosk's RSS). The calls
below are the ones face_recognition makes (`face_encodings(..., model="small")`,
`face_landmarks(..., model="large")`), so landmarks are the same numbers and encodings the same
to within 7.7e-5 (distances between faces within 8.7e-5: tests/test_faces_engine.py).

The engine is an optional extra (see `INSTALL_HINT`): the core, the CLI's other commands and a
kiosk with face matching off never import dlib or its models. Importing this module is cheap;
`FaceEngine()` is what loads them (a third of a second on a PC, more on a Pi). A model file that is
missing or unreadable is `EngineUnavailable` with the install hint, never a crash of the kiosk
(sentinel/faces/kiosk.py then checks codes only).

Boxes are `FaceBox(left, top, right, bottom)` in pixels of the image they were found in;
face_recognition's "css" order is (top, right, bottom, left).
"""

from __future__ import annotations

import importlib.util
import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sentinel.faces.encoder import CHIP_PADDING, CHIP_SIZE
from sentinel.images import ImageError, load_rgb  # noqa: F401 - image files: the one loader, re-exported here

if TYPE_CHECKING:  # numpy is only a type here: importing sentinel.faces must stay cheap
    import numpy as np

#: how to get the engine; install.sh --dev does this for developers and CI
INSTALL_HINT = (
    "face matching needs dlib and the face-recognition-models files: "
    "pip install 'digital-sentinel[face]' (./install.sh --dev installs it)"
)
#: the packages the engine needs (face_recognition itself is not one of them)
PACKAGES = ("dlib", "face_recognition_models")
#: face-recognition-models' files, in its `models/` folder
MODEL_FILES = {
    "five_point": "shape_predictor_5_face_landmarks.dat",
    "sixty_eight_point": "shape_predictor_68_face_landmarks.dat",
    "encoder": "dlib_face_recognition_resnet_model_v1.dat",
}
#: the HOG detector's smallest face box: faces narrower than this (in the pixels the detector
#: sees) are not found without upsampling. Measured: boxes come in steps of 72, 86, 104, … px.
HOG_MIN_FACE_PX = 72
#: the most the detector upsamples a frame (each step doubles width and height: 4× the time)
MAX_UPSAMPLE = 2
ENCODING_LENGTH = 128

log = logging.getLogger("sentinel.faces")


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
    return all(importlib.util.find_spec(m) is not None for m in PACKAGES)


def model_path(which: str) -> Path:
    """The file of one of `MODEL_FILES`, found without importing face_recognition_models (whose
    `__init__` imports pkg_resources, slow and heavy); EngineUnavailable when it is not there."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise EngineUnavailable(f"face_recognition_models not installed; {INSTALL_HINT}")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / MODEL_FILES[which]
    if not path.is_file():
        raise EngineUnavailable(f"face model file missing: {path}; {INSTALL_HINT}")
    return path


def _dlib() -> Any:
    if importlib.util.find_spec("dlib") is None:
        raise EngineUnavailable(f"dlib not installed; {INSTALL_HINT}")
    try:
        import dlib
    except (ImportError, OSError) as e:
        raise EngineUnavailable(f"cannot load dlib ({type(e).__name__}: {e}); {INSTALL_HINT}") from None
    return dlib


def _load_encoder(dlib: Any, dlib_encoder: bool) -> tuple[Any, Any]:
    """(numpy encoder, None), or (None, dlib's encoder) where the file is not the network the
    numpy encoder knows (slower, dlib's exact numbers) or where `dlib_encoder` asks for it (bench/faces.py
    compares the two)."""
    from sentinel.faces.encoder import EncoderFileError, ResnetEncoder

    path = model_path("encoder")
    if dlib_encoder:
        return None, _load_model(dlib, "face_recognition_model_v1", "encoder")
    try:
        return ResnetEncoder.from_file(path), None
    except OSError as e:
        raise EngineUnavailable(f"cannot read the face model {path.name} ({e.strerror or e}); {INSTALL_HINT}") from None
    except EncoderFileError as e:
        log.warning("face encoder: %s (%s); using dlib's own, slower", e, path.name)
        return None, _load_model(dlib, "face_recognition_model_v1", "encoder")


def _load_model(dlib: Any, kind: str, which: str) -> Any:
    path = model_path(which)
    try:
        return getattr(dlib, kind)(str(path))
    except RuntimeError as e:  # dlib's "Error deserializing object…": a damaged file
        raise EngineUnavailable(f"cannot read the face model {path.name} ({e}); {INSTALL_HINT}") from None


def upsample_for(min_face_px: float, scale: float) -> int:
    """How many times the detector must double the frame so that a face `min_face_px` wide in the
    original frame, seen at `scale`, is at least the detector's smallest face."""
    seen = min_face_px * scale
    if seen >= HOG_MIN_FACE_PX:
        return 0
    return min(MAX_UPSAMPLE, math.ceil(math.log2(HOG_MIN_FACE_PX / max(seen, 1e-6))))


def detection_size(frame_width: int, min_face_px: float, downscale_width: int) -> tuple[int, int]:
    """(width, upsample): how wide the detector is shown a `frame_width` frame, and how often it
    must still double it, for a face `min_face_px` wide to be at least `HOG_MIN_FACE_PX` where
    the detector looks. The frame is scaled to `downscale_width` and then doubled as often as that
    face needs, as before; but where the doubled width is no wider than the frame itself, the
    frame is scaled to that width instead of being doubled by dlib (for the defaults: 640 px not
    doubled instead of 320 px doubled). The detector then looks at the same scale as before, so it
    finds the same faces and measures them the same (its box snaps to its 72-px window: at a
    coarser scale a face under `min_face_px` would be reported as `min_face_px` wide and count as
    usable), from real pixels instead of interpolated ones, and without dlib's upsampling pass
    (issue 18; bench/faces.py, "Time per frame")."""
    width = max(1, min(frame_width, downscale_width))
    upsample = upsample_for(min_face_px, width / frame_width)
    doubled = width * 2**upsample
    if upsample and doubled <= frame_width:
        return doubled, 0
    return width, upsample  # no doubling needed, or faces smaller than the detector's in the whole frame: as before


class FaceEngine:
    """Detection and encoding (and landmarks, for the liveness check). Thread-safe for one caller
    at a time (dlib's models are shared). `landmarks=True` loads the 68-point predictor now (the
    kiosk with liveness on: not a stall at the first matched face); otherwise it is loaded at the
    first `landmarks()` call, if any. `dlib_encoder=True` runs the encoder's network through dlib
    instead of numpy (the before of bench/faces.py)."""

    def __init__(self, *, landmarks: bool = False, dlib_encoder: bool = False) -> None:
        dlib = self._dlib = _dlib()
        self._detector = dlib.get_frontal_face_detector()  # face_recognition's face_locations(model="hog")
        self._five_point = _load_model(dlib, "shape_predictor", "five_point")
        self._encoder, self._dlib_encoder = _load_encoder(dlib, dlib_encoder)
        self._sixty_eight: Any = None
        self._lock = threading.Lock()
        if landmarks:
            self._landmark_model()

    def _landmark_model(self) -> Any:
        if self._sixty_eight is None:
            self._sixty_eight = _load_model(self._dlib, "shape_predictor", "sixty_eight_point")
        return self._sixty_eight

    @property
    def encoder_backend(self) -> str:
        """"numpy" (sentinel/faces/encoder.py) or "dlib" (its own encoder: the fallback)."""
        return "dlib" if self._encoder is None else "numpy"

    @property
    def loaded(self) -> tuple[str, ...]:
        """Which of `MODEL_FILES` are in memory (for tests and `sentinel doctor`)."""
        return ("five_point", "encoder") + (("sixty_eight_point",) if self._sixty_eight is not None else ())

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

    def encode(self, image: "np.ndarray", boxes: list[FaceBox]) -> list["np.ndarray"]:
        """One 128-number encoding per box (boxes in `image`'s pixels, `image` H×W×3 RGB): the
        face's 5 landmarks, the 150×150 chip they align, the network on the chip (what dlib's
        `compute_face_descriptor` does, without jitter)."""
        import numpy as np

        if not boxes:
            return []
        if self._encoder is None:
            with self._lock:
                return [np.array(self._dlib_encoder.compute_face_descriptor(image, shape)) for shape in self._shapes(image, boxes)]
        return [self._encoder(chip) for chip in self.chips(image, boxes)]

    def chips(self, image: "np.ndarray", boxes: list[FaceBox]) -> list["np.ndarray"]:
        """The 150×150 RGB chip of each box, aligned on its 5 landmarks: what the encoder's network
        reads (bench/faces.py times the network on them)."""
        with self._lock:
            return [self._dlib.get_face_chip(image, shape, size=CHIP_SIZE, padding=CHIP_PADDING) for shape in self._shapes(image, boxes)]

    def _shapes(self, image: "np.ndarray", boxes: list[FaceBox], predictor: Any = None) -> list[Any]:
        """dlib's shape of each box by `predictor` (the 5-point one by default; the caller holds
        the lock)."""
        rect = self._dlib.rectangle
        predictor = predictor or self._five_point
        return [predictor(image, rect(b.left, b.top, b.right, b.bottom)) for b in boxes]

    def landmarks(self, image: "np.ndarray", boxes: list[FaceBox]) -> list["np.ndarray | None"]:
        """dlib's 68 landmarks per box, as `liveness.landmarks_from_parts` arranges them (image
        pixels), for the liveness check; None for a face whose landmarks do not come out whole."""
        from sentinel.faces.liveness import landmarks_from_parts

        if not boxes:
            return []
        with self._lock:
            shapes = self._shapes(image, boxes, self._landmark_model())
        return [landmarks_from_parts(_named_parts([(p.x, p.y) for p in shape.parts()])) for shape in shapes]


def _named_parts(points: list[tuple[int, int]]) -> dict[str, list[tuple[int, int]]]:
    """The 68 points named as face_recognition's `face_landmarks(model="large")` names them (its
    lips repeat corner points: the liveness thresholds were measured on exactly these)."""
    if len(points) != 68:
        return {}
    p = points
    return {
        "chin": p[0:17],
        "left_eyebrow": p[17:22],
        "right_eyebrow": p[22:27],
        "nose_bridge": p[27:31],
        "nose_tip": p[31:36],
        "left_eye": p[36:42],
        "right_eye": p[42:48],
        "top_lip": p[48:55] + [p[64], p[63], p[62], p[61], p[60]],
        "bottom_lip": p[54:60] + [p[48], p[60], p[67], p[66], p[65], p[64]],
    }


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

"""Image files or a video played back as a camera, for the demo and for tests.

It behaves like a camera rather than a file reader: with `realtime` it paces frames on a clock and
skips frames a slow consumer missed (a real camera does not wait either), so the demo exercises
the same timing as a kiosk. With `realtime=False` it hands out every frame at once, stamped
`sequence / fps`, so that tests drive the pipeline with a fake clock and never sleep.

Module-level imports are stdlib only: numpy, Pillow and OpenCV load when a clip is opened.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from hardware.camera.base import CameraError, FrameSource
from sentinel.frames import Frame

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp"})


@dataclass(frozen=True, slots=True)
class _Picture:
    grey: Any
    colour: Any
    origin: str


class _ImageClip:
    """Pictures decoded as they come up, one held at a time: a folder of hundreds of photos (a
    benchmark's people, a technician's test set) costs one picture's memory, not all of them
    (bench/e2e.py's 43 grey 640×480 pictures, all held, were 12 MB of the kiosk's RSS).
    Each picture is held for `frames_per_image` frames, as a person holds a phone up for a while,
    and decoded once for those frames. Every file is checked when the clip opens (PIL's
    `verify`: the header, and a PNG's chunk checksums, without decoding), so a file that is no
    image or a cut-off PNG is a CameraError at start; one whose pixels still turn out broken (a
    cut-off JPEG) is one when it comes up."""

    def __init__(self, files: list[Path], frames_per_image: int, colour: bool) -> None:
        for path in files:
            _check_image(path)
        self._files = files
        self._repeat = frames_per_image
        self._colour = colour
        self._held: tuple[int, _Picture] | None = None  # (index in files, its picture)

    def take(self, index: int) -> _Picture | None:
        picture_index = index // self._repeat
        if picture_index >= len(self._files):
            return None
        if self._held is None or self._held[0] != picture_index:
            self._held = None  # the old picture goes before the new one is decoded
            self._held = (picture_index, _load_image(self._files[picture_index], self._colour))
        return self._held[1]

    def rewind(self) -> None:
        pass

    def close(self) -> None:
        self._held = None


class _VideoClip:
    """Frames decoded in order as asked for; frames a slow consumer skipped are only grabbed,
    not converted. `take` indexes must not go backwards without a `rewind`."""

    def __init__(self, path: Path, colour: bool) -> None:
        try:
            import cv2
        except ImportError as exc:
            raise CameraError(
                f"cannot replay video {path}: OpenCV is not installed (pip install 'opencv-contrib-python-headless<5'; on the Pi apt install python3-opencv)"
            ) from exc
        self._cv2 = cv2
        self.path = path
        self.colour = colour
        self._capture: Any = None
        self._position = 0  # index of the frame the capture decodes next
        self.rewind()
        if self.take(0) is None:
            self.close()
            raise CameraError(f"cannot read video {path}: not a video OpenCV can decode, or it has no frames")
        self.rewind()

    def take(self, index: int) -> _Picture | None:
        while self._position < index:
            if not self._capture.grab():
                return None
            self._position += 1
        ok, image = self._capture.read()
        if not ok or image is None:
            return None
        self._position += 1
        return _picture_from_bgr(self._cv2, image, self.colour, f"{self.path.name}#{index}")

    def rewind(self) -> None:
        self.close()
        self._capture = self._cv2.VideoCapture(str(self.path))
        if not self._capture.isOpened():
            raise CameraError(f"cannot open video {self.path}")
        self._position = 0

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


@dataclass(eq=False, repr=False)  # FrameSource.__repr__: the type and the name
class ReplaySource(FrameSource):
    """Plays `path` (an image, a folder of images in name order, or a video) as a camera.

    Without `loop`, `read` answers None once the clip is over and `finished` turns True; with
    `realtime` that None still takes `timeout`, so a kiosk loop reading a finished clip idles
    instead of spinning. Realtime playback starts at the first `read`, not at `start()`, so slow
    start-up (fonts, models) does not eat the first scenes.
    """

    path: Path  # a str is taken too: made a Path
    fps: float = 10.0
    frames_per_image: int = 1
    loop: bool = False
    colour: bool = False
    realtime: bool = True
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        if self.fps <= 0:
            raise ValueError(f"fps must be positive, got {self.fps}")
        if self.frames_per_image < 1:
            raise ValueError(f"frames_per_image must be at least 1, got {self.frames_per_image}")
        self.path = Path(self.path)
        self.fps = float(self.fps)
        self.frames_per_image = int(self.frames_per_image)
        self._clip: _ImageClip | _VideoClip | None = None
        self._position = 0  # stream position (= sequence number) of the next frame
        self._pass_start = 0  # stream position where the clip last started over
        self._t0: float | None = None
        self._finished = False

    @property
    def name(self) -> str:
        return f"replay:{self.path}"

    @property
    def finished(self) -> bool:
        return self._finished

    def start(self) -> None:
        if self._clip is None:
            self._clip = _open_clip(self.path, self.frames_per_image, self.colour)

    def close(self) -> None:
        if self._clip is not None:
            self._clip.close()
            self._clip = None

    def read(self, timeout: float) -> Frame | None:
        if self._clip is None:
            raise CameraError(f"{self.name}: read() while not started")
        if self._finished:
            if self.realtime:
                self.sleep(max(0.0, timeout))
            return None
        if not self.realtime:
            return self._deliver(self._position, self._position / self.fps)
        now = self.clock()
        if self._t0 is None:
            self._t0 = now
        due = self._due(self._position)
        if now < due:
            if due - now > timeout:
                self.sleep(max(0.0, timeout))
                return None
            self.sleep(due - now)
            return self._deliver(self._position, due)
        # Late: hand out the newest frame, as a camera would, and skip the ones in between.
        newest = max(self._position, math.floor((now - self._t0) * self.fps + 1e-9))
        return self._deliver(newest, self._due(newest))

    def _due(self, position: int) -> float:
        assert self._t0 is not None
        return self._t0 + position / self.fps

    def _deliver(self, position: int, timestamp: float) -> Frame | None:
        assert self._clip is not None
        picture = self._clip.take(position - self._pass_start)
        if picture is None and self.loop:
            self._clip.rewind()
            self._pass_start = position
            picture = self._clip.take(0)
        if picture is None:
            self._finished = True
            return None
        self._position = position + 1
        return Frame(
            grey=picture.grey, timestamp=timestamp, sequence=position, colour=picture.colour, origin=picture.origin
        )


def _open_clip(path: Path, frames_per_image: int, colour: bool) -> _ImageClip | _VideoClip:
    if not path.exists():
        raise CameraError(f"replay source not found: {path}")
    if path.is_dir():
        files = sorted(
            (p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES), key=lambda p: p.name
        )
        if not files:
            raise CameraError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in replay folder {path}")
        return _ImageClip(files, frames_per_image, colour)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return _ImageClip([path], frames_per_image, colour)
    return _VideoClip(path, colour)


def _check_image(path: Path) -> None:
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.verify()
    except (OSError, ValueError, SyntaxError) as exc:  # verify() raises SyntaxError on some broken files
        raise CameraError(f"cannot read image {path}: {exc}") from exc


def _load_image(path: Path, colour: bool) -> _Picture:
    import numpy as np
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
            grey = np.array(image.convert("L"))
            rgb = np.array(image.convert("RGB")) if colour else None
    except (OSError, ValueError) as exc:
        raise CameraError(f"cannot read image {path}: {exc}") from exc
    return _Picture(_read_only(grey), _read_only(rgb), path.name)


def _picture_from_bgr(cv2: Any, image: Any, colour: bool, origin: str) -> _Picture:
    if image.ndim == 2:
        grey, rgb = image, (cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if colour else None)
    else:
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if colour else None
    return _Picture(_read_only(grey), _read_only(rgb), origin)


def _read_only(array: Any) -> Any:
    """Cached pictures are handed out many times; a consumer drawing on one must not change the
    frames that follow."""
    if array is not None:
        array.setflags(write=False)
    return array

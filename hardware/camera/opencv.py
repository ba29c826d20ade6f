"""USB (UVC) cameras through OpenCV / V4L2.

OpenCV's capture keeps a queue of frames, so a consumer slower than the camera reads frames that
are seconds old: a person would be checked on where their phone was, not where it is. A reader
thread therefore drains the camera continuously and keeps only the newest frame; `read` waits for
one newer than the last it returned. Converting to grey and RGB happens in `read`, so frames that
nobody takes cost nothing on a Pi.

USB cameras get unplugged, or the driver stops delivering; the thread then marks the source
unhealthy and reopens it with capped exponential backoff (0.5 s doubling to
`base.RECONNECT_MAX_S`, 4 s: a camera plugged back in is seen within about 5 s), so the kiosk
recovers without a restart and the heartbeat can say what is wrong meanwhile. Each attempt counts
in `reconnect_attempts`, which is how the systemd watchdog tells "retrying" from "wedged": a
reader stuck inside the driver's read() stops counting, and only then does the watchdog let
systemd restart the kiosk (sentinel/notify.py). A camera missing at start raises CameraError
from `start()`; the kiosk wraps this source in `retry.RetryingSource`, which keeps trying.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any, Callable

from hardware.camera.base import (
    RECONNECT_INITIAL_S,
    RECONNECT_MAX_S,
    Backoff,
    CameraError,
    FrameSource,
)
from sentinel.frames import Frame

log = logging.getLogger("hardware.camera.opencv")


class OpenCVSource(FrameSource):
    """`device` is a V4L2 index (0 = /dev/video0), a device path, or anything else
    cv2.VideoCapture opens (a video file or stream URL, which tests use)."""

    def __init__(
        self,
        device: int | str = 0,
        width: int = 640,
        height: int = 480,
        fps: float = 30,
        colour: bool = False,
        retry_initial: float = RECONNECT_INITIAL_S,
        retry_max: float = RECONNECT_MAX_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._device = device
        self._size = (width, height)
        self._fps = fps
        self._colour = colour
        self._backoff = Backoff(retry_initial, retry_max)
        self._attempts = 0
        self._clock = clock
        self._cv2: Any = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._latest: tuple[Any, float, int] | None = None  # (BGR image, timestamp, sequence)
        self._captured = 0  # frames taken from the camera so far; the next one's sequence
        self._returned = -1  # sequence of the frame `read` returned last
        self._healthy = True
        self._last_error: str | None = None
        self._retry_delay: float | None = None

    @property
    def name(self) -> str:
        return f"opencv:{self._device}"

    @property
    def retry_delay(self) -> float | None:
        """Seconds the reader waits before its next attempt to reopen the camera; None while frames
        flow. Grows 0.5 s, 1 s, 2 s, then 4 s (`retry_max`) between attempts."""
        return self._retry_delay

    @property
    def retry_max(self) -> float:
        """The longest wait between two attempts to reopen the camera."""
        return self._backoff.cap

    def start(self) -> None:
        if self._thread is not None:
            return
        try:
            import cv2
        except ImportError as exc:
            raise CameraError(
                "OpenCV is not installed: on Raspberry Pi OS run `sudo apt install python3-opencv`"
            ) from exc
        self._cv2 = cv2
        capture = self._open()
        self._stop.clear()
        self._healthy = True
        self._thread = threading.Thread(target=self._run, args=(capture,), name=f"camera {self._device}", daemon=True)
        self._thread.start()

    def read(self, timeout: float) -> Frame | None:
        if self._thread is None:
            raise CameraError(f"{self.name}: read() while not started")
        with self._cond:
            fresh = self._cond.wait_for(lambda: self._captured - 1 > self._returned or self._stop.is_set(), timeout)
            if not fresh or self._stop.is_set() or self._latest is None:
                return None
            image, timestamp, sequence = self._latest
            self._returned = sequence
        return self._frame(image, timestamp, sequence)

    def close(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        # A driver stuck inside read() cannot be interrupted; the thread is a daemon and releases
        # the device itself once read() returns.
        thread.join(timeout=5.0)
        if thread.is_alive():
            log.warning("%s: reader thread still blocked in the driver after close()", self.name)

    # --- reader thread ---------------------------------------------------------------------------

    def _open(self) -> Any:
        cv2 = self._cv2
        device = self._device
        is_v4l2 = isinstance(device, int) or str(device).startswith("/dev/video")
        api = cv2.CAP_V4L2 if is_v4l2 and sys.platform.startswith("linux") else cv2.CAP_ANY
        capture = cv2.VideoCapture(device, api)
        if not capture.isOpened():
            capture.release()
            raise CameraError(
                f"cannot open camera {device!r}: it does not exist, is busy, or is not readable "
                "(is the user in the 'video' group?)"
            )
        width, height = self._size
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        capture.set(cv2.CAP_PROP_FPS, self._fps)
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # honoured by some drivers; the thread covers the rest
        return capture

    def _run(self, capture: Any) -> None:
        try:
            while not self._stop.is_set():
                if capture is None:
                    self._attempts += 1
                    try:
                        capture = self._open()
                    except Exception as exc:
                        self._back_off(str(exc))
                        continue
                ok, image = capture.read()
                if self._stop.is_set():
                    break
                if ok and image is not None:
                    self._publish(image)
                    continue
                capture.release()
                capture = None
                self._back_off(f"camera {self._device!r} stopped delivering frames")
        finally:
            if capture is not None:
                capture.release()

    def _back_off(self, error: str) -> None:
        delay = self._backoff.next_delay()
        if self._healthy or error != self._last_error:
            log.warning("%s: %s; retrying in %g s", self.name, error, delay)
        self._healthy = False
        self._last_error = error
        self._retry_delay = delay
        self._stop.wait(delay)

    def _publish(self, image: Any) -> None:
        with self._cond:
            self._latest = (image, self._clock(), self._captured)
            self._captured += 1
            if not self._healthy:
                log.info("%s: frames flowing again", self.name)
            self._healthy = True
            self._retry_delay = None
            self._backoff.reset()
            self._cond.notify_all()

    def _frame(self, image: Any, timestamp: float, sequence: int) -> Frame:
        cv2 = self._cv2
        if image.ndim == 2:
            grey = image
            rgb = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if self._colour else None
        else:
            grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
            rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if self._colour else None
        return Frame(grey=grey, timestamp=timestamp, sequence=sequence, colour=rgb, origin=self._device)

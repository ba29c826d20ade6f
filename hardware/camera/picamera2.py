"""Raspberry Pi cameras (libcamera) through picamera2.

Decoders want grey, and the lores stream in YUV420 carries it for free: its first plane (Y) is
the greyscale image, so no conversion runs on the Pi's CPU. The lores buffer's rows are `stride`
bytes long, which can be wider than the image; the padding is cropped off.

picamera2's blocking captures can hang for ever (a loose ribbon cable, a wedged ISP), which would
freeze the kiosk. So a capture is started with `wait=False` and waited for with a timeout. The
pending capture is kept across reads rather than abandoned: an abandoned job still takes a
request when a frame finally arrives, nobody releases it, and after a few such leaks libcamera
runs out of buffers and the camera stalls for real. A camera silent for `frame_timeout` seconds
counts as a stall; after `reopen_after` stalls in a row it is closed and opened again. A camera
that will not open is tried again every `frame_timeout` seconds, at most `base.RECONNECT_MAX_S`
(4 s) apart, from `read`; each attempt counts in `reconnect_attempts`, which keeps the systemd
watchdog fed while the kiosk retries (sentinel/notify.py). A camera missing at start raises
CameraError from `start()`; the kiosk wraps this source in `retry.RetryingSource`.

The main stream (`main_size`, 1280×960 by default) is the same view at full resolution. Without
colour it is configured as YUV420 too, and each frame offers its Y plane as `Frame.detail`: the
decoders read a code located but not decoded in the lores plane again from there
(sentinel/decoding/detail.py). The copy is made only when asked, so the frame's request is held
until the next `read` (or `close`) instead of being released at once: one of the camera's buffers
(picamera2 gives a video configuration six), never more. With colour the main stream is RGB and the
detail is its grey, from the colour copy the frame already holds.

picamera2 comes from apt (python3-picamera2), never from pip (docs/design.md); it is imported in
`start()`, so this module loads anywhere.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from functools import partial
from typing import Any, Callable

from hardware.camera.base import RECONNECT_MAX_S, CameraError, FrameSource
from sentinel.frames import Frame

log = logging.getLogger("hardware.camera.picamera2")

_TIMEOUTS = (TimeoutError, concurrent.futures.TimeoutError)  # the same class from Python 3.11 on


class Picamera2Source(FrameSource):
    """Grey from the lores stream's Y plane; colour (when asked) from the main stream, so it has
    `main_size`, not the grey plane's size."""

    def __init__(
        self,
        main_size: tuple[int, int] = (1280, 960),
        lores_size: tuple[int, int] = (640, 480),
        colour: bool = False,
        frame_timeout: float = 2.0,
        reopen_after: int = 2,
        camera_num: int = 0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._main_size = tuple(main_size)
        self._lores_size = tuple(lores_size)
        self._colour = colour
        self._frame_timeout = frame_timeout
        self._reopen_after = reopen_after
        self._camera_num = camera_num
        self._clock = clock
        self._sleep = sleep
        self._started = False
        self._camera: Any = None
        self._lores_geometry = (0, 0, 0)  # width, height, stride as the camera configured them
        self._main_geometry = (0, 0, 0)
        self._held: Any = None  # the last frame's request, while its main stream may still be read
        self._job: Any = None  # the capture in flight, kept across reads
        self._job_since = 0.0  # when the current stall window began
        self._stalls = 0
        self._next_open_at = 0.0
        self._sequence = 0
        self._healthy = True
        self._last_error: str | None = None
        self.timeouts = 0  # reads that found no frame in time: for the heartbeat
        self.reopens = 0
        self._attempts = 0

    @property
    def name(self) -> str:
        return f"picamera2:{self._camera_num}"

    def start(self) -> None:
        if self._started:
            return
        self._camera = self._open()
        self._started = True
        self._healthy = True

    def close(self) -> None:
        self._started = False
        self._shut_camera()

    def read(self, timeout: float) -> Frame | None:
        if not self._started:
            raise CameraError(f"{self.name}: read() while not started")
        self._let_go()  # the previous frame is done with: its buffer goes back to the camera
        now = self._clock()
        deadline = now + max(0.0, timeout)
        if self._camera is None and not self._reopen_if_due(now):
            self._sleep(max(0.0, deadline - self._clock()))  # no camera: idle, don't spin the caller
            return None
        try:
            if self._job is None:
                self._job = self._camera.capture_request(wait=False)
                self._job_since = now
            wait_for = max(0.0, min(deadline, self._job_since + self._frame_timeout) - now)
            request = self._camera.wait(self._job, timeout=wait_for)
        except _TIMEOUTS:
            return self._on_timeout()
        except Exception as exc:  # picamera2 failed the capture: treat the camera as wedged
            self._job = None
            self._fail(f"capture failed: {exc}")
            self._reopen()
            return None
        self._job = None
        self._stalls = 0
        self._healthy = True
        try:
            frame = self._frame(request)
        except BaseException:
            request.release()
            raise
        if self._colour:
            request.release()  # the detail comes from the frame's own colour copy
        else:
            self._held = request
        return frame

    def _let_go(self) -> None:
        request, self._held = self._held, None
        if request is not None:
            _quietly(request.release)

    # --- internals -----------------------------------------------------------------------------

    def _on_timeout(self) -> None:
        self.timeouts += 1
        now = self._clock()
        if now - self._job_since < self._frame_timeout:
            return None  # the caller's timeout was shorter than a stall: keep waiting next read
        self._stalls += 1
        self._job_since = now  # the pending capture stays; the next stall window starts now
        self._fail(f"no frame from the camera for {self._frame_timeout:g} s")
        if self._stalls >= self._reopen_after:
            self._reopen()
        return None

    def _fail(self, error: str) -> None:
        if self._healthy or error != self._last_error:
            log.warning("%s: %s", self.name, error)
        self._healthy = False
        self._last_error = error

    def _reopen(self) -> None:
        log.warning("%s: reopening the camera", self.name)
        self._shut_camera()
        self.reopens += 1
        self._stalls = 0
        self._next_open_at = 0.0
        self._reopen_if_due(self._clock())

    def _reopen_if_due(self, now: float) -> bool:
        if now < self._next_open_at:
            return False
        self._attempts += 1
        try:
            self._camera = self._open()
        except CameraError as exc:
            self._fail(str(exc))
            self._next_open_at = now + min(self._frame_timeout, RECONNECT_MAX_S)
            return False
        return True

    def _open(self) -> Any:
        try:
            from picamera2 import Picamera2
        except ImportError as exc:
            raise CameraError(
                "picamera2 is not installed: on Raspberry Pi OS run `sudo apt install python3-picamera2` "
                "(and create the venv with --system-site-packages)"
            ) from exc
        try:
            camera = Picamera2(self._camera_num)
        except IndexError as exc:
            raise CameraError(
                f"no Raspberry Pi camera #{self._camera_num} found: check the ribbon cable, "
                "then `rpicam-hello --list-cameras`"
            ) from exc
        except Exception as exc:
            raise CameraError(f"cannot open Raspberry Pi camera #{self._camera_num}: {exc}") from exc
        try:
            main: dict[str, Any] = {"size": self._main_size}
            # libcamera's "RGB888": bytes are B, G, R in memory; YUV420: the Y plane is grey
            main["format"] = "RGB888" if self._colour else "YUV420"
            config = camera.create_video_configuration(main=main, lores={"size": self._lores_size, "format": "YUV420"})
            camera.configure(config)
            lores = camera.stream_configuration("lores")
            width, height = lores["size"]  # the camera may have aligned the requested size
            self._lores_geometry = (width, height, lores["stride"])
            full = camera.stream_configuration("main")
            self._main_geometry = (*full["size"], full["stride"])
            camera.start()
        except Exception as exc:
            _quietly(camera.close)
            raise CameraError(f"cannot start Raspberry Pi camera #{self._camera_num}: {exc}") from exc
        return camera

    def _shut_camera(self) -> None:
        self._let_go()
        camera, self._camera, self._job = self._camera, None, None
        if camera is None:
            return
        cancel = getattr(camera, "cancel_all_and_flush", None)  # frees a hung job; older picamera2 lacks it
        if cancel is not None:
            _quietly(cancel)
        _quietly(camera.stop)
        _quietly(camera.close)

    def _frame(self, request: Any) -> Frame:
        import numpy as np

        width, height, stride = self._lores_geometry
        buffer = np.asarray(request.make_buffer("lores"), dtype=np.uint8)
        # Copy: the request's memory goes back to the camera when it is released.
        grey = np.ascontiguousarray(buffer[: stride * height].reshape(height, stride)[:, :width])
        colour = None
        if self._colour:
            colour = np.ascontiguousarray(request.make_array("main")[:, :, 2::-1])
            detail = partial(_grey_of, colour)
        else:
            detail = partial(self._main_y_plane, request)
        frame = Frame(grey=grey, timestamp=self._clock(), sequence=self._sequence, colour=colour, origin=self.name, detail=detail)
        self._sequence += 1
        return frame

    def _main_y_plane(self, request: Any) -> Any:
        """The main stream's Y plane of `request` (a copy), or None once the request went back to
        the camera (the next frame was read)."""
        import numpy as np

        if request is not self._held:
            return None
        width, height, stride = self._main_geometry
        buffer = np.asarray(request.make_buffer("main"), dtype=np.uint8)
        return np.ascontiguousarray(buffer[: stride * height].reshape(height, stride)[:, :width])


def _grey_of(rgb: Any) -> Any:
    """Grey (ITU-R 601 luma, as the Y plane) of an RGB frame."""
    import numpy as np

    return np.ascontiguousarray((rgb @ np.array([0.299, 0.587, 0.114], np.float32)).astype(np.uint8))


def _quietly(action: Callable[[], Any]) -> None:
    """Tearing down a wedged camera raises all sorts of errors; reopening matters more."""
    try:
        action()
    except Exception as exc:  # noqa: BLE001
        log.debug("ignored while closing the camera: %s", exc)

"""A camera that runs only while scanning is wanted: a handheld's battery saver.

`GatedSource` wraps any frame source. While `active()` is true (the trigger is held or armed, or a
vehicle is open) it opens the camera if it is closed and hands out its frames. While it is false,
`read` waits out its timeout and answers None with `paused` set, so the kiosk loop idles, decodes
nothing and does not take the silence for a camera fault (the pipeline reads `paused`); after
`linger_s` without scanning the camera is closed (picamera2 stops streaming, a USB camera is
released), and opened again on the next press. `linger_s` keeps the camera on between two
vehicles a few seconds apart: opening a Pi camera costs about a second.

A camera that fails to open is reported like any camera fault (`healthy` False, `last_error`,
no `paused`), so the screen says so while scanning is wanted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import TYPE_CHECKING

from hardware.camera.base import CameraError, FrameSource

if TYPE_CHECKING:
    from sentinel.frames import Frame

log = logging.getLogger("hardware.camera.gated")


@dataclass(eq=False, repr=False)  # FrameSource.__repr__: the type and the name
class GatedSource(FrameSource):
    """`GatedSource(inner, active, linger_s=3.0)`: `inner` runs while `active()` is true."""

    inner: FrameSource
    active: Callable[[], bool]
    _: KW_ONLY
    linger_s: float = 3.0
    open_at_start: bool = True
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    opens: int = field(default=0, init=False)  # times the camera was (re)opened
    on_s: float = field(default=0.0, init=False)  # seconds the camera was open, closed periods complete (battery accounting)

    def __post_init__(self) -> None:
        self._open = False
        self._started = False
        self._last_active: float | None = None
        self._opened_at: float | None = None
        self._open_error: str | None = None
        self._paused = False  # the last read found scanning not wanted: None on purpose, not a fault

    @property
    def name(self) -> str:
        return f"gated:{self.inner.name}"

    @property
    def is_open(self) -> bool:
        return self._open

    @property
    def paused(self) -> bool:
        """The last read found scanning not wanted: None on purpose, not a fault."""
        return self._paused

    @property
    def finished(self) -> bool:
        """A replayed clip that is over (demo, tests); a live camera never finishes."""
        return bool(self.inner.finished)

    @property
    def healthy(self) -> bool:
        return self._open_error is None and self.inner.healthy

    @property
    def last_error(self) -> str | None:
        return self._open_error or self.inner.last_error

    @property
    def reconnect_attempts(self) -> int:
        return int(self.inner.reconnect_attempts or 0)

    def camera_on_s(self) -> float:
        """Seconds the camera has been open so far, including the current period."""
        running = self.clock() - self._opened_at if self._open and self._opened_at is not None else 0.0
        return self.on_s + running

    def start(self) -> None:
        """Open the camera once, so that a missing camera is reported at start-up as on a kiosk;
        it closes again after `linger_s` if nobody scans."""
        self._started = True
        self._last_active = self.clock()
        if self.open_at_start:
            self._open_inner()  # raises CameraError: the device cannot be used at all

    def read(self, timeout: float) -> "Frame | None":
        if not self._started:
            raise CameraError(f"{self.name}: read() while not started")
        now = self.clock()
        if self._wanted():
            self._paused = False
            self._last_active = now
            if not self._open:
                try:
                    self._open_inner()
                except CameraError as e:
                    if self._open_error != str(e):
                        log.error("camera would not open: %s", e)
                    self._open_error = str(e)
                    self.sleep(max(0.0, timeout))
                    return None
            return self.inner.read(timeout)
        self._paused = True
        if self._open and (self._last_active is None or now - self._last_active >= self.linger_s):
            self._close_inner()
        self.sleep(max(0.0, timeout))
        return None

    def _wanted(self) -> bool:
        try:
            return bool(self.active())
        except Exception:  # a bug in the predicate must not blind the camera: keep scanning
            log.exception("scanning predicate failed; keeping the camera on")
            return True

    def _open_inner(self) -> None:
        self.inner.start()
        self._open = True
        self._open_error = None
        self._opened_at = self.clock()
        self.opens += 1
        log.info("camera on (%s)", self.inner.name)

    def _close_inner(self) -> None:
        try:
            self.inner.close()
        except Exception:  # closing is best effort; the next open will tell
            log.exception("camera close failed")
        self._open = False
        if self._opened_at is not None:
            self.on_s += self.clock() - self._opened_at
        self._opened_at = None
        log.info("camera off: nothing to scan for %.0f s", self.linger_s)

    def close(self) -> None:
        if self._open:
            self._close_inner()
        else:
            self.inner.close()

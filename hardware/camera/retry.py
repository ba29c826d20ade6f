"""A camera that is missing or broken at start is retried, not fatal: the kiosk's frame source.

Without this, a camera that cannot be opened when the kiosk starts (no /dev/video0, the Pi
camera's ribbon loose, a replay path that does not exist, an image that does not decode) raised
CameraError out of `Kiosk.run`, and systemd restarted the kiosk every few seconds with a black
screen and no READY. `RetryingSource` wraps any backend so that:

- `start()` never raises: it tries once, and on failure the source is unhealthy (`healthy`
  False, `last_error` says why, for the technician menu and the heartbeat);
- `read(timeout)` tries to open the camera again when the back-off says so (0.5 s doubling to
  `base.RECONNECT_MAX_S`, 4 s), and otherwise waits out `timeout` and answers None, like a
  camera that delivers nothing. The pipeline turns that silence into the camera fault screen
  (the relay stays closed: nothing is checked) and back to the idle screen on the first frame,
  so a camera that appears is in use within about 5 s;
- a backend whose `read` raises (a device gone in a way the backend does not handle itself) is
  closed and reopened on the same back-off. Backends that recover by themselves (OpenCV's
  reader thread, picamera2's reopen) do so inside and never raise.

Every attempt counts in `reconnect_attempts` (with the backend's own), which the systemd
watchdog reads as "alive and retrying" (sentinel/notify.py). Clock and sleep are passed in so
tests drive it without waiting.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hardware.camera.base import Backoff, CameraError, FrameSource

if TYPE_CHECKING:
    from sentinel.frames import Frame

log = logging.getLogger("hardware.camera.retry")


class RetryingSource(FrameSource):
    def __init__(
        self,
        inner: FrameSource,
        *,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.inner = inner
        self._backoff = backoff or Backoff()
        self._clock = clock
        self._sleep = sleep
        self._started = False
        self._open = False
        self._error: str | None = None
        self._next_at = 0.0
        self._attempts = 0
        self._failed_once = False

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def is_open(self) -> bool:
        return self._open

    @property
    def healthy(self) -> bool:
        return self._open and self._error is None and bool(self.inner.healthy)

    @property
    def last_error(self) -> str | None:
        return self._error or self.inner.last_error

    @property
    def reconnect_attempts(self) -> int:
        return self._attempts + int(self.inner.reconnect_attempts or 0)

    @property
    def finished(self) -> bool:
        """A replayed clip that is over; a camera that never opened has not finished anything."""
        return self._open and bool(self.inner.finished)

    def __getattr__(self, name: str) -> Any:  # retry_delay, timeouts, reopens …: the backend's
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        self._try_open(self._clock())

    def read(self, timeout: float) -> Frame | None:
        if not self._started:
            raise CameraError(f"{self.name}: read() while not started")
        if not self._open:
            now = self._clock()
            if now >= self._next_at:
                self._attempts += 1
                self._try_open(now)
            if not self._open:
                self._sleep(max(0.0, min(timeout, self._next_at - self._clock())))
                return None
        try:
            return self.inner.read(timeout)
        except Exception as e:
            self._failed(f"{self.name}: read failed: {e}", self._clock())
            self._close_inner()
            return None

    def close(self) -> None:
        self._started = False
        self._close_inner()

    # --- internals ---------------------------------------------------------------------------

    def _try_open(self, now: float) -> None:
        try:
            self.inner.start()
        except Exception as e:
            if not isinstance(e, CameraError) and not self._failed_once:
                log.exception("camera %s failed to start", self.name)
            self._failed(str(e) or type(e).__name__, now)
            self._close_inner()
            return
        self._open = True
        if self._failed_once:
            log.info("camera %s is open again after %d attempts", self.name, self._attempts)
        self._error = None
        self._backoff.reset()

    def _failed(self, error: str, now: float) -> None:
        delay = self._backoff.next_delay()
        if error != self._error:
            log.error("camera unavailable: %s; retrying every %g s at most", error, self._backoff.cap)
        self._error = error
        self._failed_once = True
        self._next_at = now + delay

    def _close_inner(self) -> None:
        self._open = False
        try:
            self.inner.close()
        except Exception:
            log.debug("closing %s failed", self.name, exc_info=True)

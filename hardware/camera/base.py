"""The frame-source seam: the one interface every camera backend implements.

The kiosk loop must stay alive when a camera misbehaves (real captures hang, USB cameras get
unplugged), so `read` takes a timeout and answers None instead of blocking, and a backend that
recovers on its own reports its state through `healthy` / `last_error` for the heartbeat and the
watchdog rather than by raising into the loop. The reconnect back-off is
`hardware.backoff.Backoff` (capped at `RECONNECT_MAX_S`), one for every camera backend,
`retry.RetryingSource` and the scanners.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from hardware.backoff import RECONNECT_INITIAL_S, RECONNECT_MAX_S, Backoff  # noqa: F401 (their old home)

if TYPE_CHECKING:
    from sentinel.frames import Frame




class CameraError(Exception):
    """A camera cannot be used at all; the message is one line a technician can act on."""


class FrameSource(ABC):
    """Newest frame, or None after `timeout` seconds; a source never queues stale frames.

    Use as a context manager, or call `start()` and `close()`; `close()` may be called twice.
    """

    @property
    @abstractmethod
    def name(self) -> str:
        """A short human label for logs and the status screen, e.g. "replay:scenes/"."""

    @abstractmethod
    def start(self) -> None:
        """Open the device; raises CameraError when it cannot be used at all."""

    @abstractmethod
    def read(self, timeout: float) -> "Frame | None":
        """The newest frame not returned before, or None when none arrived within `timeout`."""

    @abstractmethod
    def close(self) -> None:
        """Release the device; safe to call more than once."""

    # a backend that recovers on its own keeps these up to date; the properties below report them
    _healthy = True
    _last_error: str | None = None
    _attempts = 0

    @property
    def healthy(self) -> bool:
        """False while the backend is failing to deliver frames and trying to recover."""
        return self._healthy

    @property
    def paused(self) -> bool:
        """Off on purpose (a handheld between vehicles: `gated.GatedCamera`), so no frame is no fault."""
        return False

    @property
    def finished(self) -> bool:
        """A finite source (a replayed clip) has given its last frame; a live camera never finishes."""
        return False

    @property
    def last_error(self) -> str | None:
        """The most recent problem, kept after recovery so that a heartbeat can report it."""
        return self._last_error

    @property
    def reconnect_attempts(self) -> int:
        """How many times the backend has tried to (re)open the device after a failure. It grows
        while the backend is retrying, which the watchdog takes as "alive and trying"
        (sentinel/notify.py); a backend stuck in its driver stops counting."""
        return self._attempts

    def __enter__(self) -> "FrameSource":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

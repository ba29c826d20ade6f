"""The frame-source seam: the one interface every camera backend implements.

The kiosk loop must stay alive when a camera misbehaves (real captures hang, USB cameras get
unplugged), so `read` takes a timeout and answers None instead of blocking, and a backend that
recovers on its own reports its state through `healthy` / `last_error` for the heartbeat and the
watchdog rather than by raising into the loop.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

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

    @property
    def healthy(self) -> bool:
        """False while the backend is failing to deliver frames and trying to recover."""
        return True

    @property
    def last_error(self) -> str | None:
        """The most recent problem, kept after recovery so that a heartbeat can report it."""
        return None

    def __enter__(self) -> "FrameSource":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

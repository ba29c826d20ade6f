"""The frame-source seam: the one interface every camera backend implements.

The kiosk loop must stay alive when a camera misbehaves (real captures hang, USB cameras get
unplugged), so `read` takes a timeout and answers None instead of blocking, and a backend that
recovers on its own reports its state through `healthy` / `last_error` for the heartbeat and the
watchdog rather than by raising into the loop. The reconnect back-off (`Backoff`, capped at
`RECONNECT_MAX_S`) lives here, once, for every backend and for `retry.RetryingSource`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sentinel.frames import Frame


#: Longest wait between two attempts to (re)open a camera that is missing or failing. A camera
#: that comes back is therefore seen within this plus one open (≈ 1 s), which the kiosk promises
#: to be within 5 s. Opening a missing /dev/video0 or Pi camera costs a few ms, so trying every
#: 4 s is no burden. sentinel/notify.py's watchdog keeps pinging while these attempts go on (see
#: there): the two policies are stated against this one number.
RECONNECT_MAX_S = 4.0
#: the first wait after a failure; it doubles up to RECONNECT_MAX_S
RECONNECT_INITIAL_S = 0.5


@dataclass
class Backoff:
    """Capped exponential back-off for reopening a camera: `initial`, doubling, at most `cap`."""

    initial: float = RECONNECT_INITIAL_S
    cap: float = RECONNECT_MAX_S

    def __post_init__(self) -> None:
        self.cap = max(self.cap, 0.0)
        self._next = min(self.initial, self.cap)

    def next_delay(self) -> float:
        """The wait before the next attempt; each call doubles the one after (up to `cap`)."""
        delay = self._next
        self._next = min(max(delay, 1e-3) * 2, self.cap)
        return delay

    def reset(self) -> None:
        self._next = min(self.initial, self.cap)


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

    @property
    def reconnect_attempts(self) -> int:
        """How many times the backend has tried to (re)open the device after a failure. It grows
        while the backend is retrying, which the watchdog takes as "alive and trying"
        (sentinel/notify.py); a backend stuck in its driver stops counting."""
        return 0

    def __enter__(self) -> "FrameSource":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

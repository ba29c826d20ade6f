"""One background thread that runs a loop until it is told to stop: the heartbeat's and the
uploader's (each had its own copy of start/stop/is_alive).

`Worker(name, target)`: `start()` runs `target` on a daemon thread called `name` (RuntimeError
when started twice); `target` loops until `stopping` is set, waiting on it between rounds so that
`stop()` cuts the wait short. `stop(timeout_s)` sets `stopping` and waits at most `timeout_s` for
the round in flight; it never waits for itself (a stop from the worker's own thread) and answers
False when the thread is still busy, so the caller can say what that means (nothing is killed).
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class Worker:
    def __init__(self, name: str, target: Callable[[], None]) -> None:
        self.name = name
        self._target = target
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self.name} already started")
        self.stopping.clear()
        self._thread = threading.Thread(target=self._target, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float) -> bool:
        """Stop and wait at most `timeout_s`; True when the thread ended or never ran."""
        self.stopping.set()
        thread = self._thread
        if thread is None:
            return True
        if thread is not threading.current_thread():
            thread.join(timeout_s)
        return not thread.is_alive()

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def ended(self) -> bool:
        """Started once and no longer running (stopped, or died)."""
        return self._thread is not None and not self._thread.is_alive()

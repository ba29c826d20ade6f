"""The display's helpers off the render thread: the status bar's poller, and the worker that hands
the kiosk what happened on screen (the technician menu opened or closed, a vehicle button tapped).

Both exist so that the render thread never waits on the kiosk (a status read may touch SQLite; a
button handler may take a lock), and neither lets the kiosk's failure stop the display: a
provider that fails keeps the last status shown (logged once until it works again), a hook that
raises is logged and the next one runs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sentinel.screens import StatusBar

log = logging.getLogger("ui.display")


class StatusPoller:
    """Asks the kiosk's status provider once a second, off the render thread (it may read SQLite)."""

    def __init__(self, provider: Callable[[], StatusBar] | None, fallback: StatusBar):
        self.latest = fallback
        self._provider = provider
        self._stop = threading.Event()
        self._failed = False
        self._thread = threading.Thread(target=self._run, name="ui-status", daemon=True)
        if provider is not None:
            self._thread.start()

    def set_provider(self, provider: Callable[[], StatusBar]) -> None:
        self._provider = provider
        if not self._thread.is_alive() and not self._stop.is_set():
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.latest = self._provider()
                self._failed = False
            except Exception:
                if not self._failed:
                    log.exception("status bar provider failed (shown as before until it works again)")
                self._failed = True
            self._stop.wait(1.0)

    def close(self) -> None:
        self._stop.set()


class Handoff:
    """Calls handed over one at a time, in order, on a worker thread of their own (`name`); a call
    that raises is logged with `what` and its argument, and the next call runs."""

    def __init__(self, name: str, what: str) -> None:
        self._what = what
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    def submit(self, handler: Callable[[Any], None], arg: Any) -> None:
        try:
            self._pool.submit(self._call, handler, arg)
        except RuntimeError:  # closing
            pass

    def _call(self, handler: Callable[[Any], None], arg: Any) -> None:
        try:
            handler(arg)
        except Exception:  # the kiosk's bug must not kill the worker or the render thread
            log.exception("display: %s failed (%s)", self._what, arg)

    def close(self, cancel: bool = False) -> None:
        self._pool.shutdown(wait=False, cancel_futures=cancel)

"""A piece of a check handed to another thread (a verifier worker, the writer), and the frame loop's
cheap wait for it.

`Handover(fn, *args)` is handed to any `concurrent.futures.Executor` as `executor.submit(h.run)`
(the kiosk's thread pools, the tests' inline executor); the frame loop then waits on the handover
itself, not on the executor's Future. Waiting is one lock acquire, which the worker releases when
`fn` returns: `concurrent.futures.wait` builds a waiter, an event and a condition around every
wait, and on a check's hand-over there and back (frame loop -> worker -> frame loop) that
machinery cost 0.08 ms more than the lock: `bench/handover.py`, 105 against 183 µs median, with
the CPU idle 4 ms before each as it is between people (docs/benchmarks.md, issue 18).

How it fails: whatever `fn` raises (BaseException included) is kept and raised again by
`result()`, on the frame loop; `fail(error)` settles a handover that no executor would take (one
shut down), so that a waiter is never left waiting for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class Handover:
    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self._fn = fn
        self._args = args
        self._finished = threading.Lock()
        self._finished.acquire()  # released once, when `fn` has returned or raised
        self._done = False
        self._result: Any = None
        self._error: BaseException | None = None

    def run(self) -> None:
        """Call `fn` (on the worker); never raises, whatever `fn` does."""
        try:
            self._result = self._fn(*self._args)
        except BaseException as e:  # noqa: BLE001 - handed to the waiter, as a Future would
            self._error = e
        finally:
            self._fn = self._args = None  # type: ignore[assignment]  # nothing kept alive past the check
            self._settle()

    def fail(self, error: BaseException) -> None:
        """Settle a handover whose `run` will never be called (the executor refused it)."""
        self._error = error
        self._settle()

    def _settle(self) -> None:
        self._done = True
        self._finished.release()

    def done(self) -> bool:
        return self._done

    def wait(self, timeout: float) -> bool:
        """Wait at most `timeout` s for `fn` to return; True when it has. Any number of threads may wait."""
        if self._done:
            return True
        if self._finished.acquire(timeout=max(0.0, timeout)):
            self._finished.release()  # for the next waiter
            return True
        return False

    def result(self) -> Any:
        """What `fn` returned, or what it raised, raised again. Only once `done()`."""
        if not self._done:
            raise RuntimeError("the handover has not finished")
        if self._error is not None:
            raise self._error
        return self._result

"""The part every scanner shares: one reader thread that opens the device, delivers whole
payloads to a small newest-first queue (and an optional callback), and on a device that goes
away marks itself unhealthy and reopens it with capped backoff. `NoScanner` is the `none` type.
See `hardware/scanner/__init__.py` for the kinds of scanner.
"""

from __future__ import annotations

import importlib
import logging
import queue
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hardware.backoff import Backoff

log = logging.getLogger("hardware.scanner")

#: longest payload kept; anything longer is discarded (credential rules cap far below this)
MAX_PAYLOAD_BYTES = 4096


class ScannerError(Exception):
    """A scanner cannot be used at all (library missing); the message says what to install."""


@dataclass(frozen=True)
class ScannedPayload:
    text: str
    raw: bytes
    at: float  # monotonic time the payload was complete
    source: str  # "hid:/dev/input/…", "serial:/dev/ttyACM0"


class ScannerSource(ABC):
    """A credential source on its own thread; `start()`, then `get`/`drain`, then `close()`."""

    def __init__(
        self,
        *,
        on_payload: Callable[[ScannedPayload], None] | None = None,
        queue_size: int = 8,
        retry_initial: float = 1.0,
        retry_max: float = 30.0,
        poll_s: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._on_payload = on_payload
        self._queue: queue.Queue[ScannedPayload] = queue.Queue(maxsize=queue_size)
        self._backoff = Backoff(retry_initial, retry_max)
        self._poll_s = poll_s
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._healthy = False
        self._last_error: str | None = None
        self._retry_delay: float | None = None
        self.payloads = 0  # delivered since start, for `sentinel doctor`
        self.dropped = 0  # pushed out of a full queue

    # --- what subclasses provide -------------------------------------------------------------

    @property
    @abstractmethod
    def name(self) -> str: ...

    #: (module, what to say when it is missing) of the backend's device library; None: none needed
    LIBRARY: tuple[str, str] | None = None
    _opener: Callable[..., Any] | None = None  # a test's stand-in for the device: no library needed

    def check_library(self) -> None:
        """Raise ScannerError when the device library is not installed."""
        if self._opener is not None or self.LIBRARY is None:
            return
        module, missing = self.LIBRARY
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ScannerError(missing) from exc

    @abstractmethod
    def _open(self) -> Any:
        """Open the device (raise OSError when it is not there or not readable)."""

    @abstractmethod
    def _read_some(self, handle: Any, timeout: float) -> list[bytes | str]:
        """Wait up to `timeout` for input; the payloads completed meanwhile (raise OSError when
        the device went away)."""

    def _close_handle(self, handle: Any) -> None:
        close = getattr(handle, "close", None)
        if close is not None:
            close()

    def _decode(self, payload: bytes | str) -> tuple[str, bytes]:
        if isinstance(payload, str):
            return payload, payload.encode("utf-8")
        return payload.decode("utf-8", errors="replace"), payload

    # --- the seam ----------------------------------------------------------------------------

    @property
    def healthy(self) -> bool:
        """True while the device is open; False before the first open and while reconnecting."""
        return self._healthy

    @property
    def last_error(self) -> str | None:
        return self._last_error

    @property
    def retry_delay(self) -> float | None:
        return self._retry_delay

    def start(self) -> None:
        """Start the reader. A scanner that is not plugged in yet is no error: it is opened when
        it appears. A missing library is (ScannerError)."""
        if self._thread is not None:
            return
        self.check_library()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"scanner {self.name}", daemon=True)
        self._thread.start()

    def get(self, timeout: float = 0.0) -> ScannedPayload | None:
        try:
            return self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
        except queue.Empty:
            return None

    def drain(self) -> list[ScannedPayload]:
        """Every payload waiting, oldest first, without waiting (the kiosk loop calls this each pass)."""
        out = []
        while True:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        thread.join(timeout=5.0)
        if thread.is_alive():
            log.warning("%s: reader thread still blocked after close()", self.name)

    def __enter__(self) -> ScannerSource:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- reader thread -----------------------------------------------------------------------

    def _run(self) -> None:
        handle = None
        try:
            while not self._stop.is_set():
                if handle is None:
                    try:
                        handle = self._open()
                    except (OSError, ScannerError) as exc:
                        self._back_off(f"cannot open {self.name}: {_reason(exc)}")
                        continue
                    if not self._healthy:
                        log.info("%s: scanner ready", self.name)
                    self._healthy = True
                    self._retry_delay = None
                    self._backoff.reset()
                try:
                    payloads = self._read_some(handle, self._poll_s)
                except OSError as exc:
                    _quietly(self._close_handle, handle)
                    handle = None
                    self._back_off(f"{self.name} went away: {_reason(exc)}")
                    continue
                for payload in payloads:
                    self._deliver(payload)
        finally:
            if handle is not None:
                _quietly(self._close_handle, handle)
            self._healthy = False

    def _back_off(self, error: str) -> None:
        delay = self._backoff.next_delay()
        if self._healthy or error != self._last_error:
            log.warning("%s; retrying in %g s", error, delay)
        self._healthy = False
        self._last_error = error
        self._retry_delay = delay
        self._stop.wait(delay)

    def _deliver(self, payload: bytes | str) -> None:
        text, raw = self._decode(payload)
        if not text:
            return
        item = ScannedPayload(text=text, raw=raw, at=self._clock(), source=self.name)
        self.payloads += 1
        log.debug("%s: payload of %d bytes", self.name, len(raw))  # never the payload itself: it is a credential
        while True:
            try:
                self._queue.put_nowait(item)
                break
            except queue.Full:
                try:  # keep the newest: a stale scan is worse than a lost one
                    self._queue.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass
        if self._on_payload is not None:
            try:
                self._on_payload(item)
            except Exception:
                log.exception("scanner payload callback failed")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror + (f" ({exc.filename})" if exc.filename else "")
    return str(exc) or type(exc).__name__


def _quietly(action: Callable[..., Any], *args: Any) -> None:
    try:
        action(*args)
    except Exception as exc:  # noqa: BLE001
        log.debug("ignored while closing a scanner: %s", exc)


class NoScanner:
    """`scanner.type = "none"`: the camera is the only credential source."""

    name = "none"
    healthy = True
    last_error = None
    payloads = 0

    def start(self) -> None:
        pass

    def get(self, timeout: float = 0.0) -> None:
        if timeout > 0:
            time.sleep(timeout)

    def drain(self) -> list[ScannedPayload]:
        return []

    def close(self) -> None:
        pass

"""External 2D scanner modules: a second credential source beside the camera, chosen by
`scanner.type` (none, hid, serial).

Scanner modules and scanner guns read phone screens well and answer in a fraction of a second;
they come in two kinds:

- USB HID "keyboard wedge" (`hid`, hardware/scanner_hid.py): the scanner types the payload as
  key presses and presses Enter. It is read through evdev and grabbed, so that the keystrokes go
  to the kiosk alone and never to the console on tty1 (where they would be typed into a shell
  prompt or the login: the "QR text passed to a shell" complaint in DESIGN.md).
- serial, or USB CDC-ACM (`serial`, hardware/scanner_serial.py): the payload arrives as bytes
  ending in CR and/or LF, read through pyserial. It carries any text (Chinese too), where a
  keyboard wedge carries only what a US keyboard can type.

Each runs one reader thread that opens the device, delivers whole payloads, and when the device
goes away (unplugged, USB reset) marks itself unhealthy and reopens it with capped backoff, as
the camera sources do. Payloads go to a small queue that keeps the newest (`get`, `drain`) and,
when given, to a callback on the reader thread (`on_payload`). The pipeline is not thread-safe:
the kiosk loop drains the queue and hands each payload to the pipeline on its own thread.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
        self._retry_initial = retry_initial
        self._retry_max = retry_max
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

    def check_library(self) -> None:
        """Raise ScannerError when the device library is not installed."""

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

    def __enter__(self) -> "ScannerSource":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- reader thread -----------------------------------------------------------------------

    def _run(self) -> None:
        handle = None
        delay = self._retry_initial
        try:
            while not self._stop.is_set():
                if handle is None:
                    try:
                        handle = self._open()
                    except (OSError, ScannerError) as exc:
                        delay = self._back_off(f"cannot open {self.name}: {_reason(exc)}", delay)
                        continue
                    if not self._healthy:
                        log.info("%s: scanner ready", self.name)
                    self._healthy = True
                    self._retry_delay = None
                    delay = self._retry_initial
                try:
                    payloads = self._read_some(handle, self._poll_s)
                except OSError as exc:
                    _quietly(self._close_handle, handle)
                    handle = None
                    delay = self._back_off(f"{self.name} went away: {_reason(exc)}", delay)
                    continue
                for payload in payloads:
                    self._deliver(payload)
        finally:
            if handle is not None:
                _quietly(self._close_handle, handle)
            self._healthy = False

    def _back_off(self, error: str, delay: float) -> float:
        if self._healthy or error != self._last_error:
            log.warning("%s; retrying in %g s", error, delay)
        self._healthy = False
        self._last_error = error
        self._retry_delay = delay
        self._stop.wait(delay)
        return min(delay * 2, self._retry_max)

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
            except Exception:  # noqa: BLE001 - a consumer's bug must not stop the reader
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
        return None

    def drain(self) -> list[ScannedPayload]:
        return []

    def close(self) -> None:
        pass


# --- keyboard wedge: key codes → text ---------------------------------------------------------

#: Linux input key codes (include/uapi/linux/input-event-codes.h, a stable ABI) → (plain, shifted)
#: for a US layout, which is what scanners emulate unless told otherwise.
US_KEYS: dict[int, tuple[str, str]] = {
    2: ("1", "!"), 3: ("2", "@"), 4: ("3", "#"), 5: ("4", "$"), 6: ("5", "%"), 7: ("6", "^"),
    8: ("7", "&"), 9: ("8", "*"), 10: ("9", "("), 11: ("0", ")"), 12: ("-", "_"), 13: ("=", "+"),
    16: ("q", "Q"), 17: ("w", "W"), 18: ("e", "E"), 19: ("r", "R"), 20: ("t", "T"), 21: ("y", "Y"),
    22: ("u", "U"), 23: ("i", "I"), 24: ("o", "O"), 25: ("p", "P"), 26: ("[", "{"), 27: ("]", "}"),
    30: ("a", "A"), 31: ("s", "S"), 32: ("d", "D"), 33: ("f", "F"), 34: ("g", "G"), 35: ("h", "H"),
    36: ("j", "J"), 37: ("k", "K"), 38: ("l", "L"), 39: (";", ":"), 40: ("'", '"'), 41: ("`", "~"),
    43: ("\\", "|"), 44: ("z", "Z"), 45: ("x", "X"), 46: ("c", "C"), 47: ("v", "V"), 48: ("b", "B"),
    49: ("n", "N"), 50: ("m", "M"), 51: (",", "<"), 52: (".", ">"), 53: ("/", "?"), 57: (" ", " "),
    # keypad (some scanners type digits there)
    55: ("*", "*"), 71: ("7", "7"), 72: ("8", "8"), 73: ("9", "9"), 74: ("-", "-"), 75: ("4", "4"),
    76: ("5", "5"), 77: ("6", "6"), 78: ("+", "+"), 79: ("1", "1"), 80: ("2", "2"), 81: ("3", "3"),
    82: ("0", "0"), 83: (".", "."), 98: ("/", "/"),
}  # fmt: skip
KEY_TAB, KEY_ENTER, KEY_KPENTER = 15, 28, 96
KEY_LEFTSHIFT, KEY_RIGHTSHIFT, KEY_CAPSLOCK = 42, 54, 58
KEY_LEFTCTRL, KEY_RIGHTCTRL, KEY_LEFTALT, KEY_RIGHTALT = 29, 97, 56, 100
EV_KEY = 1
KEY_UP, KEY_DOWN, KEY_REPEAT = 0, 1, 2


class KeyboardWedge:
    """Turns a scanner's key presses into payloads.

    `terminator`: "enter" (Enter or keypad Enter ends a code), "tab", or "gap" (no suffix: a
    pause of `gap_s` ends it). With a key terminator, an unfinished code older than `gap_s` is
    discarded: scanners type a whole code within milliseconds, so a pause means a lost key.
    """

    def __init__(self, terminator: str = "enter", gap_s: float = 0.3, max_len: int = MAX_PAYLOAD_BYTES):
        if terminator not in ("enter", "tab", "gap"):
            raise ValueError(f"unknown terminator {terminator!r}")
        self.terminator = terminator
        self.gap_s = gap_s
        self.max_len = max_len
        self._chars: list[str] = []
        self._shift: set[int] = set()
        self._modifier: set[int] = set()
        self._caps = False
        self._last_key_at: float | None = None
        self._overflow = False
        self.discarded = 0

    def feed(self, code: int, value: int, now: float) -> str | None:
        """One key event (EV_KEY); returns a finished payload, or None."""
        finished = self.poll(now)  # a pause before this key ends (gap) or voids the previous code
        if code in (KEY_LEFTSHIFT, KEY_RIGHTSHIFT):
            (self._shift.add if value else self._shift.discard)(code)
            return finished
        if code in (KEY_LEFTCTRL, KEY_RIGHTCTRL, KEY_LEFTALT, KEY_RIGHTALT):
            (self._modifier.add if value else self._modifier.discard)(code)
            return finished
        if value != KEY_DOWN:  # releases; autorepeat never comes from a scanner
            return finished
        self._last_key_at = now
        if code == KEY_CAPSLOCK:
            self._caps = not self._caps
            return finished
        if (code in (KEY_ENTER, KEY_KPENTER) and self.terminator == "enter") or (code == KEY_TAB and self.terminator == "tab"):
            return self._finish() or finished
        if code in (KEY_ENTER, KEY_KPENTER, KEY_TAB):
            return finished  # not our terminator (a scanner set to send both): ignored
        if self._modifier:
            return finished  # Ctrl/Alt combinations are commands, not text
        pair = US_KEYS.get(code)
        if pair is None:
            return finished
        char = pair[1] if self._shift else pair[0]
        if self._caps and char.isalpha():
            char = char.swapcase()
        if len(self._chars) >= self.max_len:
            self._overflow = True
        else:
            self._chars.append(char)
        return finished

    def poll(self, now: float) -> str | None:
        """Call when no key came for a while: ends a code (gap) or discards a stale one."""
        if not self._chars or self._last_key_at is None or now - self._last_key_at < self.gap_s:
            return None
        if self.terminator == "gap":
            return self._finish()
        log.warning("scanner code interrupted for %.2f s: %d keys discarded", now - self._last_key_at, len(self._chars))
        self._reset()
        self.discarded += 1
        return None

    def _finish(self) -> str | None:
        text = "".join(self._chars)
        overflow = self._overflow
        self._reset()
        if overflow:
            log.warning("scanner code longer than %d characters discarded", self.max_len)
            self.discarded += 1
            return None
        return text or None

    def _reset(self) -> None:
        self._chars = []
        self._overflow = False


# --- byte streams: bytes → payloads -----------------------------------------------------------

_TERMINATORS = {"cr": (b"\r",), "lf": (b"\n",), "crlf": (b"\r\n",), "any": (b"\r", b"\n"), "gap": ()}


class LineSplitter:
    """Splits a serial scanner's byte stream into payloads at its terminator (or at a pause)."""

    def __init__(self, terminator: str = "any", gap_s: float = 0.2, max_len: int = MAX_PAYLOAD_BYTES):
        if terminator not in _TERMINATORS:
            raise ValueError(f"unknown terminator {terminator!r}")
        self.terminator = terminator
        self.gap_s = gap_s
        self.max_len = max_len
        self._buffer = bytearray()
        self._last_byte_at: float | None = None
        self._overflow = False
        self.discarded = 0

    def feed(self, data: bytes, now: float) -> list[bytes]:
        out: list[bytes] = []
        stale = self.poll(now)
        if stale is not None:
            out.append(stale)
        if not data:
            return out
        self._last_byte_at = now
        self._buffer += data
        if self.terminator == "gap":
            self._cap()
            return out
        while True:
            cut = self._next_terminator()
            if cut is None:
                break
            end, length = cut
            piece = bytes(self._buffer[:end])
            del self._buffer[: end + length]
            overflow, self._overflow = self._overflow, False
            if overflow or len(piece) > self.max_len:
                log.warning("scanner payload longer than %d bytes discarded", self.max_len)
                self.discarded += 1
            elif piece:  # CR LF with terminator "any" leaves an empty piece: skipped
                out.append(piece)
        self._cap()
        return out

    def poll(self, now: float) -> bytes | None:
        if not self._buffer or self._last_byte_at is None or now - self._last_byte_at < self.gap_s:
            return None
        piece = bytes(self._buffer)
        overflow = self._overflow
        self._buffer.clear()
        self._overflow = False
        if self.terminator == "gap" and not overflow:
            return piece
        self.discarded += 1
        log.warning("scanner payload without its terminator for %.2f s: %d bytes discarded", now - self._last_byte_at, len(piece))
        return None

    def _next_terminator(self) -> tuple[int, int] | None:
        found = [(self._buffer.find(t), len(t)) for t in _TERMINATORS[self.terminator]]
        found = [f for f in found if f[0] >= 0]
        return min(found) if found else None

    def _cap(self) -> None:
        if len(self._buffer) > self.max_len:
            self._overflow = True
            del self._buffer[: len(self._buffer) - self.max_len]


# --- from config ------------------------------------------------------------------------------


def open_scanner(config: Any, **kwargs: Any) -> ScannerSource | NoScanner:
    """The scanner a config's `[scanner]` names (not started)."""
    if config.type == "none":
        return NoScanner()
    if config.type == "hid":
        from hardware.scanner_hid import HidScanner

        return HidScanner(config.device, grab=config.grab, terminator=config.terminator, gap_s=config.gap_s, **kwargs)
    if config.type == "serial":
        from hardware.scanner_serial import SerialScanner

        return SerialScanner(
            config.port,
            baudrate=config.baudrate,
            terminator=config.terminator,
            gap_s=config.gap_s,
            encoding=config.encoding,
            **kwargs,
        )
    raise ScannerError(f"unknown scanner type {config.type!r}")

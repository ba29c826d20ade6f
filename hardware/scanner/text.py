"""Scanner input to payload text, with no device: `KeyboardWedge` turns key presses (US layout,
which scanners emulate) into text, `LineSplitter` cuts a byte stream at its terminator. Both
discard, and log without the content, a payload cut short or longer than `MAX_PAYLOAD_BYTES`.
"""

from __future__ import annotations

import logging

from hardware.scanner.base import MAX_PAYLOAD_BYTES

log = logging.getLogger("hardware.scanner")

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

"""What a person presents, recognised on the device before anything goes over the network.

A QR payload is untrusted text from a stranger's phone: it is matched against configured
patterns with bounded length and never reaches a shell, SQL text or the service unless it is a
recognised credential. Rejections carry a reason code (for the record) and a message (for logs).

The grammar is ASCII and exact. Python's `\\d`, `\\w` and `str.strip()` are Unicode-aware: they take
Devanagari or fullwidth digits for an ID number, and unwrap a URL padded with NBSP, U+3000 or
control characters, sending to the service something no real code holds. So patterns are matched
with re.ASCII, ID digits are [0-9], only the ASCII line endings a scanner adds (space, tab, CR,
LF) are trimmed, and anything else outside printable ASCII is refused before any pattern runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from sentinel.config import CredentialConfig


class CredentialKind(StrEnum):
    HEALTH_CODE = "health_code"
    ID_NUMBER = "id_number"
    FACE = "face"


@dataclass(frozen=True)
class Credential:
    kind: CredentialKind
    value: str = field(repr=False)  # the raw token / ID number: memory only, never logged or stored

    def __repr__(self) -> str:
        return f"Credential({self.kind.value}, {mask_value(self.value)})"

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind.value, self.value)


@dataclass(frozen=True)
class Rejection:
    reason: str  # empty | too_long | binary | not_ascii | unknown_format | bad_id_number
    message: str
    payload_key: str = field(default="", repr=False)  # for debouncing repeats of the same bad code

    @property
    def key(self) -> tuple[str, str]:
        return ("rejected", self.payload_key)


def mask_value(value: str) -> str:
    """Enough of a token to tell two apart in a log, not enough to reuse it."""
    if len(value) <= 6:
        return "*" * len(value)
    return f"{value[:2]}…{value[-2:]} ({len(value)})"


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ID_SHAPE = re.compile(r"[1-9][0-9]{16}[0-9X]", re.ASCII)
#: what a scanner may add around a code; trimmed (str.strip() would also unwrap NBSP, U+3000, …)
_TRIM = " \t\r\n"
#: printable ASCII: the whole alphabet of a payload this device accepts
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]+", re.ASCII)


def id_check_digit(first17: str) -> str:
    """ISO 7064 MOD 11-2, as GB 11643-1999 specifies for resident ID numbers."""
    return _ID_CHECK[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def valid_id_number(text: str, today: date | None = None) -> bool:
    """An 18-character resident ID number with a real birth date and a correct check digit."""
    text = text.upper()
    if not _ID_SHAPE.fullmatch(text):
        return False
    try:
        born = date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        return False
    if not date(1900, 1, 1) <= born <= (today or date.today()):
        return False
    return id_check_digit(text[:17]) == text[17]


class CredentialRules:
    """Payload → credential or rejection, by the site's configured patterns."""

    def __init__(self, config: CredentialConfig):
        self._patterns = [re.compile(p, re.ASCII) for p in config.health_code_patterns]
        self._accept_id = config.accept_id_number
        self._max_bytes = config.max_payload_bytes

    def classify(self, payload: str, raw: bytes | None = None) -> Credential | Rejection:
        size = len(raw) if raw is not None else len(payload.encode("utf-8", "surrogatepass"))
        key = str(hash(payload))
        if size > self._max_bytes:
            return Rejection("too_long", f"payload of {size} bytes is over the {self._max_bytes}-byte limit", key)
        text = payload.strip(_TRIM)
        if not text:
            return Rejection("empty", "empty payload", key)
        if not _PRINTABLE_ASCII.fullmatch(text):
            if any(ord(c) < 32 or 127 <= ord(c) < 160 or c == "\ufffd" for c in text):
                return Rejection("binary", "payload holds binary or control characters", key)
            return Rejection("not_ascii", "payload holds characters outside printable ASCII", key)
        for pattern in self._patterns:
            m = pattern.fullmatch(text)
            if m:
                return Credential(CredentialKind.HEALTH_CODE, m.group("token"))
        if self._accept_id and len(text) == 18:
            if valid_id_number(text):
                return Credential(CredentialKind.ID_NUMBER, text.upper())
            if _ID_SHAPE.fullmatch(text.upper()):
                return Rejection("bad_id_number", "looks like an ID number but its date or check digit is wrong", key)
        return Rejection("unknown_format", "not a health code this site accepts", key)


class Debouncer:
    """One person holding a phone up for five seconds is one check, not fifty.

    A key counts as new when it was not seen within the last `window_s` seconds; every sighting
    restarts its window, so a code held still in front of the camera never re-triggers.
    """

    def __init__(self, window_s: float):
        self.window_s = window_s
        self._last_seen: dict[tuple[str, str], float] = {}

    def is_new(self, key: tuple[str, str], now: float) -> bool:
        self._forget_older_than(now - self.window_s)
        last = self._last_seen.get(key)
        self._last_seen[key] = now
        return last is None

    def forget(self, key: tuple[str, str]) -> None:
        """Let the next sighting count as new (e.g. the check could not start)."""
        self._last_seen.pop(key, None)

    def _forget_older_than(self, cutoff: float) -> None:
        stale = [k for k, t in self._last_seen.items() if t < cutoff]
        for k in stale:
            del self._last_seen[k]

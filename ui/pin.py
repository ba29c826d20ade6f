"""The technician PIN: stored as a salted PBKDF2 hash in config, tried at a rate-limited gate.

The hash is `pbkdf2_sha256$ITERATIONS$SALT$HASH` (salt and hash in base64), the format Django
uses, so a config file never holds the PIN itself. A 4–8 digit PIN is weak against anyone who has
the config file, whatever the hash; what protects the kiosk in front of the public is the lockout:
after 3 wrong PINs the menu refuses every PIN for 30 s, and each further lockout doubles (up to an
hour) until a right PIN is entered. The lockout is in memory: a reboot takes minutes, which is
slower than the lockout anyway.

Make a hash with `sentinel screens --hash-pin`, or:

    python -c "from ui.pin import hash_pin; print(hash_pin('123456'))"
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

ALGORITHM = "pbkdf2_sha256"
#: ~0.1 s on a PC, ~0.5 s on a Pi 4: checked on a worker thread, never the render thread
DEFAULT_ITERATIONS = 200_000
HASH_PATTERN = r"^(pbkdf2_sha256\$[0-9]{4,8}\$[A-Za-z0-9+/=]{8,64}\$[A-Za-z0-9+/=]{40,64})?$"
PIN_PATTERN = re.compile(r"^[0-9]{4,8}$")


def hash_pin(pin: str, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None) -> str:
    if not PIN_PATTERN.match(pin):
        raise ValueError("a technician PIN is 4 to 8 digits")
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, iterations)
    return f"{ALGORITHM}${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_pin(pin: str, stored: str) -> bool:
    """True when `pin` matches the stored hash; False for a malformed hash too."""
    try:
        algorithm, iterations, salt, digest = stored.split("$")
        if algorithm != ALGORITHM:
            return False
        expected = base64.b64decode(digest, validate=True)
        actual = hashlib.pbkdf2_hmac("sha256", pin.encode(), base64.b64decode(salt, validate=True), int(iterations))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


@dataclass(frozen=True)
class PinResult:
    ok: bool
    reason: str  # ok | wrong | locked | not_configured
    tries_left: int = 0  # after a wrong PIN: how many before the lockout
    locked_for_s: float = 0.0  # when locked: seconds still to wait
    started_lockout: bool = False  # this wrong PIN was the one that locked the pad (an audit event)


class PinGate:
    """Checks PINs against the configured hash, with a lockout that doubles. Thread-safe: the
    display checks PINs on a worker thread (PBKDF2 takes a while) while it keeps drawing."""

    def __init__(
        self,
        pin_hash: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_failures: int = 3,
        lockout_s: float = 30.0,
        max_lockout_s: float = 3600.0,
    ):
        self._hash = pin_hash
        self._clock = clock
        self._max_failures = max_failures
        self._lockout_s = lockout_s
        self._max_lockout_s = max_lockout_s
        self._lock = threading.Lock()
        self._failures = 0
        self._lockouts = 0
        self._locked_until = float("-inf")

    @property
    def configured(self) -> bool:
        return bool(self._hash)

    def set_hash(self, pin_hash: str) -> None:
        """A new PIN hash (a reloaded config). The failure count and any lockout stay: reloading
        the config is no way around the lockout."""
        with self._lock:
            self._hash = pin_hash

    def locked_for(self) -> float:
        with self._lock:
            return max(0.0, self._locked_until - self._clock())

    def attempt(self, pin: str) -> PinResult:
        with self._lock:
            now = self._clock()
            if not self._hash:
                return PinResult(False, "not_configured")
            if now < self._locked_until:
                return PinResult(False, "locked", locked_for_s=self._locked_until - now)
            if verify_pin(pin, self._hash):
                self._failures = 0
                self._lockouts = 0
                return PinResult(True, "ok")
            self._failures += 1
            if self._failures >= self._max_failures:
                wait = min(self._max_lockout_s, self._lockout_s * 2**self._lockouts)
                self._lockouts += 1
                self._failures = 0
                self._locked_until = now + wait
                return PinResult(False, "locked", locked_for_s=wait, started_lockout=True)
            return PinResult(False, "wrong", tries_left=self._max_failures - self._failures)

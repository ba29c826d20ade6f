"""The technician PIN: stored as a salted PBKDF2 hash in config, tried at a rate-limited gate.

The hash is `pbkdf2_sha256$ITERATIONS$SALT$HASH` (salt and hash in base64), the format Django
uses, so a config file never holds the PIN itself. A PIN is 6 to 8 digits (`hash_pin` and
`sentinel screens --hash-pin` refuse a shorter one); it is still weak against anyone who has
the config file, whatever the hash; what protects the kiosk in front of the public is the lockout:
after 3 wrong PINs the menu refuses every PIN for 30 s, and each further lockout doubles, up to
15 minutes (`MAX_LOCKOUT_S`; the doubling is capped, so it never overflows however many lockouts
there were), until a right PIN is entered. With a `state_file` (a small 0600 file in the state
directory) the failures, lockouts and the end of the current lockout (wall-clock time) survive a
restart of the kiosk: pulling the plug is no way around the lockout. A clock set back cannot lock
the pad for longer than one full lockout.

Make a hash with `sentinel screens --hash-pin`, or:

    python -c "from ui.pin import hash_pin; print(hash_pin('123456'))"
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sentinel.atomic import write_atomic

log = logging.getLogger("ui.pin")

ALGORITHM = "pbkdf2_sha256"
#: ~0.1 s on a PC, ~0.5 s on a Pi 4: checked on a worker thread, never the render thread
DEFAULT_ITERATIONS = 200_000
#: a technician PIN: 6 to 8 digits (4 digits are 10,000 guesses)
MIN_PIN_DIGITS = 6
PIN_PATTERN = re.compile(r"^[0-9]{6,8}$")
#: the longest lockout; the doubling stops here
MAX_LOCKOUT_S = 15 * 60.0


def hash_pin(pin: str, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None) -> str:
    if not PIN_PATTERN.match(pin):
        raise ValueError("a technician PIN is 6 to 8 digits")
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
        max_lockout_s: float = MAX_LOCKOUT_S,
        state_file: Path | str | None = None,
        wall: Callable[[], float] = time.time,
    ):
        """`state_file`: where the failures and the lockout are kept across restarts (0600);
        None keeps them in memory only."""
        self._hash, self._clock, self._wall = pin_hash, clock, wall
        # the lockout policy: this many wrong PINs lock the pad for lockout_s, doubling up to max_lockout_s
        self._max_failures, self._lockout_s, self._max_lockout_s = max_failures, lockout_s, max_lockout_s
        self._lock = threading.Lock()
        self._failures = 0
        self._lockouts = 0
        self._locked_until = float("-inf")
        self._state_file = Path(state_file) if state_file is not None else None
        self._load()

    # --- the lockout across restarts ------------------------------------------------------------

    def _load(self) -> None:
        if self._state_file is None:
            return
        try:
            data = json.loads(self._state_file.read_text(encoding="utf-8"))
            failures, lockouts, until = int(data["failures"]), int(data["lockouts"]), float(data["locked_until"])
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as e:
            # unreadable or tampered with: start locked for one full lockout rather than open
            log.warning("PIN lockout state %s unreadable (%s): locked for %.0f s", self._state_file, type(e).__name__, self._max_lockout_s)
            self._failures, self._lockouts = 0, 1
            self._locked_until = self._clock() + self._max_lockout_s
            return
        self._failures = max(0, min(failures, self._max_failures))
        self._lockouts = max(0, min(lockouts, 64))
        left = min(max(0.0, until - self._wall()), self._max_lockout_s)  # a clock set back: at most one lockout
        if left > 0:
            self._locked_until = self._clock() + left

    def _save(self) -> None:
        if self._state_file is None:
            return
        left = max(0.0, self._locked_until - self._clock())
        data = {"failures": self._failures, "lockouts": self._lockouts, "locked_until": self._wall() + left if left else 0.0}
        try:
            self._state_file.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self._state_file, json.dumps(data).encode("utf-8"))  # 0600
        except OSError as e:
            log.warning("cannot keep the PIN lockout state in %s: %s (kept in memory)", self._state_file, e)

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
                if self._failures or self._lockouts:
                    self._failures = 0
                    self._lockouts = 0
                    self._save()
                return PinResult(True, "ok")
            self._failures += 1
            if self._failures >= self._max_failures:
                # the exponent is capped: 2**1024 as a float overflows (and there the lockout ended)
                wait = min(self._max_lockout_s, self._lockout_s * 2.0 ** min(self._lockouts, 32))
                self._lockouts = min(self._lockouts + 1, 64)
                self._failures = 0
                self._locked_until = now + wait
                self._save()
                return PinResult(False, "locked", locked_for_s=wait, started_lockout=True)
            self._save()
            return PinResult(False, "wrong", tries_left=self._max_failures - self._failures)


"""Rate limits and lockouts of the reference service: small token buckets in memory.

Guessing is what they stop, not load: one demo device verifying hundreds of times a second on
loopback stays well inside them (`bench/verify.py`), while a guesser is slowed to a crawl:
- binding codes: per address, a bucket of attempts and a lockout after `bind_failures` wrong codes
  within `bind_lockout_s` (the lockout lasts that long from the last failure);
- ID-number and face lookups that answer not_found (what guessing produces) per device token;
- every verify per device token (generous), and unknown or revoked tokens per address.

State lives in memory (a restart forgets it: fine for a reference service) and the clock is
injected (monotonic seconds), so tests drive time without sleeping. Keys are token hashes or
addresses, never raw tokens. Addresses are the TCP peer: behind a proxy every client shares the
proxy's address, so set the limits for that case (see docs/api.md).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

#: keys kept per bucket family before the fullest (= idle) ones are forgotten
_MAX_KEYS = 10_000


@dataclass(frozen=True)
class Rate:
    per_s: float  # refill rate
    burst: float  # bucket size


@dataclass(frozen=True)
class LimitSettings:
    verify_per_token: Rate = Rate(per_s=5000.0, burst=10000.0)  # a ceiling, not a guessing limit
    not_found_per_token: Rate = Rate(per_s=0.5, burst=30.0)
    bind_per_address: Rate = Rate(per_s=0.2, burst=20.0)
    bad_token_per_address: Rate = Rate(per_s=1.0, burst=30.0)
    bind_failures: int = 10
    bind_lockout_s: float = 15 * 60.0


class Buckets:
    """One family of token buckets, by key."""

    def __init__(self, rate: Rate, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.clock = clock
        self._state: dict[str, tuple[float, float]] = {}  # key → (tokens, at)
        self._lock = threading.Lock()

    def _level(self, key: str, now: float) -> float:
        tokens, at = self._state.get(key, (self.rate.burst, now))
        return min(self.rate.burst, tokens + (now - at) * self.rate.per_s)

    def wait_s(self, key: str, cost: float = 1.0) -> float:
        """Seconds until `cost` could be taken (0: now), without taking it."""
        with self._lock:
            level = self._level(key, self.clock())
        return 0.0 if level >= cost else (cost - level) / self.rate.per_s

    def take(self, key: str, cost: float = 1.0) -> float:
        """Take `cost` and answer 0, or take nothing and answer the seconds to wait."""
        with self._lock:
            now = self.clock()
            level = self._level(key, now)
            if level < cost:
                self._state[key] = (level, now)
                return (cost - level) / self.rate.per_s
            self._state[key] = (level - cost, now)
            if len(self._state) > _MAX_KEYS:
                self._forget(now)
            return 0.0

    def charge(self, key: str, cost: float = 1.0) -> None:
        """Take `cost` even into debt (the bucket refills from below zero)."""
        with self._lock:
            now = self.clock()
            self._state[key] = (self._level(key, now) - cost, now)

    def _forget(self, now: float) -> None:
        full = [k for k in self._state if self._level(k, now) >= self.rate.burst]
        for key in full:
            del self._state[key]


class Lockout:
    """`failures` failures per key, each within `window_s` of the previous one, lock the key out
    for `window_s` after the last; a success does not unlock (a guesser may hold a valid code)."""

    def __init__(self, failures: int, window_s: float, clock: Callable[[], float]) -> None:
        self.failures = failures
        self.window_s = window_s
        self.clock = clock
        self._state: dict[str, tuple[int, float]] = {}  # key → (count, last failure)
        self._lock = threading.Lock()

    def wait_s(self, key: str) -> float:
        with self._lock:
            count, last = self._state.get(key, (0, -math.inf))
            left = last + self.window_s - self.clock()
            if left <= 0:
                self._state.pop(key, None)
                return 0.0
            return left if count >= self.failures else 0.0

    def fail(self, key: str) -> None:
        with self._lock:
            now = self.clock()
            count, last = self._state.get(key, (0, -math.inf))
            if now - last > self.window_s:
                count = 0
            self._state[key] = (count + 1, now)
            if len(self._state) > _MAX_KEYS:
                for k in [k for k, (_, at) in self._state.items() if now - at > self.window_s]:
                    del self._state[k]


class Limits:
    """Every limit of one app."""

    def __init__(self, settings: LimitSettings | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings = settings or LimitSettings()
        self.clock = clock
        self.verify = Buckets(settings.verify_per_token, clock)
        self.not_found = Buckets(settings.not_found_per_token, clock)
        self.bind = Buckets(settings.bind_per_address, clock)
        self.bad_token = Buckets(settings.bad_token_per_address, clock)
        self.bind_failures = Lockout(settings.bind_failures, settings.bind_lockout_s, clock)


def retry_after(wait_s: float) -> dict[str, str]:
    """The Retry-After header: whole seconds, at least 1."""
    return {"Retry-After": str(max(1, math.ceil(wait_s)))}

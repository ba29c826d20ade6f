"""Rate limits and lockouts of the reference service: small token buckets in memory.

Guessing is what they stop, not load: one demo device verifying hundreds of times a second on
loopback stays well inside them (`bench/verify.py`), while a guesser is slowed to a crawl:
- binding codes: per address, a bucket of attempts and a lockout after `bind_failures` wrong codes
  within `bind_lockout_s` (the lockout lasts that long from the last failure);
- ID-number and face lookups that answer not_found (what guessing produces) per device token;
- every verify per device token (generous), and unknown or revoked tokens per address.

State lives in memory (a restart forgets it: fine for a reference service), or, when several
service processes share one PostgreSQL database, in that database (`Limits.share`: each change one
transaction, `Store.update_limit`; a take, which every verify makes, one statement,
`Store.take_from_bucket`), so a guesser gains nothing by spreading over workers; shared state is
timed by the wall clock, the one clock every process agrees on. The clock is injected
(monotonic seconds by default), so tests drive time without sleeping. Keys are token hashes or
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


class _State:
    """Where a family of limits keeps its (a, b) pairs by key: this process's memory, or a store
    shared by several processes (`Store.update_limit`)."""

    def __init__(self, family: str, shared=None) -> None:
        self.family = family
        self.shared = shared
        self._pairs: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def update(self, key: str, change: Callable, prune: Callable | None = None):
        """`change(old pair or None)` → (new pair or None, result), atomically; returns result.
        `prune(pairs)` may drop idle keys when memory holds more than `_MAX_KEYS`."""
        if self.shared is not None:
            return self.shared.update_limit(self.family, key, change)
        with self._lock:
            new, result = change(self._pairs.get(key))
            if new is None:
                self._pairs.pop(key, None)
            else:
                self._pairs[key] = new
                if prune is not None and len(self._pairs) > _MAX_KEYS:
                    prune(self._pairs)
            return result


def bucket_level(pair: tuple[float, float] | None, now: float, rate: Rate) -> float:
    """Tokens in a bucket stored as (tokens, when) at `now` (a new bucket is full)."""
    tokens, at = pair if pair is not None else (rate.burst, now)
    return min(rate.burst, tokens + (now - at) * rate.per_s)


def bucket_take(pair: tuple[float, float] | None, now: float, rate: Rate, cost: float) -> tuple[tuple[float, float], float]:
    """Take `cost` from a bucket: (its new pair, 0) or, when it holds too little, (the pair
    without taking, the seconds to wait). `Store.take_from_bucket` on PostgreSQL is this in SQL."""
    level = bucket_level(pair, now, rate)
    if level < cost:
        return (level, now), (cost - level) / rate.per_s
    return (level - cost, now), 0.0


class Buckets:
    """One family of token buckets, by key."""

    def __init__(self, rate: Rate, clock: Callable[[], float], family: str = "buckets", shared=None) -> None:
        self.rate = rate
        self.clock = clock
        self.family = family
        self._shared = shared
        self._state = _State(family, shared)

    def _level(self, pair: tuple[float, float] | None, now: float) -> float:
        return bucket_level(pair, now, self.rate)

    def wait_s(self, key: str, cost: float = 1.0) -> float:
        """Seconds until `cost` could be taken (0: now), without taking it."""
        now = self.clock()

        def look(pair):
            level = self._level(pair, now)
            return pair, (0.0 if level >= cost else (cost - level) / self.rate.per_s)

        return self._state.update(key, look)

    def take(self, key: str, cost: float = 1.0) -> float:
        """Take `cost` and answer 0, or take nothing and answer the seconds to wait."""
        now = self.clock()
        if self._shared is not None:  # every verify takes: one statement on PostgreSQL, not a transaction
            return self._shared.take_from_bucket(self.family, key, now, self.rate, cost)
        return self._state.update(key, lambda pair: bucket_take(pair, now, self.rate, cost), lambda pairs: self._forget(pairs, now))

    def charge(self, key: str, cost: float = 1.0) -> None:
        """Take `cost` even into debt (the bucket refills from below zero)."""
        now = self.clock()
        self._state.update(key, lambda pair: ((self._level(pair, now) - cost, now), None))

    def _forget(self, pairs: dict[str, tuple[float, float]], now: float) -> None:
        for key in [k for k, pair in pairs.items() if self._level(pair, now) >= self.rate.burst]:
            del pairs[key]


class Lockout:
    """`failures` failures per key, each within `window_s` of the previous one, lock the key out
    for `window_s` after the last; a success does not unlock (a guesser may hold a valid code)."""

    def __init__(self, failures: int, window_s: float, clock: Callable[[], float], family: str = "lockout", shared=None) -> None:
        self.failures = failures
        self.window_s = window_s
        self.clock = clock
        self._state = _State(family, shared)

    def wait_s(self, key: str) -> float:
        now = self.clock()

        def look(pair):
            count, last = pair if pair is not None else (0, -math.inf)
            left = last + self.window_s - now
            if left <= 0:
                return None, 0.0
            return pair, (left if count >= self.failures else 0.0)

        return self._state.update(key, look)

    def fail(self, key: str) -> None:
        now = self.clock()

        def fail(pair):
            count, last = pair if pair is not None else (0, -math.inf)
            if now - last > self.window_s:
                count = 0
            return (count + 1, now), None

        def prune(pairs):
            for k in [k for k, (_, at) in pairs.items() if now - at > self.window_s]:
                del pairs[k]

        self._state.update(key, fail, prune)


class Limits:
    """Every limit of one app."""

    def __init__(self, settings: LimitSettings | None = None, clock: Callable[[], float] = time.monotonic, shared=None) -> None:
        """`shared`: a store whose `update_limit` holds the state (None: this process's memory)."""
        self.settings = settings = settings or LimitSettings()
        self.clock = clock
        self.shared = shared
        self.verify = Buckets(settings.verify_per_token, clock, "verify", shared)
        self.not_found = Buckets(settings.not_found_per_token, clock, "not_found", shared)
        self.bind = Buckets(settings.bind_per_address, clock, "bind", shared)
        self.bad_token = Buckets(settings.bad_token_per_address, clock, "bad_token", shared)
        self.bind_failures = Lockout(settings.bind_failures, settings.bind_lockout_s, clock, "bind_failures", shared)

    def forget_idle(self) -> int:
        """Drop shared state nobody touched for longer than any bucket takes to refill and any
        lockout lasts (at least a day): such a key behaves exactly as one never seen. Memory
        prunes itself (`_MAX_KEYS`); returns how many keys went from the store."""
        if self.shared is None:
            return 0
        s = self.settings
        rates = (s.verify_per_token, s.not_found_per_token, s.bind_per_address, s.bad_token_per_address)
        idle_s = max(86400.0, s.bind_lockout_s, *(r.burst / r.per_s for r in rates))
        return self.shared.forget_limits(self.clock() - idle_s)

    def share(self, store) -> None:
        """Keep the state in `store` from now on (several processes, one database). The default
        monotonic clock becomes the wall clock: processes on several machines agree on that one."""
        clock = time.time if self.clock is time.monotonic else self.clock
        self.__init__(self.settings, clock, store)


def retry_after(wait_s: float) -> dict[str, str]:
    """The Retry-After header: whole seconds, at least 1."""
    return {"Retry-After": str(max(1, math.ceil(wait_s)))}

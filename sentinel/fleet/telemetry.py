"""What a sentinel tells the fleet about itself: checks counted per minute, and its state, made
from what the kiosk already knows (`Kiosk.health()`). Pure Python, no network: sentinel/fleet/link.py
sends what this builds.

Nothing personal ever leaves through here. `MinuteCounts` keeps integers per minute and verdict
kind, never a code, a name, an ID or a token; `build_state` copies only device facts (outbox depth
and age, alarm codes, camera / gate / door words, uptime, times) out of the health dict and drops
everything else it holds (the uploader's status, fault details).

Counting is on the check's path (the pipeline's `on_outcome`), so `MinuteCounts.add` is one dict
look-up and a few integer additions under a lock that nothing holds for longer than that: it never
waits on the network, the disk or the broker. Minutes are the device's wall clock (UTC) floored to
the minute; a clock that steps back (a Pi without RTC before NTP) only puts counts in an earlier
minute, it loses none.

How it fails: `build_state` never raises for a health dict it does not understand (a missing key,
a wrong type, a string too long for the protocol): that fact is left out (None) or cut to the
protocol's bounds, so a kiosk with a new or broken health field still reports online.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Literal

from sentinel.fleet.protocol import DeviceState, MinuteCounters, OutboxState

CountKind = Literal["pass", "deny", "manual", "decode_failure"]
KINDS: tuple[str, ...] = ("pass", "deny", "manual", "decode_failure")

# indexes into a minute's list of counts
_CHECKS, _PASSED, _DENIED, _MANUAL, _OFFLINE, _DECODE = range(6)
_SLOT = {"pass": _PASSED, "deny": _DENIED, "manual": _MANUAL, "decode_failure": _DECODE}

#: the protocol's bounds on the words and lists of DeviceState
_WORD_MAX = 32
_ALARMS_MAX = 32
_VERSION_MAX = 64


def minute_of(at: datetime) -> datetime:
    """The start of `at`'s minute, in UTC (a naive datetime is taken as UTC)."""
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.replace(second=0, microsecond=0)


class MinuteCounts:
    """Checks by minute and kind. `add` from any thread (the check's), `take` from the sender's."""

    def __init__(self, wall: Callable[[], datetime]):
        self._wall = wall
        self._lock = threading.Lock()
        self._minutes: dict[datetime, list[int]] = {}
        self._last_key: tuple[int, int, int, int, int] | None = None
        self._last_minute: datetime | None = None

    def add(self, kind: str, offline: bool = False) -> None:
        """One check (or decode failure) now. An unknown kind is ignored, never raised."""
        slot = _SLOT.get(kind)
        if slot is None:
            return
        now = self._wall()
        # the same minute as last time (nearly always): no datetime arithmetic under the lock
        key = (now.year, now.month, now.day, now.hour, now.minute)
        with self._lock:
            if key == self._last_key:
                minute = self._last_minute
            else:
                minute = minute_of(now)
                self._last_key, self._last_minute = key, minute
            counts = self._minutes.get(minute)
            if counts is None:
                counts = self._minutes[minute] = [0, 0, 0, 0, 0, 0]
            counts[slot] += 1
            if slot != _DECODE:
                counts[_CHECKS] += 1
            if offline:
                counts[_OFFLINE] += 1

    def take(self, *, everything: bool = False) -> list[tuple[datetime, list[int]]]:
        """The minutes that are over (all of them with `everything`, e.g. at shutdown), oldest
        first, removed from here."""
        current = minute_of(self._wall())
        with self._lock:
            done = sorted(m for m in self._minutes if everything or m != current)
            return [(m, self._minutes.pop(m)) for m in done]

    def pending(self) -> int:
        with self._lock:
            return len(self._minutes)


def counters_messages(site: str, device: str, minutes: list[tuple[datetime, list[int]]]) -> Iterator[MinuteCounters]:
    for minute, c in minutes:
        yield MinuteCounters(site=site, device=device, minute=minute, checks=c[_CHECKS], passed=c[_PASSED], denied=c[_DENIED],
                             manual=c[_MANUAL], offline=c[_OFFLINE], decode_failures=c[_DECODE])


def outcome_kind(outcome: Any) -> tuple[str, bool] | None:
    """(kind, offline) of a pipeline `CheckOutcome`, or None for one that is not a check.

    A payload refused on the device (no credential kind: not a health code, not an ID) is a decode
    failure; otherwise the verdict's kind; `offline` when the offline policy made the verdict."""
    verdict = getattr(outcome, "verdict", None)
    if getattr(outcome, "credential_kind", None) is None:
        return "decode_failure", False
    kind = str(getattr(getattr(verdict, "kind", None), "value", getattr(verdict, "kind", "")))
    mapped = {"pass": "pass", "deny": "deny", "manual_check": "manual"}.get(kind)
    if mapped is None:
        return None
    return mapped, bool(getattr(outcome, "offline", False))


# -- state -----------------------------------------------------------------------------------------


def _word(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text[:_WORD_MAX] if text else None


def _number(value: Any, *, minimum: float | None = 0.0) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    if not math.isfinite(value):
        return None
    return max(minimum, value) if minimum is not None else value


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            return _time(datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


def build_state(
    health: dict[str, Any] | None,
    *,
    site: str,
    device: str,
    version: str | None,
    sent_at: datetime | None,
    policy_version: int | None,
    online: bool = True,
) -> DeviceState:
    """The retained DeviceState for `Kiosk.health()`'s answer (see sentinel/kiosk.py `health`):
    outbox depth and oldest age, alarm codes, camera, gate and door, uptime, the last check, and
    the clock offset when the health dict carries one (`clock_offset_s`)."""
    h = health if isinstance(health, dict) else {}
    outbox = h.get("outbox") if isinstance(h.get("outbox"), dict) else None
    outbox_state = None
    if outbox is not None:
        depth = outbox.get("depth")
        if isinstance(depth, int) and not isinstance(depth, bool) and depth >= 0:
            outbox_state = OutboxState(depth=depth, oldest_age_s=_number(outbox.get("oldest_age_s")))
    alarms_in = h.get("alarms") if isinstance(h.get("alarms"), list | tuple) else []
    alarms = [a for a in dict.fromkeys(str(x)[:64] for x in alarms_in if x is not None and str(x))][:_ALARMS_MAX]
    return DeviceState(
        site=site,
        device=device,
        online=online,
        sent_at=sent_at,
        version=(version or None) and str(version)[:_VERSION_MAX],
        uptime_s=_number(h.get("uptime_s")),
        outbox=outbox_state,
        alarms=alarms,
        camera=_word(h.get("camera")),
        gate=_word(h.get("gate")),
        door=_word(h.get("door")),
        clock_offset_s=_number(h.get("clock_offset_s"), minimum=None),
        last_check_at=_time(h.get("last_check_at")),
        policy_version=policy_version,
    )


def state_key(state: DeviceState) -> tuple:
    """What in a state is worth a message of its own when it changes: alarms, camera, a gate or
    door fault (not the gate opening and closing for every pass), the policy in force, online.
    Uptime, the outbox's depth and age and the last check go out with the periodic state."""

    def settled(word: str | None) -> str | None:
        return "ok" if word in ("open", "closed") else word

    return (state.online, tuple(state.alarms), state.camera, settled(state.gate), settled(state.door), state.policy_version,
            state.version)

"""The device's heartbeat to the health-status service, and whether the service is reachable.

`HeartbeatSender` is a small daemon thread: one heartbeat right after `start()`, then one every
`interval_s` (60 s; docs/api.md says "every minute or so"). Each is built when it is sent, from
`build(clock_offset_s)` (the kiosk: `Kiosk.heartbeat`, which reads `Kiosk.health()`: software
version, uptime, outbox depth and oldest age, alarms, camera, gate and door, last check), and
carries the device's clock offset worked out from the previous ack (`HeartbeatAck.received_at`,
the service clock, against the device's wall clock around the exchange; a Pi has no RTC).

How it fails: it never touches the frame loop (its own thread, its own HTTP session). A build
that raises, a service that is down or slow (a `timeout_s` deadline per send), a refused token:
logged (a warning the first time, debug while it keeps failing, info when it works again) and
tried again at the next interval; nothing is queued or retried sooner, since a heartbeat is only
worth anything when it is fresh. `stop()` returns within `timeout_s` at most.

`ServiceContact` decides the **network fault** shown on the screen while the kiosk is idle
(sentinel/pipeline.py): the service counts as out of reach when nothing reached it, neither a
heartbeat, nor an upload, nor a check answered online, for `after_s` (NETWORK_FAULT_S, 2 minutes)
**and** at least `min_failures` (3) attempts failed since the last contact. Both, so that a quiet
kiosk with nothing to upload is not faulted for silence (it tries a heartbeat every minute: three
failed heartbeats take two minutes), and a single dropped upload or slow check is not a fault. It
clears at the first contact: the next heartbeat (within a minute), upload or online answer.
Meanwhile checks go on under the site's offline policy.

It also keeps what the technician menu's Network panel shows (sentinel/kiosk_technician.py): the
wall time of the last contact and the round trip of the last timed one, a heartbeat (timed here
with the injected `clock`) or an upload batch (timed by the uploader with its clock). Those are
read from memory: opening the panel sends nothing, so it never blocks on, nor hides, a network
that is down. A check answered online counts as contact but carries no round trip of its own
(its latency is mostly decoding), so the last timed one stays.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sentinel.worker import Worker

log = logging.getLogger("sentinel.heartbeat")

#: seconds between heartbeats (docs/api.md: every minute or so)
HEARTBEAT_INTERVAL_S = 60.0
#: seconds without any contact with the service before the network fault (with NETWORK_FAULT_FAILURES)
NETWORK_FAULT_S = 120.0
#: failed attempts (heartbeats, uploads, checks answered offline) since the last contact, at least
NETWORK_FAULT_FAILURES = 3


class ServiceContact:
    """Has anything reached the service lately, when, and how long did the last timed exchange
    take? Fed by the heartbeat, the uploader and the checks; asked by the pipeline's fault probe
    and the technician's Network panel. Thread-safe."""

    def __init__(
        self,
        *,
        after_s: float = NETWORK_FAULT_S,
        min_failures: int = NETWORK_FAULT_FAILURES,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.after_s = after_s
        self.min_failures = min_failures
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        self._seen_lock = threading.Lock()  # observe_uploader: the fault probe and the menu both poll
        self._last_ok = clock()  # the start counts as contact: no fault in the first after_s
        self.failures = 0  # since the last contact
        self.last_contact_at: datetime | None = None  # wall time of the last real contact (None: none yet)
        self.round_trip_s: float | None = None  # the last timed contact's round trip (heartbeat or upload)
        self._uploads_seen: tuple[Any, int] | None = None

    def ok(self, round_trip_s: float | None = None, at: datetime | None = None) -> None:
        """The service answered; `round_trip_s`: how long it took (a heartbeat, an upload batch),
        `at`: when (the wall clock; now when not given)."""
        when = at or self._wall()
        with self._lock:
            self._last_ok = self._clock()
            self.failures = 0
            self.last_contact_at = when
            if round_trip_s is not None:
                self.round_trip_s = max(0.0, round_trip_s)

    def failed(self, n: int = 1) -> None:
        with self._lock:
            self.failures += n

    def observe_outcome(self, outcome: Any) -> None:
        """A check's outcome (the pipeline's `on_outcome`): answered online, or not."""
        if getattr(outcome, "credential_kind", None) is None:
            return  # refused on the device: the service was not asked
        if getattr(outcome, "offline", False):
            self.failed()
        else:
            self.ok()

    def observe_uploader(self, status: Any) -> None:
        """The uploader's status (polled): a new success is contact, new failures count."""
        seen = (status.last_success_at, status.consecutive_failures)
        with self._seen_lock:
            previous, self._uploads_seen = self._uploads_seen, seen
        if previous is None:
            return
        if seen[0] != previous[0] and seen[0] is not None:
            self.ok(getattr(status, "last_round_trip_s", None), at=seen[0])
        if seen[1] > previous[1]:
            self.failed(seen[1] - previous[1])

    @property
    def since_contact_s(self) -> float:
        with self._lock:
            return self._clock() - self._last_ok

    @property
    def contact_age_s(self) -> float | None:
        """How long ago the last real contact was, by the wall clock (an upload is seen when the
        uploader is polled, later than it happened); None before any."""
        with self._lock:
            at = self.last_contact_at
        return None if at is None else max(0.0, (self._wall() - at).total_seconds())

    def fault(self) -> bool:
        """The network fault (module docstring)."""
        with self._lock:
            return self.failures >= self.min_failures and self._clock() - self._last_ok >= self.after_s


@dataclass(eq=False)
class HeartbeatSender:
    """Sends `build(clock_offset_s)` with `client.heartbeat(body, timeout_s)` now and every `interval_s`."""

    client: Any
    build: Callable[[float | None], Any]
    _: KW_ONLY
    interval_s: float = HEARTBEAT_INTERVAL_S
    timeout_s: float = 5.0
    wall: Callable[[], datetime] = field(default=lambda: datetime.now(UTC), repr=False)
    contact: ServiceContact | None = field(default=None, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    clock_offset_s: float | None = field(default=None, init=False)  # device minus service, from the last ack
    last_ack_at: datetime | None = field(default=None, init=False)  # the service clock in the last ack
    sent: int = field(default=0, init=False)  # heartbeats the service acknowledged
    failures: int = field(default=0, init=False)  # in a row
    last_error: str | None = field(default=None, init=False)
    last_round_trip_s: float | None = field(default=None, init=False)  # the last acknowledged heartbeat, sent to answered

    def __post_init__(self) -> None:
        self._worker = Worker("heartbeat", self._run)

    def send_once(self) -> bool:
        """Build and send one heartbeat; True when the service acknowledged it. Never raises."""
        try:
            body = self.build(self.clock_offset_s)
        except Exception:
            log.exception("could not build the heartbeat")
            self._failed("build", "could not build the heartbeat", contact=False)
            return False
        sent_at = self.wall()
        started = self.clock()
        try:
            ack = self.client.heartbeat(body, timeout_s=self.timeout_s)
        except Exception as e:  # ClientError, or a transport bug: logged, tried next interval
            self._failed(getattr(e, "code", type(e).__name__), str(e))
            return False
        self.last_round_trip_s = max(0.0, self.clock() - started)
        answered_at = self.wall()
        received_at = getattr(ack, "received_at", None)
        if received_at is not None:
            from sentinel.client import clock_offset

            self.clock_offset_s = clock_offset(sent_at, received_at, answered_at)
            self.last_ack_at = received_at
        if self.failures:
            log.info("heartbeat delivered again after %d failed", self.failures)
        self.failures = 0
        self.last_error = None
        self.sent += 1
        if self.contact is not None:
            self.contact.ok(self.last_round_trip_s, at=answered_at)
        return True

    def _failed(self, code: str, message: str, *, contact: bool = True) -> None:
        self.failures += 1
        self.last_error = f"{code}: {message}"[:300]
        if self.failures == 1:
            log.warning("heartbeat not delivered (%s); next try in %.0f s", self.last_error, self.interval_s)
        else:
            log.debug("heartbeat not delivered again (%s, %d in a row)", code, self.failures)
        if contact and self.contact is not None:
            self.contact.failed()

    def start(self) -> None:
        self._worker.start()

    def _run(self) -> None:
        while not self._worker.stopping.is_set():
            self.send_once()
            self._worker.stopping.wait(self.interval_s)

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop after the heartbeat in flight, if any (at most its `timeout_s`)."""
        self._worker.stop(self.timeout_s + 1.0 if timeout_s is None else timeout_s)

    def is_alive(self) -> bool:
        return self._worker.is_alive()


def build_heartbeat(health: dict[str, Any], clock_offset_s: float | None) -> Any:
    """The `contract.Heartbeat` for `Kiosk.health()`'s answer."""
    from sentinel import __version__
    from sentinel.contract import MAX_ALARMS, Heartbeat

    outbox = health.get("outbox", {})
    alarms = list(dict.fromkeys(health.get("alarms", [])))[:MAX_ALARMS]
    return Heartbeat(
        version=__version__,
        uptime_s=max(0.0, float(health.get("uptime_s") or 0.0)),
        queue_depth=int(outbox.get("depth", 0)),
        oldest_record_age_s=outbox.get("oldest_age_s"),
        alarms=alarms,
        camera=health.get("camera", "unknown"),
        gate=health.get("gate", "unknown"),
        door=health.get("door"),
        clock_offset_s=clock_offset_s,
        last_check_at=health.get("last_check_at"),
    )

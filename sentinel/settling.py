"""Settling one check, steps 1 and 2 (run on the pipeline's `writer` thread): decide and build the
verdict, the record and the screen, then commit the record to the outbox.

The order is the point (`sentinel.pipeline`'s module docstring has the whole of it):

1. **Decide and build** the verdict, the record and the screen. Everything that can raise happens
   here, before anything is committed (the screen of a failed commit is built only when a commit
   fails, by `staff_screen`, which cannot raise: 0.1 ms off every pass). If any of it
   raises (a bug, an answer the code cannot handle, e.g. a date without a time zone), the check
   becomes a staff check: status `verify_failed`, verdict `manual_check`, reason `verify_failed`,
   recorded like any other check. Never a pass, never a crash of the frame loop.
2. **Commit** the record to the outbox (an fsync; 200 ms or more on a tired SD card). A commit that
   fails turns a pass into `manual_check` / `record_failed` and the record is kept in memory
   (`Outbox.spill`). The commit does not wake the uploader (`Outbox.add(..., wake=False)`).

**A pass whose gate did not let the person through** is corrected afterwards, never by rewriting
the record (it may be uploaded already): an *amendment* (`Settler.amend`: `gate_not_turned`,
`gate_fault`, `gate_paused`) goes into the same outbox and is delivered like every record.

`Settler.settle` does not raise: whatever fails becomes a staff check or a record held in memory,
and it is logged. Past the outbox's cap a pass becomes a staff check (records are still kept).
The policy and the language are passed in per check, so a config reload takes effect at the next
check without a lock.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sentinel.config import PolicyConfig
from sentinel.credentials import Credential
from sentinel.handover import Handover
from sentinel.health import HealthStatus, Status
from sentinel.policy import Verdict, VerdictKind, decide
from sentinel.ports import OutboxLike
from sentinel.records import Record, RecordMaker
from sentinel.screens import Screen, ScreenKind
from sentinel.status_cache import StatusCache

log = logging.getLogger("sentinel.pipeline")

#: the reason of a check the device could not decide or show (a bug, an answer it cannot handle):
#: the same staff check as an answer it does not understand
CHECK_FAILED = "verify_failed"


@dataclass
class InFlight:
    """A check whose verifier answer is awaited."""

    credential: Credential
    seen_at: float
    deadline: float
    scanned_at: datetime
    #: a reason that caps a pass at a staff check (a face not confirmed live, a site that has every
    #: face match checked by staff: sentinel/faces/matcher.py); None for codes
    staff_check: str | None = None
    #: who settles the check: the verifier's worker when the answer came, or the frame loop when the
    #: deadline passed first; whichever takes it first (`acquire(blocking=False)`), the other never
    claim: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    #: the worker's verify-and-settle (-> Settled, or None when the frame loop took the claim); set
    #: by the pipeline as it hands the check to a worker
    handover: Handover = field(init=False, repr=False, compare=False)


@dataclass(frozen=True)
class Decision:
    """Step 1 of settling a check: everything that could raise is already done."""

    verdict: Verdict
    status: HealthStatus  # as shown and recorded (a cached status when the offline policy used one)
    offline: bool
    record: Record | None  # None only when not even the staff-check record could be made
    screen: Screen
    credential_hash: str | None
    wall_now: datetime  # and `language`: for the screen of a failed commit (a pass becomes record_failed)
    language: str


@dataclass(frozen=True)
class Settled:
    """Steps 1 and 2 done: what the frame loop acts on (gate, screen, outcome)."""

    verdict: Verdict
    status: HealthStatus
    offline: bool
    screen: Screen
    record_id: str | None
    durable: bool
    credential_hash: str | None


@dataclass
class Committing:
    check: InFlight
    handover: Handover  # -> Settled
    resolved_at: float  # when the answer (or the deadline) was taken: the verdict is no earlier


def staff_screen(verdict: Verdict, status: HealthStatus, offline: bool, wall_now: datetime, language: str) -> Screen:
    """A staff-check screen that is built whatever else is broken."""
    try:
        return Screen.result(verdict, status, language, offline, now=wall_now)
    except Exception:  # e.g. no text for the reason: the generic "device fault, call staff"
        try:
            return Screen.fault("check", language)
        except Exception:
            return Screen(ScreenKind.MANUAL_CHECK, "", language=language)


def failed_settling(error: BaseException, wall_now: datetime, language: str) -> Settled:
    """What the frame loop acts on when the writer died under a check (committed or not: unknown)."""
    status = HealthStatus.unreachable(Status.VERIFY_FAILED, f"device error: {type(error).__name__}")
    verdict = Verdict(VerdictKind.MANUAL_CHECK, CHECK_FAILED)
    return Settled(verdict, status, False, staff_screen(verdict, status, False, wall_now, language), None, False, None)


class Settler:
    """Steps 1 and 2 for the pipeline; `spill` also keeps the pipeline's amendments the disk refused."""

    def __init__(self, records: RecordMaker, outbox: OutboxLike, cache: StatusCache, wall: Callable[[], datetime]) -> None:
        self._records = records
        self._outbox = outbox
        self._cache = cache
        self._wall = wall
        #: the latest amendments put in the outbox, (record id, reason), for the technician and tests
        self.amendments: deque[tuple[str, str]] = deque(maxlen=100)

    def settle(self, check: InFlight, status: HealthStatus, wall_now: datetime, policy: PolicyConfig, language: str) -> Settled:
        """Steps 1 and 2, on the verifier's worker that got the answer (or on the writer, for a check
        whose deadline passed). Does not raise."""
        offline = status.status.is_unreachable
        try:
            decision = self._decide(check, status, offline, wall_now, policy, language)
        except Exception as e:
            log.exception("could not decide or show the verdict: staff will check")
            decision = self._staff_check(check, offline, wall_now, e, language)
        return self._commit(decision)

    def _decide(
        self, check: InFlight, status: HealthStatus, offline: bool, wall_now: datetime, policy: PolicyConfig, language: str
    ) -> Decision:
        credential_hash = self._records.credential_hash(check.credential)
        use_cache = policy.offline == "cached"
        cached = self._cache.get(credential_hash, wall_now) if offline and use_cache else None
        verdict = decide(status, policy, wall_now, cached)
        if check.staff_check and verdict.kind is VerdictKind.PASS:
            verdict = Verdict(VerdictKind.MANUAL_CHECK, check.staff_check)
        shown = status
        if offline and cached is not None and use_cache:
            # the cached colour, and why the service was not asked (the record keeps the reason)
            shown = cached.status.model_copy(update={"detail": f"cached; {status.detail}", "status_detail": status.status_detail})
        if verdict.kind == VerdictKind.PASS:
            # Past the outbox's cap records are still kept, but nobody passes unseen: staff check.
            at_cap = self._outbox_at_cap()
            if at_cap:
                verdict = Verdict(VerdictKind.MANUAL_CHECK, at_cap)
        record = self._records.make(check.credential, shown, verdict, offline, check.scanned_at, credential_hash=credential_hash)
        screen = Screen.result(verdict, shown, language, offline, now=wall_now)
        if status.status.is_colour and use_cache:
            try:  # best effort: a lost cache entry costs an offline verdict later, not this one
                self._cache.put(credential_hash, status, wall_now)
            except Exception:
                log.exception("could not cache the status")
        return Decision(verdict, shown, offline, record, screen, credential_hash, wall_now, language)

    def _staff_check(self, check: InFlight, offline: bool, wall_now: datetime, error: BaseException, language: str) -> Decision:
        status = HealthStatus.unreachable(Status.VERIFY_FAILED, f"device error: {type(error).__name__}")
        verdict = Verdict(VerdictKind.MANUAL_CHECK, CHECK_FAILED)
        try:
            credential_hash: str | None = self._records.credential_hash(check.credential)
        except Exception:
            credential_hash = None
        try:
            record: Record | None = self._records.make(check.credential, status, verdict, offline, check.scanned_at)
        except Exception:
            log.exception("could not even make the staff-check record")
            record = None
        screen = staff_screen(verdict, status, offline, wall_now, language)
        return Decision(verdict, status, offline, record, screen, credential_hash, wall_now, language)

    def _commit(self, decision: Decision) -> Settled:
        """Step 2: the record durable before the gate may move. Does not raise."""
        verdict, screen, record = decision.verdict, decision.screen, decision.record
        durable = False
        record_id: str | None = None
        if record is not None:
            try:
                self._outbox.add(record, wake=False)  # durable before the gate moves; the uploader waits for the relay
                durable = True
                record_id = record.id
            except Exception as e:
                log.error("could not commit the check record: %s", e)
                if verdict.kind == VerdictKind.PASS:
                    verdict = Verdict(VerdictKind.MANUAL_CHECK, "record_failed")
                    screen = staff_screen(verdict, decision.status, decision.offline, decision.wall_now, decision.language)
                # The record says what really happened (no gate); kept in memory until the disk
                # takes it again or the uploader delivers it from there.
                try:
                    record = record.model_copy(update={"verdict": verdict.kind, "reason": verdict.reason})
                    record_id = record.id if self.spill(record) else None
                except Exception:
                    log.exception("could not keep the record in memory either")
        return Settled(verdict, decision.status, decision.offline, screen, record_id, durable, decision.credential_hash)

    def _outbox_at_cap(self) -> str | None:
        try:
            return self._outbox.health().at_cap
        except Exception:
            log.exception("outbox health failed")
            return None

    def after_pass(self, record_id: str, watch) -> None:
        """The door sensor's answer to a pass (its thread or timer): no turn, an amendment."""
        if watch.turned:
            return
        log.warning("pass %s: the gate did not turn (%s): recorded as not passed", record_id, getattr(watch, "reason", ""))
        self.amend(record_id, "gate_not_turned")

    def amend(self, record_id: str | None, reason: str) -> None:
        """Record that a pass did not let the person through (module docstring). Does not raise."""
        if record_id is None:
            return
        try:
            amendment = self._records.amendment(record_id, passed=False, reason=reason, at=self._wall())
        except Exception:
            log.exception("could not make the amendment of %s (%s)", record_id, reason)
            return
        try:
            self._outbox.add(amendment)
        except Exception as e:
            log.error("could not commit the amendment of %s (%s): %s", record_id, reason, e)
            if not self.spill(amendment):
                return
        self.amendments.append((record_id, reason))

    def spill(self, record) -> bool:
        """Keep in memory what the disk refused; False (logged) when that fails too."""
        try:
            return bool(self._outbox.spill(record))
        except Exception:
            log.exception("could not keep the record in memory either")
            return False

"""The uploader: delivers the outbox to the health-status service, oldest first, at least once.

One background thread. Each pass takes up to `batch_size` (≤ 500, the contract's maximum) of the
oldest records, posts them, and deletes from the outbox only the ids the service listed in
`accepted`; the ones it `rejected` (wrong device, wrong site, id conflict, an amendment of another device's record) are set aside in the
outbox's `rejected` table, kept for audit and export and never retried. Anything else (no
connection, a timeout, a 5xx, an answer that is not the contract) leaves the batch where it was, to
be sent again after a back-off. Because the service stores an id at most once, sending a batch
whose acknowledgement was lost (or that a killed process never saw answered) costs nothing, and a
restarted process simply starts again at the oldest record still in the outbox.

Back-off is exponential with jitter: after the n-th failure in a row the wait is drawn uniformly
from [c/2, c] where c = min(retry_max_s, retry_initial_s · 2ⁿ⁻¹) ("equal jitter"), so a site whose
devices all lost the network at once does not come back in lock-step, and each wait still grows.
It is written out here rather than taken from tenacity or backoff: both wrap one function call in
a retry loop that ends, while this is a worker that never gives up, must wake up early for new
records or a stop, reports its next attempt time, and is tested with an injected clock and random
generator; the policy itself is four lines (`Backoff.delay`).

A 422 `bad_request` (or 413) refuses the whole batch because of one bad record (a device bug): the
batch is halved until the record is alone, and that one record is set aside, so one bad record
does not hold up the others.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol


from sentinel.client import ClientError
from sentinel.contract import MAX_RECORDS_PER_UPLOAD, RecordsAccepted
from sentinel.outbox import Outbox
from sentinel.worker import Worker

log = logging.getLogger("sentinel.uploader")

#: the service refused this device: nothing will go through until a technician re-binds it
DEVICE_ERRORS = {"unauthorized", "token_revoked", "wrong_device", "wrong_site", "device_only"}
#: the service refused the batch as a whole because of what is in it: split it
SPLIT_ERRORS = {"bad_request", "too_large"}


class RecordsTransport(Protocol):
    def upload_records_detailed(self, records: list[dict[str, Any]], timeout_s: float) -> RecordsAccepted: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Backoff:
    initial_s: float = 1.0
    max_s: float = 120.0

    def delay(self, failures: int, rng: random.Random) -> float:
        """Wait after the `failures`-th failure in a row (1, 2, …): equal jitter, capped."""
        ceiling = min(self.max_s, self.initial_s * 2 ** min(max(failures, 1) - 1, 40))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


@dataclass(frozen=True)
class UploaderStatus:
    """For the heartbeat, the screen and `sentinel outbox status`."""

    state: str  # idle | uploading | retrying | unauthorized | stopped
    queue_depth: int
    oldest_record_age_s: float | None
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    consecutive_failures: int
    next_attempt_in_s: float | None
    delivered: int  # since this process started
    set_aside: int  # since this process started
    last_round_trip_s: float | None = None  # the last batch the service answered: sent to answered (the technician's Network panel)

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "queue_depth": self.queue_depth,
            "oldest_record_age_s": None if self.oldest_record_age_s is None else round(self.oldest_record_age_s, 3),
            "last_success_at": self.last_success_at.isoformat() if self.last_success_at else None,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at.isoformat() if self.last_error_at else None,
            "consecutive_failures": self.consecutive_failures,
            "next_attempt_in_s": None if self.next_attempt_in_s is None else round(self.next_attempt_in_s, 3),
            "delivered": self.delivered,
            "set_aside": self.set_aside,
        }


@dataclass(frozen=True)
class DrainResult:
    delivered: int
    set_aside: int
    remaining: int
    last_error: str | None

    @property
    def complete(self) -> bool:
        return self.remaining == 0


def _parse_time(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


class Uploader:
    def __init__(
        self,
        outbox: Outbox,
        transport: RecordsTransport,
        *,
        batch_size: int = MAX_RECORDS_PER_UPLOAD,
        timeout_s: float = 20.0,
        backoff: Backoff = Backoff(),
        idle_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
    ):
        if not 1 <= batch_size <= MAX_RECORDS_PER_UPLOAD:
            raise ValueError(f"batch_size must be 1..{MAX_RECORDS_PER_UPLOAD}")
        self._outbox = outbox
        self._transport = transport
        self.batch_size = batch_size
        self._batch_limit = batch_size
        self._timeout_s = timeout_s
        self.backoff = backoff
        self._idle_s = idle_s
        self._clock = clock
        self._wall = wall
        self._rng = rng or random.Random()
        self._state = "idle"
        self._failures = 0
        self._next_attempt_at: float | None = None
        meta = outbox.meta()  # the last success and error survive a restart
        self._last_success_at = _parse_time(meta.get("last_success_at"))
        self._last_error = meta.get("last_error")
        self._last_error_at = _parse_time(meta.get("last_error_at"))
        self.delivered = 0
        self.set_aside = 0
        self._last_round_trip_s: float | None = None
        self._wake = threading.Event()
        self._worker = Worker("uploader", self._run)
        outbox.subscribe(self._wake.set)

    # --- one pass --------------------------------------------------------------------------

    def step(self) -> float:
        """One upload attempt. Returns how long to wait before the next: 0 when more records are
        waiting, the idle time when the outbox is empty, the back-off after a failure."""
        self._next_attempt_at = None
        try:
            self._outbox.retry_spill()
            batch = self._outbox.pending(self._batch_limit)
        except Exception as e:  # noqa: BLE001 - a failing disk must not kill the worker
            return self._failed("outbox", f"cannot read the outbox: {e}")
        if not batch:
            self._state = "idle"
            return self._idle_s
        if not self._failures:  # a retry stays "retrying" (or "unauthorized") until it succeeds
            self._state = "uploading"
        started = self._clock()
        try:
            result = self._transport.upload_records_detailed(batch, self._timeout_s)
        except ClientError as e:
            if e.code in SPLIT_ERRORS:
                return self._split(batch, e)
            return self._failed(e.code, str(e), unauthorized=e.code in DEVICE_ERRORS)
        except Exception as e:  # noqa: BLE001 - a transport bug must not kill the worker
            log.exception("upload raised")
            return self._failed("error", f"{type(e).__name__}: {e}")
        self._last_round_trip_s = max(0.0, self._clock() - started)
        return self._handle(batch, result)

    def _handle(self, batch: list[dict[str, Any]], result: RecordsAccepted) -> float:
        sent = {r["id"] for r in batch}
        accepted = [i for i in dict.fromkeys(result.accepted) if i in sent]
        accepted_set = set(accepted)
        rejected = [(r.id, r.error, r.message) for r in result.rejected if r.id in sent and r.id not in accepted_set]
        try:
            deleted = self._outbox.acknowledge(accepted, delivered_at=self._wall()) if accepted else 0
            if rejected:
                self.set_aside += self._outbox.set_aside(rejected)
        except Exception as e:  # noqa: BLE001 - the records stay and are resent: at least once
            return self._failed("outbox", f"cannot update the outbox: {e}")
        if not accepted and not rejected:
            return self._failed("no_progress", f"the service acknowledged none of {len(batch)} records")
        self.delivered += deleted
        if self._failures:
            log.warning("uploads resumed after %d failed attempts", self._failures)
        self._failures = 0
        self._last_success_at = self._wall()
        self._state = "uploading"
        if self._batch_limit < self.batch_size:
            self._batch_limit = min(self.batch_size, self._batch_limit * 2)
        log.debug("delivered %d records, %d set aside", len(accepted), len(rejected))
        return 0.0

    def _split(self, batch: list[dict[str, Any]], e: ClientError) -> float:
        if len(batch) > 1:
            self._batch_limit = max(1, len(batch) // 2)
            log.warning("the service refused a batch of %d (%s): trying %d at a time to find the bad record", len(batch), e.code, self._batch_limit)
            return 0.0
        record_id = batch[0]["id"]
        log.error("the service refuses record %s on its own (%s: %s): a device bug; set aside", record_id, e.code, e)
        try:
            self.set_aside += self._outbox.set_aside([(record_id, e.code, str(e))])
        except Exception as err:  # noqa: BLE001
            return self._failed("outbox", f"cannot set a record aside: {err}")
        self._batch_limit = self.batch_size
        return 0.0

    def _failed(self, code: str, message: str, *, unauthorized: bool = False) -> float:
        self._failures += 1
        self._state = "unauthorized" if unauthorized else "retrying"
        delay = self.backoff.max_s if unauthorized else self.backoff.delay(self._failures, self._rng)
        self._next_attempt_at = self._clock() + delay
        self._last_error = f"{code}: {message}"[:300]
        self._last_error_at = self._wall()
        self._outbox.note_error(self._last_error, self._last_error_at)
        if unauthorized:
            log.error("the service refuses this device (%s): records are kept; call a technician", code)
        elif self._failures == 1:
            log.warning("upload failed (%s); retrying in %.1f s with back-off", self._last_error, delay)
        else:
            log.info("upload failed again (%s, %d in a row); next try in %.1f s", code, self._failures, delay)
        return delay

    # --- status ----------------------------------------------------------------------------

    @property
    def online(self) -> bool | None:
        """Did the last upload attempt reach the service? None before the first attempt."""
        if self._failures:
            return False
        return True if self._last_success_at is not None and self.delivered else None

    def status(self) -> UploaderStatus:
        health = self._outbox.health()
        next_in = None if self._next_attempt_at is None else max(0.0, self._next_attempt_at - self._clock())
        return UploaderStatus(
            state="stopped" if self._worker.ended else self._state,
            queue_depth=health.depth,
            oldest_record_age_s=health.oldest_age_s,
            last_success_at=self._last_success_at,
            last_error=self._last_error,
            last_error_at=self._last_error_at,
            consecutive_failures=self._failures,
            next_attempt_in_s=next_in,
            delivered=self.delivered,
            set_aside=self.set_aside,
            last_round_trip_s=self._last_round_trip_s,
        )

    # --- the worker thread -----------------------------------------------------------------

    def start(self) -> None:
        self._worker.start()

    def _run(self) -> None:
        log.info("uploader started")
        while not self._worker.stopping.is_set():
            self._wake.clear()  # an add after this point cuts the idle wait short
            try:
                delay = self.step()
            except Exception as e:  # noqa: BLE001 - the worker must outlive any bug
                log.exception("uploader step failed")
                delay = self._failed("error", f"{type(e).__name__}: {e}")
            if delay <= 0:
                continue
            if self._state == "idle":
                self._wake.wait(delay)
            else:
                self._worker.stopping.wait(delay)  # a back-off is not cut short by new records
        log.info("uploader stopped")

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop after the upload in flight (if any); records not acknowledged stay in the outbox."""
        self._worker.stopping.set()
        self._wake.set()
        if not self._worker.stop(timeout_s):
            log.warning("uploader still busy after %.0f s; its records stay in the outbox", timeout_s)

    def wake(self) -> None:
        self._wake.set()

    def is_alive(self) -> bool:
        """The worker thread runs (for the systemd watchdog: a dead thread means restart; a
        service that is down does not, the records simply wait)."""
        return self._worker.is_alive()

    # --- in the foreground, for `sentinel outbox flush` --------------------------------------

    def drain(
        self,
        *,
        progress: Callable[[int, int], None] | None = None,
        max_failures: int = 5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> DrainResult:
        """Upload until the outbox is empty, or until `max_failures` attempts in a row failed."""
        set_aside_before, delivered_before = self.set_aside, self.delivered
        while True:
            depth = self._outbox.health().depth
            done = (self.delivered - delivered_before) + (self.set_aside - set_aside_before)
            if progress:
                progress(done, done + depth)
            if depth == 0:
                break
            delay = self.step()
            if self._failures >= max_failures or self._state in ("unauthorized", "idle"):
                break
            if delay > 0 and self._state != "idle":
                sleep(delay)
        return DrainResult(
            delivered=self.delivered - delivered_before,
            set_aside=self.set_aside - set_aside_before,
            remaining=self._outbox.health().depth,
            last_error=self._last_error if self._failures else None,
        )

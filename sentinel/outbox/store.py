"""The durable store itself: `Outbox`, one SQLite file in WAL mode (synchronous=FULL,
secure_delete), with the in-memory spill for a disk that refuses writes and the move-aside and
salvage of a corrupt file. The reasons and the failure modes are told in
`sentinel/outbox/__init__.py`; the health model is in `health.py`, reading files in `files.py`.

The SQLite file itself (schema, pragmas, transactions, moving a damaged file aside) is
`sqlite.py`. Failure: `add` raises `OutboxError` unless the record is durable (no gate then);
`spill` keeps what the disk refused in memory, counting a record lost only when that is full.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sentinel.contract import MAX_EXTRA_BYTES
from sentinel.outbox.files import corrupt_copies, is_corruption
from sentinel.outbox.health import OutboxHealth, OutboxLimits, build_health, log_alarm_changes
from sentinel.outbox.sqlite import (  # noqa: F401 (SCHEMA_VERSION, JOURNAL_SIZE_LIMIT: their old home)
    JOURNAL_SIZE_LIMIT,
    SCHEMA_VERSION,
    OutboxError,
    add_meta,
    insert_rows,
    open_file,
    replace_corrupt,
    put_meta,
    transaction,
    utc_text,
)
from sentinel.records import AnyRecord
from sentinel.textsafe import printable

log = logging.getLogger("sentinel.outbox")

#: delivered records after which the -wal is checkpointed and truncated even if the outbox is not empty
CHECKPOINT_EVERY_ACKS = 500
#: how often (seconds) set-aside records past their retention are purged while running
PURGE_INTERVAL_S = 3600.0
#: records whose after-commit values (`Outbox.wake`) are kept in memory until they are delivered
NOTES_MAX = 1000


#: what a failing disk or a closed outbox raises
_FAILURES = (sqlite3.Error, OSError, OutboxError)


class Outbox:
    """Thread-safe: the kiosk loop adds while the uploader reads and acknowledges."""

    def __init__(
        self,
        path: Path | str,
        *,
        limits: OutboxLimits = OutboxLimits(),
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        recover: bool = True,
    ):
        """`recover=False` raises OutboxError on a corrupt file instead of moving it aside: for a
        second process (`sentinel outbox flush`) next to a running kiosk, which owns the file."""
        self.path = Path(path)
        self.limits = limits
        self._wall = wall
        self._recover = recover
        self._lock = threading.RLock()
        self._listeners: list[Callable[[], None]] = []
        self._spill: dict[str, AnyRecord] = {}
        self._notes: dict[str, dict[str, Any]] = {}  # record id -> values for its extra (`wake`)
        self._lost = 0
        self._moved: list[str] = []
        self._salvaged = 0
        self._depth = 0
        self._rejected = 0
        self._oldest: datetime | None = None
        self._last_alarms: tuple[str, ...] = ()
        self._db: sqlite3.Connection | None = None
        self._closed = False
        self._acked_since_checkpoint = 0
        self._purged_at: datetime | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # copies left by an earlier start keep the alarm up until a technician deals with them
        self._moved = [str(p) for p in corrupt_copies(self.path)]
        with self._lock:
            try:
                self._open()
            except OutboxError:
                raise
            except (sqlite3.Error, OSError) as e:
                # e.g. the disk is full and SQLite cannot create the -wal/-shm files: keep checking
                # people with records in memory, and try again on every add and uploader pass.
                log.critical("cannot open the outbox %s: %s; records are kept in memory until it opens", self.path, e)
                self._db = None
            if self._db is not None:
                self._maybe_purge()
            self._check_alarms()

    # --- opening, and what to do with a damaged file -----------------------------------------

    def _open(self) -> None:
        self._db, salvaged = open_file(self.path, recover=self._recover, moved=self._moved)
        self._salvaged += salvaged
        self._recount()

    def _recount(self) -> None:
        assert self._db is not None
        self._depth = self._db.execute("SELECT COUNT(*) FROM records").fetchone()[0]
        self._rejected = self._db.execute("SELECT COUNT(*) FROM rejected").fetchone()[0]
        self._refresh_oldest()

    def _refresh_oldest(self) -> None:
        if self._db is None:
            return
        try:
            row = self._db.execute("SELECT created_at FROM records ORDER BY id LIMIT 1").fetchone()
        except sqlite3.Error as e:
            log.debug("cannot read the oldest record's time: %s", e)
            return
        self._oldest = datetime.fromisoformat(row[0]) if row else None

    def _replace_corrupt(self, why: str) -> None:
        """Close the damaged file, move it aside, start a new one with what can still be read."""
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
            self._db = None
        self._db, salvaged = replace_corrupt(self.path, why, recover=self._recover, moved=self._moved)
        self._salvaged += salvaged

    def _insert_rows(self, rows: list[tuple[str, str, str]]) -> int:
        assert self._db is not None
        return insert_rows(self._db, rows)

    def _guarded(self, what: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run `what` on the database; a corrupt file is replaced and `what` tried once more."""
        if self._closed:
            raise OutboxError(f"outbox {self.path} is closed")
        if self._db is None:
            self._open()
        assert self._db is not None
        try:
            return what(self._db)
        except sqlite3.DatabaseError as e:
            if not is_corruption(e):
                raise
            self._replace_corrupt(str(e))
            self._recount()
            return what(self._db)

    # --- the kiosk's side -------------------------------------------------------------------

    def add(self, record: AnyRecord, *, wake: bool = True) -> None:
        """Returns only once the record is durable on disk; raises OutboxError when it is not.
        `wake=False` leaves the uploader asleep until `wake()`: the pipeline commits a check's
        record before the gate opens but wakes the uploader only after the relay is energised, so
        that the uploader's thread does not compete with the relay for the CPU (issue 18)."""
        body = record.model_dump_json()
        row = (record.id, record.created_at.isoformat(), body)

        def insert(db: sqlite3.Connection) -> int:
            return db.execute("INSERT OR IGNORE INTO records (id, created_at, body) VALUES (?, ?, ?)", row).rowcount

        with self._lock:
            try:
                added = self._guarded(insert)
            except _FAILURES as e:
                raise OutboxError(f"record {record.id} not written: {e}") from e
            if added:
                self._depth += 1
                if self._oldest is None or record.created_at < self._oldest:
                    self._oldest = record.created_at
            if self._spill:
                self._write_spill()
            self._check_alarms()
        if wake:
            self._notify()

    def wake(self, record_id: str | None = None, **extra: Any) -> None:
        """Wake the uploader (after `add(..., wake=False)`). `extra`: diagnostic values that could
        only be measured after the record was committed (the pipeline's `latency_ms`: code seen
        to relay energised), added to that record's `extra` when it is handed to the uploader.
        They are kept in memory only (at most `NOTES_MAX` records' worth): a record uploaded
        after a restart, or already taken by an upload in flight, goes without them."""
        if record_id is not None and extra:
            with self._lock:
                self._notes[record_id] = extra
                while len(self._notes) > NOTES_MAX:
                    del self._notes[next(iter(self._notes))]
        self._notify()

    def _noted(self, record_id: str, body: str) -> dict[str, Any]:
        data = json.loads(body)
        notes = self._notes.get(record_id)
        if notes and isinstance(data.get("extra"), dict):
            merged = {**data["extra"], **notes}
            if len(json.dumps(merged, ensure_ascii=False).encode()) <= MAX_EXTRA_BYTES:
                data["extra"] = merged
        return data

    def spill(self, record: AnyRecord) -> bool:
        """Keep a record that `add` could not write in memory, to be written or uploaded later.
        Returns False (and counts it as lost, loudly) when the memory spill is full."""
        with self._lock:
            if record.id not in self._spill and len(self._spill) >= self.limits.spill_max:
                self._lost += 1
                log.critical("record %s LOST: the disk refuses writes and the memory spill is full (%d)", record.id, len(self._spill))
                self._check_alarms()
                return False
            self._spill[record.id] = record
            log.error("record %s held in memory only (%d so held): the disk refuses writes", record.id, len(self._spill))
            self._check_alarms()
        self._notify()
        return True

    def retry_spill(self) -> int:
        """Try again to write the records held in memory; returns how many are now on disk."""
        with self._lock:
            if not self._spill:
                return 0
            return self._write_spill()

    def _write_spill(self) -> int:
        records = sorted(self._spill.values(), key=lambda r: r.id)
        rows = [(r.id, r.created_at.isoformat(), r.model_dump_json()) for r in records]
        try:
            self._guarded(lambda db: None)
            written = self._insert_rows(rows)
        except _FAILURES as e:
            log.debug("records in memory still cannot be written: %s", e)
            return 0
        self._spill.clear()
        self._depth += written
        self._refresh_oldest()
        log.warning("%d records held in memory are now written to the outbox", len(rows))
        self._check_alarms()
        return len(rows)

    # --- the uploader's side ----------------------------------------------------------------

    def pending(self, limit: int = 100) -> list[dict[str, Any]]:
        """The oldest records waiting for upload (on disk, and in memory if the disk failed)."""
        with self._lock:
            try:
                rows = self._guarded(
                    lambda db: db.execute("SELECT id, body FROM records ORDER BY id LIMIT ?", (limit,)).fetchall()
                )
                if not rows and self._depth:
                    # another process (`sentinel outbox flush`) delivered them meanwhile
                    self._depth = 0
                    self._oldest = None
            except _FAILURES as e:
                if not self._spill:
                    raise
                log.error("cannot read the outbox (%s); offering the records held in memory", e)
                rows = []
            if self._spill:
                extra = [(r.id, r.model_dump_json()) for r in self._spill.values()]
                rows = sorted({i: b for i, b in [*rows, *extra]}.items())[:limit]
            return [self._noted(i, body) for i, body in rows]

    def acknowledge(self, ids: list[str], *, delivered_at: datetime | None = None) -> int:
        """Delete records the service acknowledged; returns how many were deleted. With
        `delivered_at`, the time of this success is kept in the same transaction (no extra write)."""
        with self._lock:
            from_memory = sum(1 for i in ids if self._spill.pop(i, None) is not None)
            for i in ids:
                self._notes.pop(i, None)

            def delete(db: sqlite3.Connection) -> int:
                before = db.total_changes
                with transaction(db):
                    db.executemany("DELETE FROM records WHERE id = ?", [(i,) for i in ids])
                    deleted = db.total_changes - before
                    if delivered_at is not None:
                        put_meta(db, {"last_success_at": utc_text(delivered_at)})
                        add_meta(db, "delivered_total", deleted + from_memory)
                return deleted

            if len(ids) > from_memory:
                deleted = self._guarded(delete)
            else:  # all were held in memory: the disk may still be failing, and is not needed
                deleted = 0
                if delivered_at is not None and from_memory:
                    self.note_success(delivered_at, from_memory)
            if deleted < len(ids) - from_memory:  # some were already gone: another process delivered them
                self._depth = self._guarded(lambda db: db.execute("SELECT COUNT(*) FROM records").fetchone()[0])
            else:
                self._depth = max(0, self._depth - deleted)
            self._acked_since_checkpoint += deleted
            if deleted and (self._depth == 0 or self._acked_since_checkpoint >= CHECKPOINT_EVERY_ACKS):
                self._checkpoint()
            self._maybe_purge()
            self._refresh_oldest()
            self._check_alarms()
        return deleted + from_memory

    def _checkpoint(self) -> bool:
        """Fold the -wal into the file and truncate it, so that the page images of deleted records
        it holds are gone. Best effort: a reader in another process can block it (tried again later)."""
        if self._db is None:
            return False
        try:
            busy, _log, _done = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error as e:
            log.debug("checkpoint failed: %s", e)
            return False
        if busy:
            log.debug("checkpoint blocked by a reader: tried again after the next acknowledgement")
            return False
        self._acked_since_checkpoint = 0
        return True

    def purge_rejected(self, now: datetime | None = None) -> int:
        """Delete set-aside records older than the retention (`limits.rejected_retention_s`);
        returns how many. The -wal is checkpointed after a purge, as after a delivery."""
        now = now or self._wall()
        cutoff = utc_text(now - timedelta(seconds=self.limits.rejected_retention_s))
        with self._lock:
            self._purged_at = now

            def purge(db: sqlite3.Connection) -> int:
                with transaction(db):
                    return db.execute("DELETE FROM rejected WHERE rejected_at < ?", (cutoff,)).rowcount

            gone = self._guarded(purge)
            if gone:
                self._rejected = max(0, self._rejected - gone)
                self._checkpoint()
                log.info("purged %d set-aside records older than %.0f days", gone, self.limits.rejected_retention_s / 86400)
                self._check_alarms()
        return gone

    def _maybe_purge(self) -> None:
        now = self._wall()
        if self._purged_at is not None and abs((now - self._purged_at).total_seconds()) < PURGE_INTERVAL_S:
            return
        try:
            self.purge_rejected(now)
        except _FAILURES as e:
            self._purged_at = now
            log.warning("could not purge expired set-aside records: %s", e)

    def set_aside(self, rejections: list[tuple[str, str, str]], *, at: datetime | None = None) -> int:
        """Move records the service refused for good, (id, error, message), to the rejected table."""
        at_text = utc_text(at or self._wall())
        with self._lock:
            spilled = [(self._spill.pop(i), e, m) for i, e, m in rejections if i in self._spill]

            def move(db: sqlite3.Connection) -> int:
                moved = 0
                with transaction(db):
                    for record_id, error, message in rejections:
                        moved += db.execute(
                            "INSERT OR REPLACE INTO rejected (id, created_at, body, error, message, rejected_at) "
                            "SELECT id, created_at, body, ?, ?, ? FROM records WHERE id = ?",
                            (error, message[:500], at_text, record_id),
                        ).rowcount
                        db.execute("DELETE FROM records WHERE id = ?", (record_id,))
                    for record, error, message in spilled:
                        db.execute(
                            "INSERT OR REPLACE INTO rejected (id, created_at, body, error, message, rejected_at) VALUES (?, ?, ?, ?, ?, ?)",
                            (record.id, record.created_at.isoformat(), record.model_dump_json(), error, message[:500], at_text),
                        )
                return moved

            try:
                moved = self._guarded(move)
            except _FAILURES:
                for record, _e, _m in spilled:  # not written: keep them rather than lose them
                    self._spill[record.id] = record
                raise
            self._depth = max(0, self._depth - moved)
            self._rejected += moved + len(spilled)
            self._refresh_oldest()
            for record_id, error, message in rejections:
                log.error(
                    "record %s refused by the service (%s: %s): set aside, not retried",
                    printable(record_id, 64), printable(error, 64), printable(message, 300),
                )
            self._check_alarms()
        return moved + len(spilled)

    def rejected(self, limit: int | None = None) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._guarded(
                lambda db: db.execute(
                    "SELECT body, error, message, rejected_at FROM rejected ORDER BY id LIMIT ?", (-1 if limit is None else limit,)
                ).fetchall()
            )
        return [{"record": json.loads(b), "error": e, "message": m, "rejected_at": t} for b, e, m, t in rows]

    def note_success(self, at: datetime, delivered: int) -> None:
        """Keep the time of a success that deleted nothing from disk. Best effort."""
        with self._lock:
            try:

                def put(db: sqlite3.Connection) -> None:
                    with transaction(db):
                        put_meta(db, {"last_success_at": utc_text(at)})
                        add_meta(db, "delivered_total", delivered)

                self._guarded(put)
            except _FAILURES as e:
                log.debug("could not keep the last upload success: %s", e)

    def note_error(self, error: str, at: datetime | None = None) -> None:
        """Keep the last upload error (for `sentinel outbox status` in another process). Best effort."""
        with self._lock:
            try:
                self._guarded(lambda db: put_meta(db, {"last_error": error[:300], "last_error_at": utc_text(at or self._wall())}))
            except _FAILURES as e:
                log.debug("could not keep the last upload error: %s", e)

    def meta(self) -> dict[str, str]:
        with self._lock:
            try:
                return dict(self._guarded(lambda db: db.execute("SELECT key, value FROM meta").fetchall()))
            except _FAILURES:
                return {}

    def subscribe(self, callback: Callable[[], None]) -> None:
        """`callback()` runs after every add or spill (the uploader's wake-up); it must be quick."""
        self._listeners.append(callback)

    def _notify(self) -> None:
        for callback in self._listeners:
            try:
                callback()
            except Exception:
                log.exception("outbox listener failed")

    # --- health ----------------------------------------------------------------------------

    def health(self) -> OutboxHealth:
        """Cheap (no disk access): called before every verdict and by the screen and heartbeat."""
        with self._lock:
            return self._check_alarms()

    def _health(self) -> OutboxHealth:
        oldest = self._oldest
        if self._spill:
            oldest_spilled = min(r.created_at for r in self._spill.values())
            oldest = oldest_spilled if oldest is None else min(oldest, oldest_spilled)
        return build_health(
            self.limits,
            self._wall(),
            depth=self._depth + len(self._spill),
            spilled=len(self._spill),
            rejected=self._rejected,
            lost=self._lost,
            oldest=oldest,
            corrupt=tuple(self._moved),
            salvaged=self._salvaged,
            unavailable=self._db is None and not self._closed,
        )

    def _check_alarms(self) -> OutboxHealth:
        """Log each alarm once when it appears and once when it clears (not once per record)."""
        health = self._health()
        self._last_alarms = log_alarm_changes(self._last_alarms, health, log)
        return health

    # --- closing ---------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._spill:
                self._write_spill()
            if self._spill:
                log.critical("%d records held only in memory are lost at shutdown: the disk refused them", len(self._spill))
            self._closed = True
            if self._db is None:
                return
            try:
                # fold the WAL into the file and truncate it: no stale record pages left in the -wal
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as e:
                log.debug("checkpoint at close failed: %s", e)
            self._db.close()
            self._db = None

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

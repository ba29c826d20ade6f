"""The last health status seen per credential hash, for the `cached` offline policy.

On disk (SQLite), so that a kiosk restarted while the network is down still knows the people it
saw online a few minutes ago; in memory when no path is given (tests, the default pipeline). Only
the keyed credential hash is stored, never the credential, and entries older than the TTL are
deleted (with `secure_delete`, overwritten): a status is personal data and kept no longer than the
policy can use it.

Expired entries go whatever the network does: when the file is opened (a kiosk stopped for a
day starts with nothing stale), when a read finds one (`get` deletes an expired entry it meets),
and at most every PURGE_EVERY_S from any `get` or `put` (a kiosk offline for hours asks the cache
on every check, so the purge needs no online answer). Time is the wall clock passed to `get`/`put`
(the pipeline's), or the injected `wall` on open. After a purge that deleted something the WAL is
checkpointed and truncated: SQLite keeps the old page images, hashes included, in the -wal until
then, and `secure_delete` only zeroes the database file.

A cache is not a record: losing it costs a few offline verdicts, not evidence. So writes use
synchronous=NORMAL (no fsync per check: the SD card's write budget goes to the outbox), and a
damaged file is deleted and started again instead of being kept for a technician. For the same
reason a file that cannot be opened at all (a full disk: SQLite cannot create the -wal; a
read-only state directory; an I/O error) does not stop the kiosk: the cache runs in memory for
this run, `problem` says why, and the kiosk shows the alarm `status_cache_memory` (what it knew
is gone; what it sees from now on is remembered until the next start, which tries the file again).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import ValidationError

from sentinel.health import HealthStatus
from sentinel.outbox import is_corruption, sidecars
from sentinel.policy import CachedStatus
from sentinel.state_files import FILE_MODE

log = logging.getLogger("sentinel.status_cache")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS statuses (
    credential_hash TEXT PRIMARY KEY,
    seen_at TEXT NOT NULL,      -- UTC, fixed width: text order is time order
    status TEXT NOT NULL        -- HealthStatus JSON as the service answered
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS statuses_by_age ON statuses (seen_at);
"""

#: expired entries are deleted at most this often (seconds of wall time between purges)
PURGE_EVERY_S = 60.0


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class StatusCache:
    """Thread-safe. Entries older than the TTL are never answered and are deleted on open, on
    the read that meets them, and at most every PURGE_EVERY_S from `get` and `put`."""

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        ttl_s: float = 3600.0,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.path = Path(path) if path is not None else None
        self.ttl = timedelta(seconds=ttl_s)
        self._wall = wall
        self._lock = threading.Lock()
        self._last_purge: datetime | None = None
        self._warned_at = 0.0
        #: why the file could not be used and the cache is in memory instead ("" when all is well)
        self.problem = ""
        try:
            self._db = self._open()
        except (sqlite3.Error, OSError) as e:
            self.problem = f"{type(e).__name__}: {e}"
            log.error("status cache %s cannot be opened (%s): kept in memory until the next start", self.path, e)
            self._db = self._connect(":memory:")
        try:
            with self._lock:
                self._purge(self._wall())  # a kiosk stopped past the TTL keeps nothing stale
        except sqlite3.Error as e:
            self._warn(f"status cache purge failed: {e}")

    @property
    def on_disk(self) -> bool:
        return self.path is not None and not self.problem

    def _open(self) -> sqlite3.Connection:
        if self.path is None:
            return self._connect(":memory:")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():  # 0600 before SQLite makes it (its -wal and -shm take its mode)
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE))
        try:
            return self._connect(str(self.path))
        except sqlite3.DatabaseError as e:
            if not is_corruption(e):
                raise
            log.error("status cache %s is damaged (%s): starting a new one", self.path, e)
            for p in (self.path, *sidecars(self.path)):
                p.unlink(missing_ok=True)
            return self._connect(str(self.path))

    @staticmethod
    def _connect(target: str) -> sqlite3.Connection:
        db = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA busy_timeout=1000")
            if target != ":memory:":
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA secure_delete=ON")
            if db.execute("PRAGMA quick_check(1)").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("database disk image is malformed (quick_check)")
            db.executescript(_SCHEMA)
        except BaseException:
            db.close()
            raise
        return db

    def get(self, credential_hash: str, now: datetime | None = None) -> CachedStatus | None:
        """The remembered status, or None (never seen, expired, or unreadable). An expired entry
        met here is deleted at once."""
        now = now if now is not None else self._wall()
        try:
            with self._lock:
                self._purge_if_due(now)
                row = self._db.execute(
                    "SELECT seen_at, status FROM statuses WHERE credential_hash = ?", (credential_hash,)
                ).fetchone()
                if row is not None and now - datetime.fromisoformat(row[0]) > self.ttl:
                    self._delete(credential_hash)
                    return None
        except sqlite3.Error as e:
            self._warn(f"status cache read failed: {e}")
            return None
        if row is None:
            return None
        seen_at = datetime.fromisoformat(row[0])
        try:
            return CachedStatus(HealthStatus.model_validate_json(row[1]), seen_at)
        except ValidationError:
            return None

    def put(self, credential_hash: str, status: HealthStatus, seen_at: datetime) -> None:
        """Remember a status. Never raises: a full disk costs the cache, not the check."""
        try:
            with self._lock:
                self._db.execute(
                    "INSERT OR REPLACE INTO statuses (credential_hash, seen_at, status) VALUES (?, ?, ?)",
                    (credential_hash, _utc(seen_at), status.model_dump_json()),
                )
                self._purge_if_due(seen_at)
        except sqlite3.Error as e:
            self._warn(f"status cache write failed: {e}")

    def expire(self, now: datetime) -> int:
        """Delete entries older than the TTL; returns how many."""
        with self._lock:
            return self._purge(now)

    def _purge_if_due(self, now: datetime) -> None:
        if self._last_purge is None or abs((now - self._last_purge).total_seconds()) >= PURGE_EVERY_S:
            self._purge(now)

    def _purge(self, now: datetime) -> int:
        self._last_purge = now
        deleted = self._db.execute("DELETE FROM statuses WHERE seen_at < ?", (_utc(now - self.ttl),)).rowcount
        if deleted:
            self._checkpoint()
        return deleted

    def _delete(self, credential_hash: str) -> None:
        if self._db.execute("DELETE FROM statuses WHERE credential_hash = ?", (credential_hash,)).rowcount:
            self._checkpoint()

    def _checkpoint(self) -> None:
        """The deleted rows' old page images leave the -wal (secure_delete zeroed the database's)."""
        if self.on_disk:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM statuses").fetchone()[0]

    def clear(self) -> None:
        with self._lock:
            if self._db.execute("DELETE FROM statuses").rowcount:
                self._checkpoint()

    def close(self) -> None:
        with self._lock:
            try:
                if self.on_disk:
                    self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
            self._db.close()

    def _warn(self, message: str) -> None:
        now = time.monotonic()
        if now - self._warned_at > 60:  # once a minute, not once a person
            log.warning(message)
            self._warned_at = now

"""The durable local outbox: every check record is committed here before the gate opens.

SQLite in WAL mode with synchronous=FULL, because SD cards lose power mid-write and the records
are what contact tracing relies on. One row per record, keyed by its time-ordered id, so `pending`
hands them out oldest first; a row is deleted only when the service acknowledged its id, and with
`secure_delete` on, the deleted bytes are overwritten rather than left in free pages.

Nothing is dropped silently. The ways a record could be lost, and what happens instead:

- **The outbox grows past its caps** (`max_records` undelivered records, or the oldest older than
  `max_age_s`): records are still written; `health().at_cap` tells the pipeline to stop opening the
  gate by itself (staff check each person), and the alarm is logged and shown from
  `alarm_fraction` of either cap.
- **The disk refuses a write** (full, I/O error, locked): `add` raises `OutboxError`, so the gate
  does not open on a record that is not durable; the pipeline hands the record to `spill`, which
  keeps it in memory (at most `spill_max`), retries writing it on every later `add` and uploader
  pass, and lets the uploader deliver it straight from memory meanwhile. Only a record that finds
  the spill full is lost, and that is counted, logged as critical and shown.
- **The file is corrupt** (not a database, a failed `quick_check`, a malformed page at run time):
  it is moved aside with its -wal/-shm as `<name>.corrupt-<UTC time>` for a technician, every
  record still readable in it is copied into a new file, and the alarm says so. `sentinel outbox
  export --from` reads such a copy; `sentinel wipe` destroys it.
- **The -wal is damaged** (a bad sector, a torn page after a power cut): SQLite's own recovery
  stops at the first frame whose checksum or salt is wrong and silently drops every transaction
  after it, committed or not. So before SQLite touches the file, `wal_damage` checks every frame
  itself: a committed frame that is still intact *after* a broken one means committed records
  would vanish. Such a file is handled as corrupt (moved aside with its -wal, alarm, salvage).
  A torn tail with nothing valid after it is an unfinished transaction (its `add` never
  returned), which SQLite rightly discards; that is not damage.
- **SQLite cannot reach a record any more** (page 1 overwritten, a damaged b-tree page above
  intact leaves): salvage does not stop at what SQL can read. `scan_bodies` reads the raw bytes
  of the file and its -wal for record bodies (leaf page by leaf page, following overflow chains,
  and by searching the bytes for the JSON of a body), keeps those that validate as a record, one
  per id, and adds the ones SQL did not return. The scan may bring back a record already
  delivered (its old page image is still in the -wal): it is sent again and the service, which
  stores an id once, acknowledges it again: at least once, never lost.

Records the service refused for good (`rejected`: wrong device, wrong site, id conflict) are moved
to a `rejected` table, kept for audit and export, and never retried, for `rejected_retention_s`
(config `outbox.rejected_retention_days`, 30 days): purged when the outbox opens and at most once
an hour after that. The service's rejection text reaches the log only through
`sentinel.textsafe.printable` (no escape sequences, no forged log lines).

Delivered records leave no copy behind. `secure_delete` overwrites a deleted row in its page, but
the -wal still holds the page images from before the delete until a checkpoint copies the new ones
back and the -wal is truncated. So after acknowledgements the outbox runs
`PRAGMA wal_checkpoint(TRUNCATE)` when it has become empty, and otherwise at least every
`CHECKPOINT_EVERY_ACKS` deleted records (a few milliseconds; the kiosk's next commit starts a fresh
-wal). A checkpoint that a reader blocks is simply tried again at the next occasion.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from sentinel.contract import MAX_EXTRA_BYTES, AnyRecordIn
from sentinel.records import AnyRecord
from sentinel.state_files import FILE_MODE
from sentinel.textsafe import printable

log = logging.getLogger("sentinel.outbox")

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id TEXT PRIMARY KEY,          -- time-ordered UUID: id order is time order
    created_at TEXT NOT NULL,     -- the check's time, as recorded
    body TEXT NOT NULL            -- the record exactly as uploaded (RecordIn JSON)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rejected (
    id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    body TEXT NOT NULL,
    error TEXT NOT NULL,          -- the service's code: wrong_device | wrong_site | id_conflict | bad_request
    message TEXT NOT NULL,
    rejected_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
"""

#: SQLite result codes that mean "this file is damaged", as opposed to "this write failed".
_CORRUPT = {"SQLITE_CORRUPT", "SQLITE_NOTADB"}
#: how long a write waits for another process's write (`sentinel outbox flush` next to the kiosk)
BUSY_TIMEOUT_MS = 2000
#: keeps the -wal file from staying large (and holding old record pages) after a backlog drains
JOURNAL_SIZE_LIMIT = 4 * 1024 * 1024
#: delivered records after which the -wal is checkpointed and truncated even if the outbox is not empty
CHECKPOINT_EVERY_ACKS = 500
#: how often (seconds) set-aside records past their retention are purged while running
PURGE_INTERVAL_S = 3600.0
#: records whose after-commit values (`Outbox.wake`) are kept in memory until they are delivered
NOTES_MAX = 1000

#: alarm code → (zh-CN, en); the format fields come from `OutboxHealth`
ALARM_TEXT: dict[str, tuple[str, str]] = {
    "outbox_near_cap": (
        "待上传记录 {depth} 条，接近上限 {max_records} 条",
        "{depth} records waiting for upload, near the cap of {max_records}",
    ),
    "outbox_full": (
        "待上传记录已达上限 {max_records} 条：闸机不再自动开启，请人工核验",
        "Outbox cap of {max_records} records reached: gate no longer opens by itself, staff check everyone",
    ),
    "outbox_old_near_cap": (
        "最早的待上传记录已 {oldest_age_h:.0f} 小时，接近上限 {max_age_h:.0f} 小时",
        "Oldest record waiting {oldest_age_h:.0f} h, near the cap of {max_age_h:.0f} h",
    ),
    "outbox_overdue": (
        "记录超过 {max_age_h:.0f} 小时未上传：闸机不再自动开启，请人工核验",
        "Records undelivered for over {max_age_h:.0f} h: gate no longer opens by itself, staff check everyone",
    ),
    "outbox_unavailable": (
        "记录文件无法打开，记录暂存内存，请联系技术人员",
        "Cannot open the record file: records held in memory only, call a technician",
    ),
    "outbox_spilling": (
        "记录无法写入存储卡，{spilled} 条暂存内存，请联系技术人员",
        "Cannot write records to the SD card: {spilled} held in memory only, call a technician",
    ),
    "outbox_records_lost": (
        "{lost} 条记录无法保存，已丢失，请联系技术人员",
        "{lost} records could not be kept and are lost: call a technician",
    ),
    "outbox_corrupt_moved": (
        "记录文件损坏，已另存并新建（恢复 {salvaged} 条），请联系技术人员",
        "Record file was corrupt: moved aside and replaced ({salvaged} records recovered), call a technician",
    ),
    "outbox_rejected": (
        "{rejected} 条记录被服务拒收，已另存待查",
        "{rejected} records refused by the service, kept aside for audit",
    ),
}


class OutboxError(Exception):
    """A record could not be made durable; the caller must not act as if it were (no gate)."""


#: what a failing disk or a closed outbox raises
_FAILURES = (sqlite3.Error, OSError, OutboxError)


@dataclass(frozen=True)
class OutboxLimits:
    max_records: int = 200_000
    max_age_s: float = 72 * 3600.0
    alarm_fraction: float = 0.8
    spill_max: int = 10_000
    #: how long records the service refused are kept (audit, export) before they are purged
    rejected_retention_s: float = 30 * 86400.0


@dataclass(frozen=True)
class OutboxStats:
    pending: int
    oldest_created_at: str | None


@dataclass(frozen=True)
class OutboxHealth:
    """What a technician, the screen and the heartbeat need to know, without touching the disk."""

    depth: int  # records waiting for upload: on disk plus in memory
    spilled: int  # of which held only in memory (not durable)
    rejected: int  # refused by the service, set aside
    lost: int  # records that could not be kept at all, since start
    oldest_created_at: datetime | None
    oldest_age_s: float | None
    max_records: int
    max_age_s: float
    size_fraction: float
    age_fraction: float
    at_cap: str | None  # None, or the verdict reason while at a cap: "outbox_full" | "outbox_overdue"
    alarms: tuple[str, ...]  # codes of ALARM_TEXT, most serious first
    corrupt_copies: tuple[str, ...] = field(default_factory=tuple)  # moved aside by this process
    salvaged: int = 0

    @property
    def fraction(self) -> float:
        return max(self.size_fraction, self.age_fraction)

    @property
    def level(self) -> str:
        """ok | warning | critical: what colour a status light should be."""
        if self.at_cap or self.lost or self.spilled or {"outbox_corrupt_moved", "outbox_unavailable"} & set(self.alarms):
            return "critical"
        return "warning" if self.alarms else "ok"

    def messages(self, language: str = "en") -> list[str]:
        values = {
            "depth": self.depth,
            "spilled": self.spilled,
            "rejected": self.rejected,
            "lost": self.lost,
            "salvaged": self.salvaged,
            "max_records": self.max_records,
            "max_age_h": self.max_age_s / 3600,
            "oldest_age_h": (self.oldest_age_s or 0) / 3600,
        }
        return [ALARM_TEXT[a][0 if language == "zh-CN" else 1].format(**values) for a in self.alarms]

    def as_dict(self) -> dict[str, Any]:
        return {
            "depth": self.depth,
            "spilled": self.spilled,
            "rejected": self.rejected,
            "lost": self.lost,
            "oldest_created_at": self.oldest_created_at.isoformat() if self.oldest_created_at else None,
            "oldest_age_s": None if self.oldest_age_s is None else round(self.oldest_age_s, 3),
            "max_records": self.max_records,
            "max_age_s": self.max_age_s,
            "fraction": round(self.fraction, 4),
            "level": self.level,
            "at_cap": self.at_cap,
            "alarms": list(self.alarms),
            "corrupt_copies": list(self.corrupt_copies),
            "salvaged": self.salvaged,
        }


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _errorname(e: sqlite3.Error) -> str:
    return getattr(e, "sqlite_errorname", "") or ""


def is_corruption(e: BaseException) -> bool:
    if not isinstance(e, sqlite3.DatabaseError):
        return False
    if _errorname(e) in _CORRUPT:
        return True
    text = str(e).lower()
    return "malformed" in text or "not a database" in text


def sidecars(path: Path) -> list[Path]:
    """The files SQLite keeps next to a database."""
    return [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal")]


def corrupt_copies(path: Path) -> list[Path]:
    """Copies of a corrupt outbox moved aside next to `path` (main files, not their sidecars)."""
    prefix = path.name + ".corrupt-"
    if not path.parent.is_dir():
        return []
    return sorted(
        p for p in path.parent.iterdir() if p.name.startswith(prefix) and not p.name.endswith(("-wal", "-shm", "-journal"))
    )


def build_health(
    limits: OutboxLimits,
    now: datetime,
    *,
    depth: int,
    spilled: int = 0,
    rejected: int = 0,
    lost: int = 0,
    oldest: datetime | None = None,
    corrupt: tuple[str, ...] = (),
    salvaged: int = 0,
    unavailable: bool = False,
) -> OutboxHealth:
    age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else None
    size_fraction = depth / limits.max_records
    age_fraction = (age or 0.0) / limits.max_age_s
    alarms: list[str] = []
    at_cap = None
    if lost:
        alarms.append("outbox_records_lost")
    if unavailable:
        alarms.append("outbox_unavailable")
    if spilled:
        alarms.append("outbox_spilling")
    if size_fraction >= 1:
        alarms.append("outbox_full")
        at_cap = "outbox_full"
    if age_fraction >= 1:
        alarms.append("outbox_overdue")
        at_cap = at_cap or "outbox_overdue"
    if corrupt:
        alarms.append("outbox_corrupt_moved")
    if limits.alarm_fraction <= size_fraction < 1:
        alarms.append("outbox_near_cap")
    if limits.alarm_fraction <= age_fraction < 1:
        alarms.append("outbox_old_near_cap")
    if rejected:
        alarms.append("outbox_rejected")
    return OutboxHealth(
        depth=depth,
        spilled=spilled,
        rejected=rejected,
        lost=lost,
        oldest_created_at=oldest,
        oldest_age_s=age,
        max_records=limits.max_records,
        max_age_s=limits.max_age_s,
        size_fraction=size_fraction,
        age_fraction=age_fraction,
        at_cap=at_cap,
        alarms=tuple(alarms),
        corrupt_copies=corrupt,
        salvaged=salvaged,
    )


@dataclass(frozen=True)
class Inspection:
    """What `sentinel outbox status` reads from a file, without changing it (the kiosk may be running)."""

    path: str
    exists: bool
    size_bytes: int  # the file and its -wal
    health: OutboxHealth | None  # None when the file cannot be read
    meta: dict[str, str]
    error: str | None


def inspect(path: Path | str, limits: OutboxLimits = OutboxLimits(), now: datetime | None = None) -> Inspection:
    path = Path(path)
    now = now or datetime.now(UTC)
    copies = tuple(str(p) for p in corrupt_copies(path))
    size = sum(p.stat().st_size for p in (path, *sidecars(path)) if p.exists())
    if not path.exists():
        health = build_health(limits, now, depth=0, corrupt=copies)
        return Inspection(str(path), False, 0, health, {}, None)
    try:
        db = sqlite3.connect(readonly_uri(path), uri=True, isolation_level=None)
    except sqlite3.Error as e:
        return Inspection(str(path), True, size, None, {}, str(e))
    try:
        db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        depth = db.execute("SELECT COUNT(*) FROM records").fetchone()[0]
        row = db.execute("SELECT created_at FROM records ORDER BY id LIMIT 1").fetchone()
        rejected = db.execute("SELECT COUNT(*) FROM rejected").fetchone()[0] if _has_table(db, "rejected") else 0
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall()) if _has_table(db, "meta") else {}
    except sqlite3.Error as e:
        return Inspection(str(path), True, size, None, {}, f"{e} (the kiosk moves a corrupt file aside when it next opens it)")
    finally:
        db.close()
    oldest = datetime.fromisoformat(row[0]) if row else None
    health = build_health(limits, now, depth=depth, rejected=rejected, oldest=oldest, corrupt=copies)
    return Inspection(str(path), True, size, health, meta, None)


def readonly_uri(path: Path | str) -> str:
    """A read-only SQLite URI for a path, whatever characters it holds."""
    return Path(path).resolve().as_uri() + "?mode=ro"


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def _looks_like_sqlite(path: Path) -> bool:
    """True for a missing or empty file (SQLite starts it) and for one with the SQLite header."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except FileNotFoundError:
        return True
    return head in (b"", b"SQLite format 3\x00")


class _Corrupt(Exception):
    pass


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

    def _connect(self) -> sqlite3.Connection:
        _create_owner_only(self.path)  # before SQLite, which would take the umask (0644 under sudo)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise sqlite3.OperationalError(f"journal_mode is {mode}, not wal")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA secure_delete=ON")
            db.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
            problems = [row[0] for row in db.execute("PRAGMA quick_check(5)")]
            if problems != ["ok"]:
                raise _Corrupt("; ".join(problems)[:300])
            db.executescript(_SCHEMA)
            if db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except BaseException:
            db.close()
            raise
        return db

    def _open(self) -> None:
        if not _looks_like_sqlite(self.path):
            # moved before SQLite touches it, so that not even its -wal is rewritten or removed
            self._replace_corrupt("file is not a database (no SQLite header)")
            self._recount()
            return
        # Also before SQLite touches it: its recovery would silently drop the committed frames
        # after a damaged one, and the next write would overwrite them. Only the owner checks (a
        # second process next to a running kiosk may see a frame half written).
        damage = wal_damage(self.path) if self._recover else None
        if damage:
            self._replace_corrupt(damage)
            self._recount()
            return
        try:
            self._db = self._connect()
        except _Corrupt as e:
            self._replace_corrupt(str(e))
        except sqlite3.DatabaseError as e:
            if not is_corruption(e):
                raise
            self._replace_corrupt(str(e))
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
        """Move the damaged file aside, start a new one, and copy over what can still be read."""
        if not self._recover:
            raise OutboxError(f"outbox {self.path} is corrupt ({why}); the kiosk moves it aside when it next opens it")
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
            self._db = None
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        # Sidecars keep their pairing (`<copy>-wal`), so SQLite reads the copy with its WAL. They
        # go first: cut short between the two, a -wal must not be left for a new, empty file.
        for src, dst in zip([*sidecars(self.path), self.path], [*sidecars(aside), aside], strict=True):
            if src.exists():
                src.rename(dst)
        self._moved.append(str(aside))
        log.critical("outbox %s is corrupt (%s): moved aside to %s, starting a new one", self.path, why, aside.name)
        self._db = self._connect()
        salvaged = 0
        try:
            batch: list[tuple[str, str, str]] = []
            for record_id, created_at, body in iter_file_rows(aside, scan=True):
                batch.append((record_id, created_at, body))
                if len(batch) >= 1000:
                    salvaged += self._insert_rows(batch)
                    batch = []
            salvaged += self._insert_rows(batch)
        except sqlite3.Error as e:  # e.g. the disk is full: the copy is still there for a technician
            log.error("could not copy records out of %s: %s", aside.name, e)
        self._salvaged += salvaged
        log.critical("recovered %d records from %s; the copy is kept for a technician", salvaged, aside.name)

    def _insert_rows(self, rows: list[tuple[str, str, str]]) -> int:
        if not rows:
            return 0
        assert self._db is not None
        before = self._db.total_changes
        with _transaction(self._db):
            self._db.executemany("INSERT OR IGNORE INTO records (id, created_at, body) VALUES (?, ?, ?)", rows)
        return self._db.total_changes - before

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
                with _transaction(db):
                    db.executemany("DELETE FROM records WHERE id = ?", [(i,) for i in ids])
                    deleted = db.total_changes - before
                    if delivered_at is not None:
                        _put_meta(db, {"last_success_at": _utc_text(delivered_at)})
                        _add_meta(db, "delivered_total", deleted + from_memory)
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
        cutoff = _utc_text(now - timedelta(seconds=self.limits.rejected_retention_s))
        with self._lock:
            self._purged_at = now

            def purge(db: sqlite3.Connection) -> int:
                with _transaction(db):
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
        at_text = _utc_text(at or self._wall())
        with self._lock:
            spilled = [(self._spill.pop(i), e, m) for i, e, m in rejections if i in self._spill]

            def move(db: sqlite3.Connection) -> int:
                moved = 0
                with _transaction(db):
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
                    with _transaction(db):
                        _put_meta(db, {"last_success_at": _utc_text(at)})
                        _add_meta(db, "delivered_total", delivered)

                self._guarded(put)
            except _FAILURES as e:
                log.debug("could not keep the last upload success: %s", e)

    def note_error(self, error: str, at: datetime | None = None) -> None:
        """Keep the last upload error (for `sentinel outbox status` in another process). Best effort."""
        with self._lock:
            try:
                self._guarded(lambda db: _put_meta(db, {"last_error": error[:300], "last_error_at": _utc_text(at or self._wall())}))
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
        current = health.alarms
        if current == self._last_alarms:
            return health
        texts = dict(zip(current, health.messages("en"), strict=True))
        for alarm in current:
            if alarm not in self._last_alarms:
                level = logging.WARNING if alarm in ("outbox_near_cap", "outbox_old_near_cap", "outbox_rejected") else logging.ERROR
                log.log(level, "ALARM %s: %s", alarm, texts[alarm])
        for alarm in self._last_alarms:
            if alarm not in current:
                log.warning("alarm cleared: %s", alarm)
        self._last_alarms = current
        return health

    def stats(self) -> OutboxStats:
        with self._lock:
            depth = self._depth + len(self._spill)
            return OutboxStats(pending=depth, oldest_created_at=self._oldest.isoformat() if self._oldest else None)

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

    def __enter__(self) -> "Outbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _transaction:
    """BEGIN IMMEDIATE … COMMIT on an autocommit connection; ROLLBACK on any error."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.db.execute("COMMIT")
        else:
            try:
                self.db.execute("ROLLBACK")
            except sqlite3.Error:
                pass


def _put_meta(db: sqlite3.Connection, values: dict[str, str]) -> None:
    db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", list(values.items()))


def _add_meta(db: sqlite3.Connection, key: str, n: int) -> None:
    db.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + ?",
        (key, str(n), n),
    )


# --- reading a file that may be damaged, for salvage and `sentinel outbox export` ---------------


def iter_file_rows(path: Path, table: str = "records", *, scan: bool | None = None) -> Iterator[tuple[str, str, str]]:
    """(id, created_at, body) of every valid record that can still be read from an outbox file.
    Reads forwards until the first damaged page, then backwards from the end to the same point, so
    one bad page costs only the rows on it; those come in id order. Then, for `records`, the raw
    bytes of the file and its -wal are scanned for bodies SQL did not reach (`scan_bodies`), and
    those follow, in id order: with `scan=True` always (salvage of a file known to be damaged),
    with `scan=None` when the file shows damage (SQLite cannot open it or stopped on a damaged
    page, no SQLite header, or a damaged -wal), never with `scan=False`. Ids the file's `rejected`
    table holds are not brought back."""
    if table not in ("records", "rejected"):
        raise ValueError(table)
    path = Path(path)
    seen: set[str] = set()
    damaged = False
    try:
        db = sqlite3.connect(readonly_uri(path), uri=True, isolation_level=None)
    except sqlite3.Error as e:
        log.error("cannot open %s: %s", path, e)
        db = None
        damaged = True
    if db is not None:
        try:
            for order in ("ASC", "DESC"):
                try:
                    cursor = db.execute(f"SELECT id, created_at, body FROM {table} ORDER BY id {order}")  # noqa: S608 - fixed names
                    for record_id, created_at, body in cursor:
                        if record_id in seen:
                            break  # the backward pass met the forward pass
                        seen.add(record_id)
                        if _valid(body):
                            yield record_id, created_at, body
                except sqlite3.DatabaseError as e:
                    damaged = True
                    log.warning("%s: reading %s %s stopped: %s", path.name, table, "forwards" if order == "ASC" else "backwards", e)
                    continue
                if order == "ASC":
                    break  # the forward pass read everything
        finally:
            db.close()
    if table != "records" or scan is False:
        return
    if scan is None and not (damaged or not _looks_like_sqlite(path) or wal_damage(path)):
        return
    refused = set(_readable_ids(path, "rejected"))
    extra = sorted(row for row in scan_bodies(path) if row[0] not in seen and row[0] not in refused)
    if extra:
        log.warning("%s: %d records SQLite could not reach were recovered from the raw bytes", path.name, len(extra))
    yield from extra


def _readable_ids(path: Path, table: str) -> list[str]:
    """The ids SQL can still read from `table` of a possibly damaged file (as many as it can)."""
    try:
        db = sqlite3.connect(readonly_uri(path), uri=True, isolation_level=None)
    except sqlite3.Error:
        return []
    ids: list[str] = []
    try:
        for record_id, in db.execute(f"SELECT id FROM {table}"):  # noqa: S608 - fixed names
            ids.append(record_id)
    except sqlite3.Error:
        pass
    finally:
        db.close()
    return ids


# --- raw bytes: record bodies SQLite cannot reach, and a -wal SQLite would silently cut short -----

#: how a stored body starts: a check record (`RecordIn`, id first), or a vehicle session, an
#: amendment or an event (kind first)
_BODY_STARTS = (b'{"id":"', b'{"kind":"vehicle_session"', b'{"kind":"amendment"', b'{"kind":"event"')
#: the longest body looked for in one piece (a check record is about 400 bytes)
_BODY_MAX = 16 * 1024


def scan_bodies(path: Path | str) -> Iterator[tuple[str, str, str]]:
    """(id, created_at, body) of every well-formed record body found in the raw bytes of the file
    at `path` and its -wal, each id once. Two ways, because either can fail alone:

    - every page image (the file's pages and every -wal frame, damaged or not) that holds rows (a
      b-tree leaf, or an index b-tree's interior page) is read cell by cell, following a cell's
      overflow chain through the newest image of each page, so a body larger than one page's
      share (a vehicle session) comes back too; this needs neither page 1 nor the pages that
      point to the one being read;
    - the bytes are searched for the start of a body and parsed from there, for pages whose
      header or cell pointers are damaged.

    A body counts only if it is valid UTF-8, one JSON object, and validates as a record
    (`AnyRecordIn`): a damaged body is left out rather than brought back altered."""
    path = Path(path)
    files = []
    for file in (path, Path(f"{path}-wal")):
        try:
            files.append(file.read_bytes())
        except FileNotFoundError:
            files.append(b"")
        except OSError as e:
            log.error("cannot read %s for record bodies: %s", file, e)
            files.append(b"")
    db, wal = files
    found: set[str] = set()
    for body in (*_btree_bodies(db, wal), *_json_bodies(db), *_json_bodies(wal)):
        try:
            model = _ANY_RECORD.validate_json(body)
        except (ValidationError, ValueError):
            continue
        if model.id not in found:
            found.add(model.id)
            yield model.id, model.created_at.isoformat(), body


def _json_bodies(data: bytes) -> Iterator[str]:
    decoder = json.JSONDecoder()
    starts = sorted(i for marker in _BODY_STARTS for i in _find_all(data, marker))
    for n, pos in enumerate(starts):
        # usually the body ends before the next one starts; if not, try a longer window
        ends = [pos + _BODY_MAX]
        if n + 1 < len(starts) and starts[n + 1] - pos < _BODY_MAX:
            ends.insert(0, starts[n + 1])
        for end in ends:
            body = _json_object_at(decoder, data, pos, end)
            if body is not None:
                yield body
                break


def _page_size(db: bytes, wal: bytes) -> int:
    if db[:16] == b"SQLite format 3\x00" and len(db) >= 18:
        size = struct.unpack_from(">H", db, 16)[0]
        size = 65536 if size == 1 else size
        if 512 <= size <= 65536 and size & (size - 1) == 0:
            return size
    if len(wal) >= _WAL_HEADER.size:
        magic, _v, size, *_rest = _WAL_HEADER.unpack_from(wal)
        if magic in _WAL_MAGIC and 512 <= size <= 65536 and size & (size - 1) == 0:
            return size
    return 4096  # what SQLite uses unless told otherwise (the outbox never tells it)


def _btree_bodies(db: bytes, wal: bytes) -> Iterator[str]:
    """The third column (`body`) of every cell of every b-tree page image that holds rows, as text."""
    size = _page_size(db, wal)
    images: list[tuple[int, bytes]] = [(n + 1, db[n * size:(n + 1) * size]) for n in range(len(db) // size)]
    frame = _WAL_FRAME_HEADER.size + size
    if len(wal) >= _WAL_HEADER.size:
        for at in range(_WAL_HEADER.size, len(wal) - frame + 1, frame):
            number = struct.unpack_from(">I", wal, at)[0]
            images.append((number, wal[at + _WAL_FRAME_HEADER.size:at + frame]))
    newest = dict(images)  # later -wal frames are newer versions of a page
    for number, image in images:
        try:
            yield from _leaf_bodies(number, image, newest, size)
        except (IndexError, struct.error, ValueError):
            continue  # a damaged page: the JSON search still looks at its bytes


def _leaf_bodies(number: int, page: bytes, pages: dict[int, bytes], size: int) -> Iterator[str]:
    """The bodies in one page image: a leaf, or an index page's interior cells."""
    head = 100 if number == 1 else 0
    kind = page[head]
    # index pages (WITHOUT ROWID tables) keep whole rows in interior cells too; table leaves
    if kind not in (0x02, 0x0A, 0x0D):
        return
    cells = struct.unpack_from(">H", page, head + 3)[0]
    pointers = head + (12 if kind == 0x02 else 8)
    usable = size  # the outbox reserves no bytes at the end of a page
    if kind == 0x0D:
        most = usable - 35
    else:
        most = (usable - 12) * 64 // 255 - 23
    least = (usable - 12) * 32 // 255 - 23
    for i in range(cells):
        at = struct.unpack_from(">H", page, pointers + 2 * i)[0]
        if not pointers <= at < size:
            continue
        if kind == 0x02:
            at += 4  # the left child's page number
        total, at = _varint(page, at)
        if kind == 0x0D:
            _rowid, at = _varint(page, at)
        if total <= most:
            payload = page[at:at + total]
        else:
            local = least + (total - least) % (usable - 4)
            local = local if local <= most else least
            payload = bytearray(page[at:at + local])
            next_page = struct.unpack_from(">I", page, at + local)[0]
            hops = 0
            while len(payload) < total and next_page and hops <= total // (usable - 4) + 1:
                overflow = pages.get(next_page)
                if overflow is None:
                    break
                next_page = struct.unpack_from(">I", overflow, 0)[0]
                payload += overflow[4:usable]
                hops += 1
            payload = bytes(payload[:total])
            if len(payload) < total:
                continue
        body = _third_text_column(payload)
        if body is not None:
            yield body


def _third_text_column(payload: bytes) -> str | None:
    """The third column of an SQLite record, when the first three are all text."""
    header_size, at = _varint(payload, 0)
    lengths = []
    while at < header_size and len(lengths) < 3:
        serial, at = _varint(payload, at)
        if serial < 13 or serial % 2 == 0:
            return None  # not text
        lengths.append((serial - 13) // 2)
    if len(lengths) < 3:
        return None
    start = header_size + lengths[0] + lengths[1]
    raw = payload[start:start + lengths[2]]
    if len(raw) < lengths[2]:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _varint(data: bytes, at: int) -> tuple[int, int]:
    """SQLite's variable-length integer at `at`: (value, offset after it)."""
    value = 0
    for i in range(8):
        byte = data[at + i]
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, at + i + 1
    return (value << 8) | data[at + 8], at + 9


def _find_all(data: bytes, marker: bytes) -> Iterator[int]:
    i = data.find(marker)
    while i >= 0:
        yield i
        i = data.find(marker, i + 1)


def _json_object_at(decoder: json.JSONDecoder, data: bytes, start: int, end: int) -> str | None:
    text = data[start:end].decode("utf-8", "surrogateescape")  # a cut character at the end is harmless
    try:
        _obj, length = decoder.raw_decode(text)
    except ValueError:
        return None
    body = text[:length]
    try:
        body.encode("utf-8")  # strict: a byte that is not UTF-8 inside the body means damage
    except UnicodeEncodeError:
        return None
    return body


_WAL_HEADER = struct.Struct(">IIIIIIII")  # magic, version, page size, checkpoint no, salt-1, salt-2, checksum-1, checksum-2
_WAL_FRAME_HEADER = struct.Struct(">IIIIII")  # page no, db size after commit (0: not a commit), salt-1, salt-2, checksum-1, checksum-2
_WAL_MAGIC = (0x377F0682, 0x377F0683)  # checksums over little- / big-endian words
_WAL_VERSION = 3007000


def wal_damage(path: Path | str) -> str | None:
    """Why the -wal next to `path` would lose committed transactions, or None when it would not.

    SQLite replays a -wal frame by frame and stops at the first frame whose salt does not match
    the header or whose running checksum is wrong, dropping every later frame. That is right for
    a torn tail (a transaction still being written when the process died; its commit never
    returned) and wrong for damage in the middle: then intact committed frames follow. Each frame's
    checksum is seeded by the one stored in the frame before it, so a frame after a broken one can
    still be checked on its own; an intact commit frame after the end of SQLite's replay is damage.
    A header that is not a valid WAL header, with frames after it, is damage too (SQLite would
    ignore the whole file). Reads only; the layout is SQLite's documented WAL format.

    Limits: damage to the very last committed frame looks exactly like a torn tail and is not
    reported (one transaction, the newest, is lost as SQLite would lose it). A power cut during
    the commit's fsync can, on a card that reorders writes, leave that unfinished transaction's
    commit frame intact after a torn one: that is reported as damage (fail closed: a copy, the
    alarm, and its record salvaged although its `add` never returned, so no gate opened for it)."""
    wal = Path(str(path) + "-wal")
    try:
        data = wal.read_bytes()
    except FileNotFoundError:
        return None
    if len(data) < _WAL_HEADER.size:
        return None  # empty, or a header cut short before any frame: nothing was committed in it
    magic, version, page_size, _ckpt, salt1, salt2, c1, c2 = _WAL_HEADER.unpack_from(data)
    frame_size = _WAL_FRAME_HEADER.size + page_size
    valid_page_size = 512 <= page_size <= 65536 and page_size & (page_size - 1) == 0
    if magic not in _WAL_MAGIC or version != _WAL_VERSION or not valid_page_size:
        if len(data) >= _WAL_HEADER.size + _WAL_FRAME_HEADER.size + 512:
            return f"the -wal header is damaged ({len(data) - _WAL_HEADER.size} bytes of frames SQLite would ignore)"
        return None
    big = magic & 1
    if _wal_checksum(data[:24], (0, 0), big) != (c1, c2):
        return f"the -wal header checksum is wrong ({len(data) - _WAL_HEADER.size} bytes of frames SQLite would ignore)"
    count = (len(data) - _WAL_HEADER.size) // frame_size
    seeds, sums, salts, commits = [], [], [], []
    seed = (c1, c2)
    for i in range(count):
        at = _WAL_HEADER.size + i * frame_size
        _page, commit, s1, s2, f1, f2 = _WAL_FRAME_HEADER.unpack_from(data, at)
        seeds.append(seed)
        sums.append((f1, f2))
        salts.append((s1, s2) == (salt1, salt2))
        commits.append(commit != 0)
        seed = (f1, f2)
    checks = _wal_frame_checksums(data, count, page_size, seeds, big)
    intact = [salts[i] and checks[i] == sums[i] for i in range(count)]
    end = next((i for i, ok in enumerate(intact) if not ok), count)  # where SQLite's replay stops
    lost = [i for i in range(end + 1, count) if intact[i] and commits[i]]
    if lost:
        return (
            f"-wal frame {end + 1} of {count} is damaged and {len(lost)} intact committed "
            f"transaction{'s' if len(lost) != 1 else ''} after it would be dropped"
        )
    return None


def _wal_checksum(data: bytes, seed: tuple[int, int], big: int) -> tuple[int, int]:
    """SQLite's WAL checksum, word by word (the reference `_wal_frame_checksums` is checked against)."""
    s0, s1 = seed
    words = struct.unpack((">" if big else "<") + f"{len(data) // 4}I", data)
    for i in range(0, len(words), 2):
        s0 = (s0 + words[i] + s1) & 0xFFFFFFFF
        s1 = (s1 + words[i + 1] + s0) & 0xFFFFFFFF
    return s0, s1


def _wal_frame_checksums(data: bytes, count: int, page_size: int, seeds: list[tuple[int, int]], big: int) -> list[tuple[int, int]]:
    """The checksum of each frame (its header's first 8 bytes, then its page) from its seed, for
    all frames at once. The running sum is linear: one step maps (s0, s1) to M·(s0, s1) + (x0,
    x0 + x1) with M = [[1, 1], [1, 2]], so after n steps it is Mⁿ·seed + Σ Mⁿ⁻¹⁻ᵏ·uₖ, all mod
    2³² (uint64 arithmetic wraps mod 2⁶⁴, which keeps the low 32 bits right). A Python loop over
    a few thousand frames would cost seconds at start on a Pi."""
    import numpy as np

    if count == 0:
        return []
    frame_size = _WAL_FRAME_HEADER.size + page_size
    pairs = (8 + page_size) // 8
    powers = _matrix_powers(pairs)  # powers[j] = Mʲ mod 2³², shape (pairs + 1, 2, 2)
    q = powers[pairs - 1 :: -1][:pairs]  # q[k] = M^(pairs-1-k)
    dtype = np.dtype(">u4" if big else "<u4")
    raw = np.frombuffer(data, dtype=np.uint8, count=count * frame_size, offset=_WAL_HEADER.size).reshape(count, frame_size)
    out: list[tuple[int, int]] = []
    for lo in range(0, count, 256):  # bounded memory for a large -wal
        block = raw[lo : lo + 256]
        body = np.concatenate([block[:, :8], block[:, _WAL_FRAME_HEADER.size :]], axis=1)
        words = np.ascontiguousarray(body).view(dtype).astype(np.uint64).reshape(len(block), pairs, 2)
        u0 = words[:, :, 0]
        u1 = words[:, :, 0] + words[:, :, 1]
        d0 = u0 @ q[:, 0, 0] + u1 @ q[:, 0, 1]
        d1 = u0 @ q[:, 1, 0] + u1 @ q[:, 1, 1]
        seed = np.array(seeds[lo : lo + 256], dtype=np.uint64)
        m = powers[pairs]
        s0 = (m[0, 0] * seed[:, 0] + m[0, 1] * seed[:, 1] + d0) & 0xFFFFFFFF
        s1 = (m[1, 0] * seed[:, 0] + m[1, 1] * seed[:, 1] + d1) & 0xFFFFFFFF
        out.extend(zip(s0.tolist(), s1.tolist(), strict=True))
    return out


def _matrix_powers(n: int):
    import numpy as np

    powers = np.zeros((n + 1, 2, 2), dtype=np.uint64)
    a, b, c, d = 1, 0, 0, 1
    for j in range(n + 1):
        powers[j] = ((a, b), (c, d))
        # (M^j)·M with M = [[1, 1], [1, 2]]
        a, b, c, d = (a + b) & 0xFFFFFFFF, (a + 2 * b) & 0xFFFFFFFF, (c + d) & 0xFFFFFFFF, (c + 2 * d) & 0xFFFFFFFF
    return powers


def _valid(body: str) -> bool:
    """A check record or a vehicle session (what the uploader may send), as the contract has it."""
    try:
        _ANY_RECORD.validate_json(body)
    except (ValidationError, ValueError):
        return False
    return True


_ANY_RECORD: TypeAdapter = TypeAdapter(AnyRecordIn)


def _create_owner_only(path: Path) -> None:
    """Create the outbox file 0600 if it does not exist yet, whatever the umask (a technician's
    `sudo sentinel outbox flush` would otherwise leave it 0644); SQLite gives its -wal and -shm the
    main file's mode. Never through a symlink. An existing file is left as it is."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)

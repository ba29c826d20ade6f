"""The outbox's SQLite file: its schema and pragmas, opening it, transactions, the meta table, and
moving a damaged file aside. `store.Outbox` holds the one connection and the lock.

WAL mode with synchronous=FULL (a commit is on the disk before `Outbox.add` returns) and
secure_delete (a delivered record's bytes are overwritten). Failure: `connect` raises `Corrupt`
when SQLite's quick check finds damage and sqlite3.Error when the file cannot be opened (a full
or read-only disk); the caller moves a corrupt file aside (`move_aside`) and salvages it.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from sentinel.outbox.files import BUSY_TIMEOUT_MS, _create_owner_only, _looks_like_sqlite, is_corruption, iter_file_rows, sidecars
from sentinel.outbox.salvage import wal_damage

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
#: keeps the -wal file from staying large (and holding old record pages) after a backlog drains
JOURNAL_SIZE_LIMIT = 4 * 1024 * 1024


class OutboxError(Exception):
    """A record could not be made durable; the caller must not act as if it were (no gate)."""


class Corrupt(Exception):
    """SQLite's quick check found damage; the message says what."""


def utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def connect(path: Path) -> sqlite3.Connection:
    """Open (or create, owner-only) the outbox file with its pragmas and schema. Raises `Corrupt`
    when SQLite's quick check finds damage, sqlite3.Error when the file cannot be opened."""
    _create_owner_only(path)  # before SQLite, which would take the umask (0644 under sudo)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
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
            raise Corrupt("; ".join(problems)[:300])
        db.executescript(_SCHEMA)
        if db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    except BaseException:
        db.close()
        raise
    return db


class transaction:
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


def put_meta(db: sqlite3.Connection, values: dict[str, str]) -> None:
    db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", list(values.items()))


def add_meta(db: sqlite3.Connection, key: str, n: int) -> None:
    db.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + ?",
        (key, str(n), n),
    )


def insert_rows(db: sqlite3.Connection, rows: list[tuple[str, str, str]]) -> int:
    """Insert (id, created_at, body) rows in one transaction, keeping rows already there; how many were new."""
    if not rows:
        return 0
    before = db.total_changes
    with transaction(db):
        db.executemany("INSERT OR IGNORE INTO records (id, created_at, body) VALUES (?, ?, ?)", rows)
    return db.total_changes - before


def move_aside(path: Path) -> Path:
    """Rename a damaged file (and its sidecars) to `<name>.corrupt-<UTC time>`; the new name."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    # Sidecars keep their pairing (`<copy>-wal`), so SQLite reads the copy with its WAL. They
    # go first: cut short between the two, a -wal must not be left for a new, empty file.
    for src, dst in zip([*sidecars(path), path], [*sidecars(aside), aside], strict=True):
        if src.exists():
            src.rename(dst)
    return aside


def open_file(path: Path, *, recover: bool, moved: list[str]) -> tuple[sqlite3.Connection, int]:
    """Open the outbox file; a damaged one is moved aside first (`replace_corrupt`). Returns the
    connection and how many records were salvaged. sqlite3.Error (not damage) goes to the caller."""
    if not _looks_like_sqlite(path):
        # moved before SQLite touches it, so that not even its -wal is rewritten or removed
        return replace_corrupt(path, "file is not a database (no SQLite header)", recover=recover, moved=moved)
    # Also before SQLite touches it: its recovery would silently drop the committed frames after a
    # damaged one, and the next write would overwrite them. Only the owner checks (a second
    # process next to a running kiosk may see a frame half written).
    damage = wal_damage(path) if recover else None
    if damage:
        return replace_corrupt(path, damage, recover=recover, moved=moved)
    try:
        return connect(path), 0
    except Corrupt as e:
        return replace_corrupt(path, str(e), recover=recover, moved=moved)
    except sqlite3.DatabaseError as e:
        if not is_corruption(e):
            raise
        return replace_corrupt(path, str(e), recover=recover, moved=moved)


def replace_corrupt(path: Path, why: str, *, recover: bool, moved: list[str]) -> tuple[sqlite3.Connection, int]:
    """Move the damaged file aside (its new name appended to `moved`), start a new one, and copy
    over what can still be read. `recover=False` (a second process): OutboxError instead."""
    if not recover:
        raise OutboxError(f"outbox {path} is corrupt ({why}); the kiosk moves it aside when it next opens it")
    aside = move_aside(path)
    moved.append(str(aside))
    log.critical("outbox %s is corrupt (%s): moved aside to %s, starting a new one", path, why, aside.name)
    db = connect(path)
    salvaged = 0
    try:
        batch: list[tuple[str, str, str]] = []
        for record_id, created_at, body in iter_file_rows(aside, scan=True):
            batch.append((record_id, created_at, body))
            if len(batch) >= 1000:
                salvaged += insert_rows(db, batch)
                batch = []
        salvaged += insert_rows(db, batch)
    except sqlite3.Error as e:  # e.g. the disk is full: the copy is still there for a technician
        log.error("could not copy records out of %s: %s", aside.name, e)
    log.critical("recovered %d records from %s; the copy is kept for a technician", salvaged, aside.name)
    return db, salvaged

"""The outbox file as a file: its sidecars and corrupt copies, a read-only inspection for
`sentinel outbox status`, and salvage that reaches records SQL can no longer read (raw page scan,
-wal frame checks). Everything here only reads; the store (`sentinel.outbox.store`) decides what
to move aside. How each kind of damage is handled is told in `sentinel/outbox/__init__.py`.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sentinel.outbox.health import OutboxHealth, OutboxLimits, build_health
from sentinel.outbox.salvage import _valid, scan_bodies, wal_damage
from sentinel.state_files import FILE_MODE

log = logging.getLogger("sentinel.outbox")

#: SQLite result codes that mean "this file is damaged", as opposed to "this write failed".
_CORRUPT = {"SQLITE_CORRUPT", "SQLITE_NOTADB"}
#: how long a write waits for another process's write (`sentinel outbox flush` next to the kiosk)
BUSY_TIMEOUT_MS = 2000


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
                    cursor = db.execute(f"SELECT id, created_at, body FROM {table} ORDER BY id {order}")
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
        for record_id, in db.execute(f"SELECT id FROM {table}"):
            ids.append(record_id)
    except sqlite3.Error:
        pass
    finally:
        db.close()
    return ids


def _create_owner_only(path: Path) -> None:
    """Create the outbox file 0600 if it does not exist yet, whatever the umask (a technician's
    `sudo sentinel outbox flush` would otherwise leave it 0644); SQLite gives its -wal and -shm the
    main file's mode. Never through a symlink. An existing file is left as it is."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)

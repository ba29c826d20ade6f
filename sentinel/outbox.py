"""The durable local outbox: every check record is committed here before the gate opens.

SQLite in WAL mode with synchronous=FULL, because SD cards lose power mid-write and the records
are what contact tracing relies on. Records are JSON rows keyed by their time-ordered id, so
`pending` hands them out oldest first; they are deleted only when the service acknowledged them.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sentinel.records import Record

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    body TEXT NOT NULL
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class OutboxStats:
    pending: int
    oldest_created_at: str | None


class Outbox:
    """Thread-safe: the kiosk loop adds while the uploader reads and acknowledges."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def add(self, record: Record) -> None:
        """Returns only once the record is durable on disk."""
        body = record.model_dump_json()
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO records (id, created_at, body) VALUES (?, ?, ?)",
                (record.id, record.created_at.isoformat(), body),
            )

    def pending(self, limit: int = 100) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT body FROM records ORDER BY id LIMIT ?", (limit,)).fetchall()
        return [json.loads(body) for (body,) in rows]

    def acknowledge(self, ids: list[str]) -> int:
        with self._lock:
            cur = self._db.executemany("DELETE FROM records WHERE id = ?", [(i,) for i in ids])
            return cur.rowcount

    def stats(self) -> OutboxStats:
        with self._lock:
            count, oldest = self._db.execute("SELECT COUNT(*), MIN(created_at) FROM records").fetchone()
        return OutboxStats(pending=count, oldest_created_at=oldest)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "Outbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

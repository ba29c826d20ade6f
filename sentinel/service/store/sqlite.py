"""The default store: one SQLite file (standard library only).

One connection for changes, guarded by a lock, since FastAPI runs sync endpoints in a thread pool;
explicit transactions (BEGIN IMMEDIATE serialises writers, even across processes on one file); WAL,
so a technician can read the file while the server runs, and so that reads go on while a change
commits: each thread reads on a connection of its own, never waiting for the writer's lock (a
verify's two reads used to queue behind a record batch's fsync). The file holds personal data and
token hashes: it and its -wal/-shm files are made 0600 before SQLite writes anything into them.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sentinel.service.store.base import Conn, Store, is_postgres_url
from sentinel.service.store.schema import ADDED_COLUMNS

#: what SQLite may create next to the database file
_SIDE_FILES = ("", "-wal", "-shm", "-journal")


class SqliteStore(Store):
    DIALECT = "sqlite"
    _integrity = (sqlite3.IntegrityError,)

    @staticmethod
    def handles(db: str | Path) -> bool:
        return not is_postgres_url(db)

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.RLock()
        self._readers = threading.local()  # each thread's read connection (`_reader`)
        self._reader_conns: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()  # not the writer's: a thread's first read must not wait for a commit
        self._closed = False
        if self.path != ":memory:":
            # created owner-only before SQLite opens it: SQLite gives -wal/-shm the same mode
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            self._restrict()
        # isolation_level=None: transactions are explicit (_begin), so a multi-statement change such
        # as redeeming a binding code is one BEGIN IMMEDIATE ... COMMIT even across processes.
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=5.0)
        self._conn.row_factory = sqlite3.Row
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            # executescript commits as it goes; every migration is CREATE ... IF NOT EXISTS, so two
            # processes opening one new file at once both end up with the same schema
            self._migrate(Conn(self._conn), self._conn.executescript)
        self._restrict()

    def _add_columns(self, conn: Conn) -> None:
        """Files from before schema_migrations may lack columns added since the first release."""
        for table, column, kind in ADDED_COLUMNS:
            have = {row["name"] for row in conn.execute(f"PRAGMA table_info({table})").fetchall()}
            if column not in have:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def _restrict(self) -> None:
        """The database and SQLite's side files are the owner's only (0600)."""
        if self.path == ":memory:":
            return
        for suffix in _SIDE_FILES:
            try:
                os.chmod(self.path + suffix, 0o600)
            except FileNotFoundError:
                pass

    def close(self) -> None:
        with self._readers_lock:
            self._closed = True
            for reader in self._reader_conns:
                reader.close()
            self._reader_conns.clear()
        with self._lock:
            self._conn.close()

    @contextmanager
    def _begin(self) -> Iterator[Conn]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield Conn(self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _reader(self) -> sqlite3.Connection | None:
        """This thread's connection for reads (None for ":memory:", which only the writer's
        connection sees). Opened on the thread's first read; closed with the store."""
        if self.path == ":memory:":
            return None
        conn = getattr(self._readers, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=5.0)
            conn.row_factory = sqlite3.Row
            with self._readers_lock:
                if self._closed:
                    conn.close()
                    raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
                self._reader_conns.append(conn)
            self._readers.conn = conn
        return conn

    @contextmanager
    def _read(self) -> Iterator[Conn]:
        reader = self._reader()
        if reader is not None:
            yield Conn(reader)
            return
        with self._lock:
            yield Conn(self._conn)

    def _upsert_sql(self, table: str, columns: tuple[str, ...], key: str, replace: bool) -> str:
        # INSERT OR REPLACE, as before PostgreSQL came: a replaced person also frees the token,
        # ID number or face id another row held
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        return f"{verb} INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"

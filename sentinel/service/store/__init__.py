"""The reference service's state: one SQLite file (the default) or a PostgreSQL database.

One interface, `Store` (store/base.py, store/records.py: the SQL, written once), two
implementations chosen by what `--db` names (`open_store`): a path is `SqliteStore`
(store/sqlite.py, standard library only), a `postgresql://` URL is `PostgresStore`
(store/postgres.py, psycopg 3 and a connection pool: several service processes share one
database). The tables and their numbered migrations are store/schema.py; rows, errors and value
conversions store/rows.py.

Failures: a unique key taken is `Conflict`, a binding refused `BindError`, a database that cannot
be reached (PostgreSQL restarting) `StoreUnavailable` after rolling back: the service answers
that with a 503, never with a guess. Importing this package needs no database driver.

The database holds personal data (records, people) and token hashes: a SQLite file is made 0600
(a PostgreSQL database is the operator's to protect), and records older than the retention period
are purged (`purge_records`, on both).
"""

from __future__ import annotations

import re
from pathlib import Path

from sentinel.service.store.base import Store, is_postgres_url
from sentinel.service.store.postgres import (
    PostgresStore,  # psycopg itself only when a URL is opened
)
from sentinel.service.store.rows import (
    BindError,
    Conflict,
    DeviceRow,
    PersonRow,
    StoredBatch,
    StoreError,
    StoreUnavailable,
    normalise_id_number,
    utc_text,
)
from sentinel.service.store.sqlite import SqliteStore

__all__ = [
    "BindError", "Conflict", "DeviceRow", "PersonRow", "PostgresStore", "SqliteStore", "Store", "StoreError", "StoreUnavailable",
    "StoredBatch", "describe_db", "is_postgres_url", "normalise_id_number", "open_store", "utc_text",
]  # fmt: skip


def open_store(db: str | Path) -> Store:
    """The store `db` names: a `postgresql://` URL, else a SQLite file path (or ":memory:")."""
    return Store(db)


def describe_db(db: str | Path) -> str:
    """`db` for a log line: a URL without its password."""
    if not is_postgres_url(db):
        return str(db)
    return re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", str(db))

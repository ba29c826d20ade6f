"""The store's tables and their numbered migrations, the same SQL on SQLite and PostgreSQL.

Schema changes are `MIGRATIONS`: applied in order on open, each recorded in `schema_migrations`
(store/base.py `_migrate`). Append a new version; never edit an applied one, since a database
that has it will not run it again. Every statement is CREATE ... IF NOT EXISTS, so two processes
opening one new SQLite file at once end up with the same schema (PostgreSQL migrates under an
advisory lock instead).
"""

from __future__ import annotations

#: record kind (`contract.record_kind`) → its table; check records first and amendments last, so
#: that an amendment finds the check it amends when both come in one batch
KIND_TABLES = {"check": "records", "vehicle_session": "vehicle_sessions", "event": "events", "amendment": "amendments"}


def _uploaded_table(table: str, extra_columns: str = "") -> str:
    """What a device uploads: id, who and when, the record's JSON, and the uploading binding."""
    return (
        f"CREATE TABLE IF NOT EXISTS {table} (\n    id TEXT PRIMARY KEY,\n    device_id TEXT NOT NULL,\n    site_id TEXT NOT NULL,\n"
        f"{extra_columns}    created_at TEXT NOT NULL,\n    received_at TEXT NOT NULL,\n    body TEXT NOT NULL,\n    binding_id TEXT\n);\n"
    )


def _by(table: str, *indexes: tuple[str, str]) -> str:
    return "".join(f"CREATE INDEX IF NOT EXISTS {table}_by_{name} ON {table} ({columns});\n" for name, columns in indexes)


_SCHEMA_1 = (
    """
CREATE TABLE IF NOT EXISTS sites (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    address TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS devices (
    id TEXT PRIMARY KEY,
    site_id TEXT NOT NULL REFERENCES sites(id),
    token_hash TEXT NOT NULL UNIQUE,
    revoked INTEGER NOT NULL DEFAULT 0,
    bound_at TEXT NOT NULL,
    last_heartbeat_at TEXT,
    last_heartbeat TEXT,
    binding_id TEXT,
    rebind_site_id TEXT
);
CREATE TABLE IF NOT EXISTS binding_codes (
    code_hash TEXT PRIMARY KEY,
    site_id TEXT NOT NULL REFERENCES sites(id),
    expires_at TEXT NOT NULL,
    used INTEGER NOT NULL DEFAULT 0,
    used_by TEXT
);
CREATE TABLE IF NOT EXISTS people (
    person_id TEXT PRIMARY KEY,
    token TEXT UNIQUE,
    id_number TEXT UNIQUE,
    face_id TEXT UNIQUE,
    name TEXT NOT NULL,
    colour TEXT NOT NULL CHECK (colour IN ('green', 'yellow', 'red')),
    code_expires_at TEXT,
    nat_result TEXT,
    nat_sampled_at TEXT,
    antigen TEXT,
    doses INTEGER NOT NULL DEFAULT 0,
    face_site_id TEXT,
    face_encoding TEXT,
    updated_at TEXT NOT NULL
);
"""
    + _uploaded_table("records")
    + _by("records", ("device", "device_id, id"), ("site", "site_id, id"))
    # vehicle sessions of handheld units, uploaded with the records but kept apart from them, so
    # that a vehicle is never counted as a person checked
    + _uploaded_table("vehicle_sessions")
    + _by("vehicle_sessions", ("device", "device_id, id"), ("site", "site_id, id"))
    # amendments: what became of a passed check at the gate; shown on the check record they amend
    # (which may arrive later: until then the amendment is pending)
    + _uploaded_table("amendments", "    record_id TEXT NOT NULL,\n")
    + _by("amendments", ("record", "record_id, device_id, created_at"), ("device", "device_id, id"), ("site", "site_id, id"))
    # audit events of the devices themselves (technician menu, gate test, config reloads, ...)
    + _uploaded_table("events")
    + _by("events", ("device", "device_id, id"), ("site", "site_id, id"))
)

#: columns added after the first release: (table, column, type); added to older SQLite files on open
ADDED_COLUMNS = (
    ("devices", "binding_id", "TEXT"),
    ("devices", "rebind_site_id", "TEXT"),
    ("records", "binding_id", "TEXT"),
    ("vehicle_sessions", "binding_id", "TEXT"),
    ("amendments", "binding_id", "TEXT"),
    ("events", "binding_id", "TEXT"),
)

#: indexes for tens of millions of rows: a device token's listing (its binding's rows in id
#: order), purging by received_at, and the rate-limit state shared by several service processes
_SCHEMA_2 = "".join(_by(t, ("binding", "binding_id, id"), ("received", "received_at")) for t in KIND_TABLES.values()) + (
    "CREATE INDEX IF NOT EXISTS binding_codes_by_expiry ON binding_codes (expires_at);\n"
    "CREATE TABLE IF NOT EXISTS limit_state (family TEXT NOT NULL, key TEXT NOT NULL, "
    "a DOUBLE PRECISION NOT NULL, b DOUBLE PRECISION NOT NULL, PRIMARY KEY (family, key));\n"
)

#: PostgreSQL plans a device's listing (binding_id = ? AND device_id = ? ORDER BY id LIMIT n) from
#: how many rows it expects; taking the two columns as independent it expects one row, sorts
#: everything the device ever sent and reads it all, which at tens of millions of rows is seconds.
#: Telling it that a binding implies its device lets it walk the (binding_id, id) index in order
#: and stop after n rows. SQLite walks that index anyway.
_SCHEMA_3 = {
    "postgresql": "".join(
        f"CREATE STATISTICS IF NOT EXISTS {t}_binding_device (dependencies) ON binding_id, device_id FROM {t};\n" for t in KIND_TABLES.values()
    ),
}

#: PostgreSQL takes from a shared bucket in one statement (`PostgresStore.take_from_bucket`); `c`
#: keeps what the last take answered (0: taken, else the seconds to wait), since RETURNING sees
#: only the new row. SQLite keeps its limits in memory (`shares_limits`).
_SCHEMA_4 = {"postgresql": "ALTER TABLE limit_state ADD COLUMN IF NOT EXISTS c DOUBLE PRECISION;\n"}

#: (version, what it does, SQL: the same for both, or by dialect, "" where a dialect needs nothing)
MIGRATIONS: tuple[tuple[int, str, str | dict[str, str]], ...] = (
    (1, "tables of the first release", _SCHEMA_1),
    (2, "indexes for listing by binding and purging by received_at; shared rate-limit state", _SCHEMA_2),
    (3, "PostgreSQL: statistics saying that a binding implies its device", _SCHEMA_3),
    (4, "PostgreSQL: what the last take from a shared bucket answered", _SCHEMA_4),
)
LATEST = MIGRATIONS[-1][0]


def migration_sql(sql: str | dict[str, str], dialect: str) -> str:
    return sql if isinstance(sql, str) else sql.get(dialect, "")

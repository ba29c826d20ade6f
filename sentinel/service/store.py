"""The reference service's state: one SQLite file (the default) or a PostgreSQL database.

One interface, `Store`, two implementations chosen by what `--db` names (`open_store`): a path is
`SqliteStore` (standard library only, one connection guarded by a lock since FastAPI runs sync
endpoints in a thread pool, WAL so a technician can read the file while the server runs); a
`postgresql://` URL is `PostgresStore` (psycopg 3 and its connection pool: several service
processes or uvicorn workers share one database). Both run the same SQL, written once with `?`
marks; the few places where the two dialects differ are methods of the implementations.

Correctness across processes rests on the database, never on a lock in one process: a record is
stored by INSERT ... ON CONFLICT DO NOTHING (exactly once, whichever worker got it first), a
binding code is used up by UPDATE ... WHERE used = 0 RETURNING (one winner), and on PostgreSQL the
rate-limit buckets live in the `limit_state` table (`update_limit`). Schema changes are the
numbered `_MIGRATIONS`, recorded in `schema_migrations` and applied on open (under an advisory
lock on PostgreSQL, so workers starting together migrate once).

Every value is bound as a parameter: credential values come straight from QR codes and must never
become SQL. The only names put into SQL text are table and column names from fixed lists here.

Times are stored as fixed-width UTC ISO text, so comparing the strings compares the times.

The database holds personal data (records, people) and token hashes: a SQLite file and its
-wal/-shm files are made 0600 (a PostgreSQL database is the operator's to protect), and records
older than the retention period are purged (`purge_records`, on both). Every record carries the binding (`binding_id`) of the device token that uploaded it; a device token lists only
its own binding's records, so a device id bound again (by an admin's leave) does not inherit what
the previous holder of that id recorded.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sentinel.contract import (
    AmendmentIn,
    CredentialKind,
    EventIn,
    RecordAmendment,
    RecordIn,
    Site,
    StoredAmendment,
    StoredEvent,
    StoredRecord,
    StoredVehicleSession,
    VehicleSessionIn,
    record_kind,
)
from sentinel.service.tokens import hash_secret, normalise_code

_SCHEMA = """
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
CREATE TABLE IF NOT EXISTS records (
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    site_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    body TEXT NOT NULL,
    binding_id TEXT
);
CREATE INDEX IF NOT EXISTS records_by_device ON records (device_id, id);
CREATE INDEX IF NOT EXISTS records_by_site ON records (site_id, id);
-- vehicle sessions of handheld units, uploaded with the records but kept apart from them, so that a
-- vehicle is never counted as a person checked
CREATE TABLE IF NOT EXISTS vehicle_sessions (
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    site_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    body TEXT NOT NULL,
    binding_id TEXT
);
CREATE INDEX IF NOT EXISTS vehicle_sessions_by_device ON vehicle_sessions (device_id, id);
CREATE INDEX IF NOT EXISTS vehicle_sessions_by_site ON vehicle_sessions (site_id, id);
-- amendments: what became of a passed check at the gate; shown on the check record they amend
-- (which may arrive later: until then the amendment is pending)
CREATE TABLE IF NOT EXISTS amendments (
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    site_id TEXT NOT NULL,
    record_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    body TEXT NOT NULL,
    binding_id TEXT
);
CREATE INDEX IF NOT EXISTS amendments_by_record ON amendments (record_id, device_id, created_at);
CREATE INDEX IF NOT EXISTS amendments_by_device ON amendments (device_id, id);
CREATE INDEX IF NOT EXISTS amendments_by_site ON amendments (site_id, id);
-- audit events of the devices themselves (technician menu, gate test, config reloads, ...)
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    site_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    body TEXT NOT NULL,
    binding_id TEXT
);
CREATE INDEX IF NOT EXISTS events_by_device ON events (device_id, id);
CREATE INDEX IF NOT EXISTS events_by_site ON events (site_id, id);
"""

#: columns added after the first release: (table, column, type); added to older files on open
_ADDED_COLUMNS = (
    ("devices", "binding_id", "TEXT"),
    ("devices", "rebind_site_id", "TEXT"),
    ("records", "binding_id", "TEXT"),
    ("vehicle_sessions", "binding_id", "TEXT"),
    ("amendments", "binding_id", "TEXT"),
    ("events", "binding_id", "TEXT"),
)

#: record kind (`contract.record_kind`) → its table; check records first and amendments last, so
#: that an amendment finds the check it amends when both come in one batch
_KIND_TABLES = {"check": "records", "vehicle_session": "vehicle_sessions", "event": "events", "amendment": "amendments"}


def utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _parse(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


class StoreError(Exception):
    pass


class Conflict(StoreError):
    """A unique key (id, token, ID number, face id) is already taken."""


class BindError(StoreError):
    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error = error  # code_unknown | code_expired | code_used | unknown_site | device_exists | wrong_site


@dataclass
class StoredBatch:
    """What `Store.add_records` did with a batch."""

    #: every id of the batch now stored (by this call or an earlier one) → the device that stored it
    owners: dict[str, str] = field(default_factory=dict)
    #: ids not stored, never to be: id → (error, message); `id_conflict` (a record of another kind
    #: has the id) or `wrong_record` (an amendment of another device's record, or of a non-check)
    refused: dict[str, tuple[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class DeviceRow:
    id: str
    site_id: str
    revoked: bool
    bound_at: datetime
    last_heartbeat_at: datetime | None
    last_heartbeat: dict[str, Any] | None
    binding_id: str | None = None
    rebind_site_id: str | None = None  # an admin allowed this id to be bound again, into this site


@dataclass(frozen=True)
class PersonRow:
    person_id: str
    name: str
    colour: str
    token: str | None = None
    id_number: str | None = None
    face_id: str | None = None
    code_expires_at: datetime | None = None
    nat_result: str | None = None
    nat_sampled_at: datetime | None = None
    antigen: str | None = None
    doses: int = 0
    face_site_id: str | None = None
    face_encoding: list[float] | None = None
    updated_at: datetime | None = field(default=None, compare=False)


_PERSON_COLUMNS = tuple(f.name for f in fields(PersonRow))
_PERSON_TIMES = {"code_expires_at", "nat_sampled_at", "updated_at"}


def _person_to_sql(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in _PERSON_TIMES:
        return utc_text(value)
    if name == "face_encoding":
        return json.dumps(value)
    if name == "id_number":
        return normalise_id_number(value)
    return value


def _person_from_sql(row: Any) -> PersonRow:
    values = dict(row)
    for name in _PERSON_TIMES:
        values[name] = _parse(values[name])
    if values["face_encoding"] is not None:
        values["face_encoding"] = json.loads(values["face_encoding"])
    return PersonRow(**values)


def normalise_id_number(value: str) -> str:
    """ID numbers end in a check character that may be an x typed in lower case."""
    return value.strip().upper()


#: what SQLite may create next to the database file
_SIDE_FILES = ("", "-wal", "-shm", "-journal")

#: indexes for tens of millions of rows: a device token's listing (its binding's rows in id
#: order), purging by received_at, and the rate-limit state shared by several service processes
_SCHEMA_2 = "\n".join(
    [f"CREATE INDEX IF NOT EXISTS {t}_by_binding ON {t} (binding_id, id);" for t in _KIND_TABLES.values()]
    + [f"CREATE INDEX IF NOT EXISTS {t}_by_received ON {t} (received_at);" for t in _KIND_TABLES.values()]
    + [
        "CREATE INDEX IF NOT EXISTS binding_codes_by_expiry ON binding_codes (expires_at);",
        (
            "CREATE TABLE IF NOT EXISTS limit_state (family TEXT NOT NULL, key TEXT NOT NULL, "
            "a DOUBLE PRECISION NOT NULL, b DOUBLE PRECISION NOT NULL, PRIMARY KEY (family, key));"
        ),
    ]
)

#: (version, what it does, SQL): applied in order on open, each recorded in schema_migrations;
#: append a new version, never edit an applied one
_MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (1, "tables of the first release", _SCHEMA),
    (2, "indexes for listing by binding and purging by received_at; shared rate-limit state", _SCHEMA_2),
)


def is_postgres_url(db: str | Path) -> bool:
    return isinstance(db, str) and db.startswith(("postgresql://", "postgres://"))


def open_store(db: str | Path) -> Store:
    """The store `db` names: a `postgresql://` URL, else a SQLite file path (or ":memory:")."""
    return PostgresStore(db) if is_postgres_url(db) else SqliteStore(db)


def describe_db(db: str | Path) -> str:
    """`db` for a log line: a URL without its password."""
    if not is_postgres_url(db):
        return str(db)
    return re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", str(db))


class Store:
    """The service's state. `Store(db)` opens what `db` names (`open_store`); the SQL lives here,
    written once, and the two implementations supply connections, transactions and the few
    dialect differences."""

    #: SQL for "same value, NULL included"
    _IS = "IS"
    #: the database's integrity errors (unique key, foreign key)
    _integrity: tuple[type[Exception], ...] = ()

    def __new__(cls, *args: Any, **kwargs: Any) -> Store:  # noqa: PYI034  (answers a subclass)
        chosen = cls
        if cls is Store:
            db = args[0] if args else kwargs["path"]
            chosen = PostgresStore if is_postgres_url(db) else SqliteStore
        return super().__new__(chosen)

    # implementation hooks ----------------------------------------------------------------------

    def close(self) -> None:
        raise NotImplementedError

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        """One transaction; yields a connection whose `execute(sql, params)` takes `?` marks and
        returns rows that index by column name."""
        raise NotImplementedError
        yield

    def _one(self, sql: str, params: tuple[Any, ...]) -> Any:
        raise NotImplementedError

    def _all(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        raise NotImplementedError

    def _upsert_sql(self, table: str, columns: tuple[str, ...], key: str, replace: bool) -> str:
        raise NotImplementedError

    def _serialise(self, conn: Any, names: list[str]) -> None:
        """Make concurrent transactions on these names wait for each other (SQLite: every write
        transaction already does)."""

    # sites -------------------------------------------------------------------------------------

    def add_site(self, site: Site, *, replace: bool = False) -> None:
        try:
            with self._tx() as conn:
                conn.execute(self._upsert_sql("sites", ("id", "name", "address"), "id", replace), (site.id, site.name, site.address))
        except self._integrity as exc:
            raise Conflict(f"site {site.id} exists") from exc

    def get_site(self, site_id: str) -> Site | None:
        row = self._one("SELECT id, name, address FROM sites WHERE id = ?", (site_id,))
        return None if row is None else Site(**dict(row))

    # devices -----------------------------------------------------------------------------------

    def set_device(self, device_id: str, site_id: str, token: str, now: datetime) -> None:
        """Create the device, or re-key it (a re-bound device's old token stops working)."""
        with self._tx() as conn:
            self._set_device(conn, device_id, site_id, token, now)

    @staticmethod
    def _set_device(conn: Any, device_id: str, site_id: str, token: str, now: datetime) -> None:
        """A new token is a new binding (its own `binding_id`); the same token again (re-seeding
        the demo) keeps its binding, so the device still sees what it recorded."""
        conn.execute(
            "INSERT INTO devices (id, site_id, token_hash, revoked, bound_at, binding_id, rebind_site_id) VALUES (?, ?, ?, 0, ?, ?, NULL) "
            "ON CONFLICT (id) DO UPDATE SET site_id = excluded.site_id, "
            "binding_id = CASE WHEN devices.token_hash = excluded.token_hash THEN devices.binding_id ELSE excluded.binding_id END, "
            "token_hash = excluded.token_hash, revoked = 0, bound_at = excluded.bound_at, rebind_site_id = NULL",
            (device_id, site_id, hash_secret(token), utc_text(now), uuid.uuid4().hex),
        )

    def _device(self, where: str, param: str) -> DeviceRow | None:
        row = self._one(
            "SELECT id, site_id, revoked, bound_at, last_heartbeat_at, last_heartbeat, binding_id, rebind_site_id FROM devices WHERE "
            + where,
            (param,),
        )
        if row is None:
            return None
        return DeviceRow(
            id=row["id"],
            site_id=row["site_id"],
            revoked=bool(row["revoked"]),
            bound_at=_parse(row["bound_at"]),
            last_heartbeat_at=_parse(row["last_heartbeat_at"]),
            last_heartbeat=None if row["last_heartbeat"] is None else json.loads(row["last_heartbeat"]),
            binding_id=row["binding_id"],
            rebind_site_id=row["rebind_site_id"],
        )

    def device_for_token(self, token: str) -> DeviceRow | None:
        return self._device("token_hash = ?", hash_secret(token))

    def get_device(self, device_id: str) -> DeviceRow | None:
        return self._device("id = ?", device_id)

    def revoke_device(self, device_id: str) -> bool:
        with self._tx() as conn:
            return conn.execute("UPDATE devices SET revoked = 1 WHERE id = ?", (device_id,)).rowcount == 1

    def allow_rebind(self, device_id: str, site_id: str) -> bool:
        """Let the next binding of `device_id` (with a code of `site_id`) replace it: an admin's
        decision, since a binding also lifts a revocation."""
        with self._tx() as conn:
            return conn.execute("UPDATE devices SET rebind_site_id = ? WHERE id = ?", (site_id, device_id)).rowcount == 1

    def record_heartbeat(self, device_id: str, heartbeat: dict[str, Any], now: datetime) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE devices SET last_heartbeat_at = ?, last_heartbeat = ? WHERE id = ?",
                (utc_text(now), json.dumps(heartbeat), device_id),
            )

    # binding codes -----------------------------------------------------------------------------

    def add_binding_code(self, site_id: str, code: str, expires_at: datetime) -> None:
        """Issue `code` (again, unused, if it existed: the demo re-seeds its fixed code)."""
        try:
            with self._tx() as conn:
                conn.execute(
                    self._upsert_sql("binding_codes", ("code_hash", "site_id", "expires_at", "used", "used_by"), "code_hash", True),
                    (hash_secret(normalise_code(code)), site_id, utc_text(expires_at), 0, None),
                )
        except self._integrity as exc:
            raise BindError("unknown_site", f"no site {site_id}") from exc

    def redeem_binding_code(self, code: str, device_id: str, token: str, now: datetime) -> Site:
        """Use the code up and bind the device in one transaction, so two devices racing with the
        same code cannot both get a token, in one process or several: the UPDATE ... WHERE used = 0
        has one winner, and the loser finds the code used."""
        code_hash = hash_secret(normalise_code(code))
        with self._tx() as conn:
            self._serialise(conn, [f"device:{device_id}"])  # two codes binding one new id: one at a time
            row = conn.execute(
                "UPDATE binding_codes SET used = 1, used_by = ? WHERE code_hash = ? AND used = 0 AND expires_at > ? RETURNING site_id",
                (device_id, code_hash, utc_text(now)),
            ).fetchall()  # all: SQLite finishes a RETURNING statement only once it is read to the end
            row = row[0] if row else None
            if row is None:
                why = conn.execute("SELECT used FROM binding_codes WHERE code_hash = ?", (code_hash,)).fetchone()
                if why is None:
                    raise BindError("code_unknown", "no such binding code")
                if why["used"]:
                    raise BindError("code_used", "this binding code was already used; ask for a new one")
                raise BindError("code_expired", "this binding code has expired; ask for a new one")
            existing = conn.execute("SELECT site_id, rebind_site_id FROM devices WHERE id = ?", (device_id,)).fetchone()
            if existing is not None:
                # raising rolls the transaction back: the code stays unused
                if existing["rebind_site_id"] is None:
                    raise BindError("device_exists", f"device {device_id} is already bound; an admin must allow binding it again")
                if existing["rebind_site_id"] != row["site_id"]:
                    raise BindError("wrong_site", f"device {device_id} may be bound again only with a code of site {existing['rebind_site_id']}")
            self._set_device(conn, device_id, row["site_id"], token, now)
            site = conn.execute("SELECT id, name, address FROM sites WHERE id = ?", (row["site_id"],)).fetchone()
        return Site(**dict(site))

    # people ------------------------------------------------------------------------------------

    def add_person(self, person: PersonRow, now: datetime, *, replace: bool = False) -> PersonRow:
        values = {**{n: getattr(person, n) for n in _PERSON_COLUMNS}, "updated_at": now}
        try:
            with self._tx() as conn:
                conn.execute(
                    self._upsert_sql("people", _PERSON_COLUMNS, "person_id", replace),
                    tuple(_person_to_sql(n, values[n]) for n in _PERSON_COLUMNS),
                )
        except self._integrity as exc:
            raise Conflict(f"person {person.person_id}: id, token, ID number or face id already taken") from exc
        return self.get_person(person.person_id)

    def update_person(self, person_id: str, changes: dict[str, Any], now: datetime) -> PersonRow | None:
        forbidden = (set(changes) - set(_PERSON_COLUMNS)) | (set(changes) & {"person_id", "updated_at"})
        if forbidden:
            raise ValueError(f"cannot change {sorted(forbidden)}")
        changes = {**changes, "updated_at": now}
        columns = [n for n in _PERSON_COLUMNS if n in changes]  # whitelisted names only
        try:
            with self._tx() as conn:
                changed = conn.execute(
                    f"UPDATE people SET {', '.join(f'{n} = ?' for n in columns)} WHERE person_id = ?",
                    (*(_person_to_sql(n, changes[n]) for n in columns), person_id),
                ).rowcount
        except self._integrity as exc:
            raise Conflict(f"person {person_id}: token, ID number or face id already taken") from exc
        return self.get_person(person_id) if changed else None

    def get_person(self, person_id: str) -> PersonRow | None:
        row = self._one(f"SELECT {', '.join(_PERSON_COLUMNS)} FROM people WHERE person_id = ?", (person_id,))
        return None if row is None else _person_from_sql(row)

    def find_person(self, kind: CredentialKind, value: str, *, face_site_id: str | None = None) -> PersonRow | None:
        """The person a credential names. A face id is looked up only in the gallery of
        `face_site_id` (the asking device's site) when it is given: a face id is a name, not a
        secret, and a device must not learn people enrolled elsewhere by guessing them."""
        column, value = {
            CredentialKind.HEALTH_CODE: ("token", value),
            CredentialKind.ID_NUMBER: ("id_number", normalise_id_number(value)),
            CredentialKind.FACE: ("face_id", value),
        }[kind]
        if kind is CredentialKind.FACE and face_site_id is not None:
            row = self._one(f"SELECT {', '.join(_PERSON_COLUMNS)} FROM people WHERE face_id = ? AND face_site_id = ?", (value, face_site_id))
        else:
            row = self._one(f"SELECT {', '.join(_PERSON_COLUMNS)} FROM people WHERE {column} = ?", (value,))
        return None if row is None else _person_from_sql(row)

    def faces(self, site_id: str, since: datetime | None) -> list[PersonRow]:
        since_sql, params = ("", (site_id,)) if since is None else (" AND updated_at >= ?", (site_id, utc_text(since)))
        rows = self._all(
            f"SELECT {', '.join(_PERSON_COLUMNS)} FROM people "
            f"WHERE face_site_id = ? AND face_id IS NOT NULL AND face_encoding IS NOT NULL{since_sql} ORDER BY person_id",
            params,
        )
        return [_person_from_sql(row) for row in rows]

    # records -----------------------------------------------------------------------------------

    def add_records(
        self, records: list[RecordIn | VehicleSessionIn | AmendmentIn | EventIn], now: datetime, binding_id: str | None = None
    ) -> StoredBatch:
        """Store what is new and ignore what is known, in one transaction, each kind in its table.
        `owners` maps every stored id of the batch to the device that stored it, whichever attempt
        that was (in this process or another: ON CONFLICT DO NOTHING, then read back). An id is
        stored once across all kinds: one already used by another kind is refused
        (`id_conflict`). An amendment is refused (`wrong_record`) when the record it amends
        is another device's or not a check record; one whose check record is not known yet is
        stored, pending, and shows on the record once that arrives."""
        out = StoredBatch()
        if not records:
            return out
        by_kind: dict[str, list[Any]] = {kind: [] for kind in _KIND_TABLES}
        for record in records:
            by_kind[record_kind(record)].append(record)
        with self._tx() as conn:
            self._serialise(conn, sorted({f"record:{r.id}" for r in records}))  # one kind wins an id across tables
            for kind, table in _KIND_TABLES.items():
                batch = by_kind[kind]
                if not batch:
                    continue
                ids = sorted({r.id for r in batch})
                marks = ", ".join("?" * len(ids))
                for other in _KIND_TABLES.values():
                    if other == table:
                        continue
                    for row in conn.execute(f"SELECT id FROM {other} WHERE id IN ({marks})", tuple(ids)).fetchall():
                        out.refused[row["id"]] = ("id_conflict", f"a record of another kind is stored with this id ({other})")
                known = {row["id"] for row in conn.execute(f"SELECT id FROM {table} WHERE id IN ({marks})", tuple(ids)).fetchall()}
                if kind == "amendment":
                    for amendment in batch:
                        if amendment.id not in known and amendment.id not in out.refused:
                            refusal = self._amendment_refusal(conn, amendment)
                            if refusal:
                                out.refused[amendment.id] = refusal
                rows = [r for r in batch if r.id not in out.refused]
                if not rows:
                    continue
                if kind == "amendment":
                    conn.executemany(
                        "INSERT INTO amendments (id, device_id, site_id, record_id, created_at, received_at, body, binding_id) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                        [(r.id, r.device_id, r.site_id, r.record_id, utc_text(r.created_at), utc_text(now), r.model_dump_json(), binding_id)
                         for r in rows],
                    )
                else:
                    conn.executemany(
                        f"INSERT INTO {table} (id, device_id, site_id, created_at, received_at, body, binding_id) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                        [(r.id, r.device_id, r.site_id, utc_text(r.created_at), utc_text(now), r.model_dump_json(), binding_id) for r in rows],
                    )
                stored = sorted({r.id for r in rows})
                found = conn.execute(
                    f"SELECT id, device_id FROM {table} WHERE id IN ({', '.join('?' * len(stored))})", tuple(stored)
                ).fetchall()
                out.owners.update({row["id"]: row["device_id"] for row in found})
        return out

    @staticmethod
    def _amendment_refusal(conn: Any, amendment: AmendmentIn) -> tuple[str, str] | None:
        row = conn.execute("SELECT device_id FROM records WHERE id = ?", (amendment.record_id,)).fetchone()
        if row is not None:
            if row["device_id"] != amendment.device_id:
                return ("wrong_record", "the amended record is another device's")
            return None
        for table in ("vehicle_sessions", "amendments", "events"):
            if conn.execute(f"SELECT 1 AS one FROM {table} WHERE id = ?", (amendment.record_id,)).fetchone():
                return ("wrong_record", f"the amended record is not a check record ({table})")
        return None  # not known yet: stored, pending

    def list_records(self, **filters: Any) -> list[StoredRecord]:
        """Check records in id (= time) order, each with its latest amendment (or none);
        filters: device_id, site_id, since, after, limit."""
        latest = (
            "(SELECT a.body FROM amendments a WHERE a.record_id = records.id AND a.device_id = records.device_id "
            "ORDER BY a.created_at DESC, a.id DESC LIMIT 1)"
        )
        out = []
        for body, received_at, amendment in self._rows("records", latest, **filters):
            if amendment is not None:
                a = json.loads(amendment)
                amendment = RecordAmendment(id=a["id"], passed=a["passed"], reason=a["reason"], at=a["created_at"])
            out.append(StoredRecord(**json.loads(body), received_at=received_at, amendment=amendment))
        return out

    def list_vehicle_sessions(self, **filters: Any) -> list[StoredVehicleSession]:
        """Vehicle sessions in id (= time) order, filtered like `list_records`."""
        return self._list("vehicle_sessions", StoredVehicleSession, **filters)

    def list_amendments(self, **filters: Any) -> list[StoredAmendment]:
        """Amendments in id (= time) order, filtered like `list_records`; `pending` while the
        amended check record has not arrived."""
        pending = "NOT EXISTS (SELECT 1 FROM records r WHERE r.id = amendments.record_id AND r.device_id = amendments.device_id)"
        return [
            StoredAmendment(**json.loads(body), received_at=received_at, pending=bool(is_pending))
            for body, received_at, is_pending in self._rows("amendments", pending, **filters)
        ]

    def list_events(self, **filters: Any) -> list[StoredEvent]:
        """Audit events in id (= time) order, filtered like `list_records`."""
        return self._list("events", StoredEvent, **filters)

    def _list(self, table: str, model: type, **filters: Any) -> list:
        return [model(**json.loads(body), received_at=received_at) for body, received_at, _ in self._rows(table, "NULL", **filters)]

    def _rows(
        self,
        table: str,  # one of the literals above, never caller input
        column: str,  # a fixed SQL expression from the methods above, never caller input
        *,
        device_id: str | None = None,
        site_id: str | None = None,
        since: datetime | None = None,
        after: str | None = None,
        limit: int = 100,
        binding_id: str | None = None,
        own_binding: bool = False,
    ) -> list[tuple[str, str, Any]]:
        """`own_binding`: only rows uploaded under `binding_id` (a device token's view)."""
        conditions, params = ["1 = 1"], []
        if own_binding:
            conditions.append(f"binding_id {self._IS} ?")
            params.append(binding_id)
        for sql, value in (
            ("device_id = ?", device_id),
            ("site_id = ?", site_id),
            ("created_at >= ?", None if since is None else utc_text(since)),
            ("id > ?", after),
        ):
            if value is not None:
                conditions.append(sql)
                params.append(value)
        rows = self._all(
            f"SELECT body, received_at, {column} AS extra FROM {table} WHERE {' AND '.join(conditions)} ORDER BY id LIMIT ?",
            (*params, limit),
        )
        return [(row["body"], row["received_at"], row["extra"]) for row in rows]

    # retention ---------------------------------------------------------------------------------

    def purge_records(self, before: datetime) -> int:
        """Delete every record, vehicle session, amendment and event the service received before
        `before`, and binding codes that expired before it; returns how many rows went."""
        cutoff = utc_text(before)
        gone = 0
        with self._tx() as conn:
            for table in _KIND_TABLES.values():
                gone += conn.execute(f"DELETE FROM {table} WHERE received_at < ?", (cutoff,)).rowcount
            conn.execute("DELETE FROM binding_codes WHERE expires_at < ?", (cutoff,))
        return gone

    # rate limits shared by several processes ---------------------------------------------------

    def shares_limits(self) -> bool:
        """Whether rate limits should live here (`update_limit`) rather than in one process's memory."""
        return False

    def update_limit(self, family: str, key: str, change: Any) -> Any:
        """Atomically replace the (a, b) pair of `family`/`key` (None: none yet) by what
        `change(old)` answers as `(new or None, result)`, and return `result`. `b` is always the
        time of the last change (`forget_limits`)."""
        with self._tx() as conn:
            self._serialise(conn, [f"limit:{family}:{key}"])
            row = conn.execute("SELECT a, b FROM limit_state WHERE family = ? AND key = ?", (family, key)).fetchone()
            new, result = change(None if row is None else (row["a"], row["b"]))
            if new is None:
                conn.execute("DELETE FROM limit_state WHERE family = ? AND key = ?", (family, key))
            else:
                conn.execute(
                    "INSERT INTO limit_state (family, key, a, b) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (family, key) DO UPDATE SET a = excluded.a, b = excluded.b",
                    (family, key, float(new[0]), float(new[1])),
                )
        return result

    def forget_limits(self, before: float) -> int:
        """Delete rate-limit state last changed before `before` (the limits' clock); how many went."""
        with self._tx() as conn:
            return conn.execute("DELETE FROM limit_state WHERE b < ?", (float(before),)).rowcount

    # migrations --------------------------------------------------------------------------------

    def _migrate(self, conn: Any, script: Any) -> None:
        """Apply the `_MIGRATIONS` not yet in schema_migrations; `script(sql)` runs one."""
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)")
        done = {row["version"] for row in conn.execute("SELECT version FROM schema_migrations", ()).fetchall()}
        for version, description, sql in _MIGRATIONS:
            if version in done:
                continue
            script(sql)
            if version == 1:
                self._add_columns(conn)
            conn.execute(
                "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (version, description, utc_text(datetime.now(UTC))),
            )

    def _add_columns(self, conn: Any) -> None:
        """Files from before schema_migrations may lack columns added since the first release."""

    def schema_version(self) -> int:
        row = self._one("SELECT MAX(version) AS v FROM schema_migrations", ())
        return int(row["v"] or 0)


class _SqliteConn:
    """The sqlite3 connection, as `_tx` yields it (rows by name: sqlite3.Row)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        return self._conn.execute(sql, params)

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> sqlite3.Cursor:
        return self._conn.executemany(sql, rows)


class SqliteStore(Store):
    """One SQLite file, one connection guarded by a lock; BEGIN IMMEDIATE serialises writers,
    even across processes."""

    _integrity = (sqlite3.IntegrityError,)

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.RLock()
        if self.path != ":memory:":
            # created owner-only before SQLite opens it: SQLite gives -wal/-shm the same mode
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            self._restrict()
        # isolation_level=None: transactions are explicit (_tx), so a multi-statement change such
        # as redeeming a binding code is one BEGIN IMMEDIATE ... COMMIT even across processes.
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=5.0)
        self._conn.row_factory = sqlite3.Row
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            # executescript commits as it goes; every migration is CREATE ... IF NOT EXISTS, so two
            # processes opening one new file at once both end up with the same schema
            self._migrate(_SqliteConn(self._conn), self._conn.executescript)
        self._restrict()

    def _add_columns(self, conn: Any) -> None:
        for table, column, kind in _ADDED_COLUMNS:
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
        with self._lock:
            self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[_SqliteConn]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteConn(self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _one(self, sql: str, params: tuple[Any, ...]) -> sqlite3.Row | None:
        with self._lock:
            return self._conn.execute(sql, params).fetchone()

    def _all(self, sql: str, params: tuple[Any, ...]) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def _upsert_sql(self, table: str, columns: tuple[str, ...], key: str, replace: bool) -> str:
        # INSERT OR REPLACE, as before PostgreSQL came: a replaced person also frees the token,
        # ID number or face id another row held
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        return f"{verb} INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


class _PgConn:
    """A psycopg connection taking `?` marks (the SQL here never has a literal `?` or `%`)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self._conn.execute(sql.replace("?", "%s"), params)

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> Any:
        cursor = self._conn.cursor()
        cursor.executemany(sql.replace("?", "%s"), rows)
        return cursor


class PostgresStore(Store):
    """A PostgreSQL database shared by any number of service processes, through a small pool of
    psycopg 3 connections per process (READ COMMITTED; what must not race is made safe by the
    statements themselves or a transaction-scoped advisory lock, `_serialise`)."""

    _IS = "IS NOT DISTINCT FROM"

    #: connections per process: FastAPI's thread pool waits for one when all are busy
    POOL_SIZE = 8

    def __init__(self, url: str, *, pool_size: int | None = None) -> None:
        import psycopg  # imported only when PostgreSQL is asked for: the default needs no driver
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool

        self.path = url
        self._integrity = (psycopg.errors.IntegrityError,)
        size = pool_size or self.POOL_SIZE
        self._pool = ConnectionPool(url, min_size=1, max_size=size, kwargs={"row_factory": dict_row}, open=False, name="sentinel-store")
        self._pool.open(wait=True, timeout=10.0)
        try:
            with self._tx() as conn:
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('sentinel schema_migrations'))")
                self._migrate(conn, lambda sql: conn._conn.execute(sql))
        except BaseException:
            self._pool.close()
            raise

    def close(self) -> None:
        self._pool.close()

    @contextmanager
    def _tx(self) -> Iterator[_PgConn]:
        with self._pool.connection() as conn, conn.transaction():
            yield _PgConn(conn)

    def _one(self, sql: str, params: tuple[Any, ...]) -> Any:
        with self._pool.connection() as conn:
            return _PgConn(conn).execute(sql, params).fetchone()

    def _all(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        with self._pool.connection() as conn:
            return _PgConn(conn).execute(sql, params).fetchall()

    def _upsert_sql(self, table: str, columns: tuple[str, ...], key: str, replace: bool) -> str:
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        if replace:
            sql += f" ON CONFLICT ({key}) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in columns if c != key)
        return sql

    def _serialise(self, conn: Any, names: list[str]) -> None:
        if names:
            conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext(n)) FROM (SELECT unnest(?::text[]) AS n ORDER BY 1) AS names",
                (sorted(names),),
            )

    def shares_limits(self) -> bool:
        return True

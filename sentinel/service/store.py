"""The reference service's state in one SQLite file.

Standard library only, one connection guarded by a lock (FastAPI runs sync endpoints in a thread
pool), WAL so a technician can read the file while the server runs, and every value bound as a
parameter: credential values come straight from QR codes and must never become SQL. The only names
put into SQL text are column names from the fixed `_PERSON_COLUMNS` list.

Times are stored as fixed-width UTC ISO text, so comparing the strings compares the times.

The file holds personal data (records, people) and token hashes: it and its -wal/-shm files are
made 0600, and records older than the retention period are purged (`purge_records`). Every record
carries the binding (`binding_id`) of the device token that uploaded it; a device token lists only
its own binding's records, so a device id bound again (by an admin's leave) does not inherit what
the previous holder of that id recorded.
"""

from __future__ import annotations

import json
import os
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


def _person_from_sql(row: sqlite3.Row) -> PersonRow:
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


class Store:
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
            self._conn.executescript(_SCHEMA)
            for table, column, kind in _ADDED_COLUMNS:
                have = {row["name"] for row in self._conn.execute(f"PRAGMA table_info({table})")}
                if column not in have:
                    self._conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        self._restrict()

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
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _one(self, sql: str, params: tuple[Any, ...]) -> sqlite3.Row | None:
        with self._lock:
            return self._conn.execute(sql, params).fetchone()

    # sites -------------------------------------------------------------------------------------

    def add_site(self, site: Site, *, replace: bool = False) -> None:
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        try:
            with self._tx() as conn:
                conn.execute(f"{verb} INTO sites (id, name, address) VALUES (?, ?, ?)", (site.id, site.name, site.address))
        except sqlite3.IntegrityError as exc:
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
    def _set_device(conn: sqlite3.Connection, device_id: str, site_id: str, token: str, now: datetime) -> None:
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
                    "INSERT OR REPLACE INTO binding_codes (code_hash, site_id, expires_at, used, used_by) VALUES (?, ?, ?, 0, NULL)",
                    (hash_secret(normalise_code(code)), site_id, utc_text(expires_at)),
                )
        except sqlite3.IntegrityError as exc:
            raise BindError("unknown_site", f"no site {site_id}") from exc

    def redeem_binding_code(self, code: str, device_id: str, token: str, now: datetime) -> Site:
        """Use the code up and bind the device in one transaction, so two devices racing with the
        same code cannot both get a token."""
        with self._tx() as conn:
            row = conn.execute(
                "SELECT site_id, expires_at, used FROM binding_codes WHERE code_hash = ?", (hash_secret(normalise_code(code)),)
            ).fetchone()
            if row is None:
                raise BindError("code_unknown", "no such binding code")
            if row["used"]:
                raise BindError("code_used", "this binding code was already used; ask for a new one")
            if _parse(row["expires_at"]) <= now:
                raise BindError("code_expired", "this binding code has expired; ask for a new one")
            existing = conn.execute("SELECT site_id, rebind_site_id FROM devices WHERE id = ?", (device_id,)).fetchone()
            if existing is not None:
                # raising rolls the transaction back: the code stays unused
                if existing["rebind_site_id"] is None:
                    raise BindError("device_exists", f"device {device_id} is already bound; an admin must allow binding it again")
                if existing["rebind_site_id"] != row["site_id"]:
                    raise BindError("wrong_site", f"device {device_id} may be bound again only with a code of site {existing['rebind_site_id']}")
            conn.execute(
                "UPDATE binding_codes SET used = 1, used_by = ? WHERE code_hash = ?",
                (device_id, hash_secret(normalise_code(code))),
            )
            self._set_device(conn, device_id, row["site_id"], token, now)
            site = conn.execute("SELECT id, name, address FROM sites WHERE id = ?", (row["site_id"],)).fetchone()
        return Site(**dict(site))

    # people ------------------------------------------------------------------------------------

    def add_person(self, person: PersonRow, now: datetime, *, replace: bool = False) -> PersonRow:
        values = {**{n: getattr(person, n) for n in _PERSON_COLUMNS}, "updated_at": now}
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        try:
            with self._tx() as conn:
                conn.execute(
                    f"{verb} INTO people ({', '.join(_PERSON_COLUMNS)}) VALUES ({', '.join('?' * len(_PERSON_COLUMNS))})",
                    tuple(_person_to_sql(n, values[n]) for n in _PERSON_COLUMNS),
                )
        except sqlite3.IntegrityError as exc:
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
                cursor = conn.execute(
                    f"UPDATE people SET {', '.join(f'{n} = ?' for n in columns)} WHERE person_id = ?",
                    (*(_person_to_sql(n, changes[n]) for n in columns), person_id),
                )
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"person {person_id}: token, ID number or face id already taken") from exc
        return self.get_person(person_id) if cursor.rowcount else None

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
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {', '.join(_PERSON_COLUMNS)} FROM people "
                "WHERE face_site_id = ? AND face_id IS NOT NULL AND face_encoding IS NOT NULL "
                "AND (? IS NULL OR updated_at >= ?) ORDER BY person_id",
                (site_id, *(2 * [None if since is None else utc_text(since)])),
            ).fetchall()
        return [_person_from_sql(row) for row in rows]

    # records -----------------------------------------------------------------------------------

    def add_records(
        self, records: list[RecordIn | VehicleSessionIn | AmendmentIn | EventIn], now: datetime, binding_id: str | None = None
    ) -> StoredBatch:
        """Store what is new and ignore what is known, in one transaction, each kind in its table.
        `owners` maps every stored id of the batch to the device that stored it, whichever attempt
        that was. An id is stored once across all kinds: one already used by another kind is
        refused (`id_conflict`). An amendment is refused (`wrong_record`) when the record it amends
        is another device's or not a check record; one whose check record is not known yet is
        stored, pending, and shows on the record once that arrives."""
        out = StoredBatch()
        if not records:
            return out
        by_kind: dict[str, list[Any]] = {kind: [] for kind in _KIND_TABLES}
        for record in records:
            by_kind[record_kind(record)].append(record)
        with self._tx() as conn:
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
                        "INSERT OR IGNORE INTO amendments (id, device_id, site_id, record_id, created_at, received_at, body, binding_id) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [(r.id, r.device_id, r.site_id, r.record_id, utc_text(r.created_at), utc_text(now), r.model_dump_json(), binding_id)
                         for r in rows],
                    )
                else:
                    conn.executemany(
                        f"INSERT OR IGNORE INTO {table} (id, device_id, site_id, created_at, received_at, body, binding_id) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [(r.id, r.device_id, r.site_id, utc_text(r.created_at), utc_text(now), r.model_dump_json(), binding_id) for r in rows],
                    )
                stored = sorted({r.id for r in rows})
                found = conn.execute(
                    f"SELECT id, device_id FROM {table} WHERE id IN ({', '.join('?' * len(stored))})", tuple(stored)
                ).fetchall()
                out.owners.update({row["id"]: row["device_id"] for row in found})
        return out

    @staticmethod
    def _amendment_refusal(conn: sqlite3.Connection, amendment: AmendmentIn) -> tuple[str, str] | None:
        row = conn.execute("SELECT device_id FROM records WHERE id = ?", (amendment.record_id,)).fetchone()
        if row is not None:
            if row["device_id"] != amendment.device_id:
                return ("wrong_record", "the amended record is another device's")
            return None
        for table in ("vehicle_sessions", "amendments", "events"):
            if conn.execute(f"SELECT 1 FROM {table} WHERE id = ?", (amendment.record_id,)).fetchone():
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
            conditions.append("binding_id IS ?")
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
        with self._lock:
            rows = self._conn.execute(
                f"SELECT body, received_at, {column} FROM {table} WHERE {' AND '.join(conditions)} ORDER BY id LIMIT ?",
                (*params, limit),
            ).fetchall()
        return [(row[0], row[1], row[2]) for row in rows]

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

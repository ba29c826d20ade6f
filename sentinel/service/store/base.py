"""The store's SQL, written once for SQLite and PostgreSQL with `?` marks: sites, devices, binding
codes, people, shared rate limits and migrations here, what devices upload in store/records.py.

An implementation (store/sqlite.py, store/postgres.py) supplies connections (`_begin`, `_read`),
the few dialect differences (`_upsert_sql`, `_serialise`) and which driver errors mean
"the database is unavailable" (`_unavailable`): those become `StoreUnavailable`, after the
transaction was rolled back, so the service answers 503 rather than a wrong answer.

Correctness across processes rests on the database, never on a lock in one process: a binding
code is used up by UPDATE ... WHERE used = 0 RETURNING (one winner), and the rate-limit buckets
of several processes live in `limit_state` (`update_limit`). Every value is bound as a
parameter: credential values come straight from QR codes and must never become SQL; the only
names put into SQL text are table and column names from fixed lists.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sentinel.contract import CredentialKind, Site
from sentinel.service.limits import Rate, bucket_take
from sentinel.service.store.records import RecordTables
from sentinel.service.store.rows import (
    DEVICE_COLUMNS,
    PERSON_COLUMNS,
    BindError,
    Conflict,
    DeviceRow,
    PersonRow,
    StoreUnavailable,
    device_from_sql,
    normalise_id_number,
    person_from_sql,
    person_to_sql,
    utc_text,
)
from sentinel.service.store.schema import MIGRATIONS, migration_sql
from sentinel.service.tokens import hash_secret, normalise_code


def is_postgres_url(db: str | Path) -> bool:
    return isinstance(db, str) and db.startswith(("postgresql://", "postgres://"))


class Conn:
    """A driver connection as `_tx` yields it: `execute(sql, params)` takes `?` marks (turned into
    the driver's `mark`; the SQL here never has a literal `?` or `%`) and answers a cursor whose
    rows index by column name."""

    def __init__(self, raw: Any, mark: str = "?") -> None:
        self.raw = raw
        self._mark = mark

    def _sql(self, sql: str) -> str:
        return sql if self._mark == "?" else sql.replace("?", self._mark)

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self.raw.execute(self._sql(sql), params)

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> Any:
        cursor = self.raw.cursor()
        cursor.executemany(self._sql(sql), rows)
        return cursor


class Store(RecordTables):
    """The service's state. `Store(db)` opens what `db` names (`open_store`)."""

    #: which SQL of a migration by dialect applies (store/schema.py)
    DIALECT = ""
    #: the database's integrity errors (unique key, foreign key)
    _integrity: tuple[type[Exception], ...] = ()
    #: the driver's errors that mean "cannot reach the database now" (→ StoreUnavailable)
    _unavailable: tuple[type[Exception], ...] = ()

    def __new__(cls, *args: Any, **kwargs: Any) -> Store:  # noqa: PYI034  (answers a subclass)
        chosen = cls
        if cls is Store:  # the implementations are imported with the package (store/__init__.py)
            db = args[0] if args else kwargs["path"]
            chosen = next(c for c in Store.__subclasses__() if c.handles(db))
        return super().__new__(chosen)

    @staticmethod
    def handles(db: str | Path) -> bool:
        """Whether this implementation opens what `db` names."""
        return False

    # implementation hooks ----------------------------------------------------------------------

    def close(self) -> None:
        raise NotImplementedError

    @contextmanager
    def _begin(self) -> Iterator[Conn]:
        """One transaction on one connection."""
        raise NotImplementedError
        yield

    @contextmanager
    def _read(self) -> Iterator[Conn]:
        """One connection for a read outside a transaction."""
        raise NotImplementedError
        yield

    def _upsert_sql(self, table: str, columns: tuple[str, ...], key: str, replace: bool) -> str:
        raise NotImplementedError

    def _serialise(self, conn: Conn, names: list[str]) -> None:
        """Make concurrent transactions on these names wait for each other (SQLite: every write
        transaction already does)."""

    # connections -------------------------------------------------------------------------------

    @contextmanager
    def _reachable(self) -> Iterator[None]:
        try:
            yield
        except self._unavailable as exc:
            raise StoreUnavailable(f"the database is unavailable ({type(exc).__name__}); try again") from exc

    @contextmanager
    def _tx(self) -> Iterator[Conn]:
        with self._reachable(), self._begin() as conn:
            yield conn

    def _statement(self, work: Callable[[Conn], Any]) -> Any:
        """`work`, one statement outside a transaction (a read, or a take from a rate-limit
        bucket), on a connection for reads; PostgreSQL tries it again when a cut connection fails it."""
        with self._reachable(), self._read() as conn:
            return work(conn)

    def _one(self, sql: str, params: tuple[Any, ...]) -> Any:
        return self._statement(lambda conn: conn.execute(sql, params).fetchone())

    def _all(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        return self._statement(lambda conn: conn.execute(sql, params).fetchall())

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
        row = self._one(f"SELECT {', '.join(DEVICE_COLUMNS)} FROM devices WHERE {where}", (param,))
        return None if row is None else device_from_sql(row)

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
        values = {**{n: getattr(person, n) for n in PERSON_COLUMNS}, "updated_at": now}
        try:
            with self._tx() as conn:
                conn.execute(
                    self._upsert_sql("people", PERSON_COLUMNS, "person_id", replace),
                    tuple(person_to_sql(n, values[n]) for n in PERSON_COLUMNS),
                )
        except self._integrity as exc:
            raise Conflict(f"person {person.person_id}: id, token, ID number or face id already taken") from exc
        return self.get_person(person.person_id)

    def update_person(self, person_id: str, changes: dict[str, Any], now: datetime) -> PersonRow | None:
        forbidden = (set(changes) - set(PERSON_COLUMNS)) | (set(changes) & {"person_id", "updated_at"})
        if forbidden:
            raise ValueError(f"cannot change {sorted(forbidden)}")
        changes = {**changes, "updated_at": now}
        columns = [n for n in PERSON_COLUMNS if n in changes]  # whitelisted names only
        try:
            with self._tx() as conn:
                changed = conn.execute(
                    f"UPDATE people SET {', '.join(f'{n} = ?' for n in columns)} WHERE person_id = ?",
                    (*(person_to_sql(n, changes[n]) for n in columns), person_id),
                ).rowcount
        except self._integrity as exc:
            raise Conflict(f"person {person_id}: token, ID number or face id already taken") from exc
        return self.get_person(person_id) if changed else None

    def get_person(self, person_id: str) -> PersonRow | None:
        row = self._one(f"SELECT {', '.join(PERSON_COLUMNS)} FROM people WHERE person_id = ?", (person_id,))
        return None if row is None else person_from_sql(row)

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
            row = self._one(f"SELECT {', '.join(PERSON_COLUMNS)} FROM people WHERE face_id = ? AND face_site_id = ?", (value, face_site_id))
        else:
            row = self._one(f"SELECT {', '.join(PERSON_COLUMNS)} FROM people WHERE {column} = ?", (value,))
        return None if row is None else person_from_sql(row)

    def faces(self, site_id: str, since: datetime | None) -> list[PersonRow]:
        since_sql, params = ("", (site_id,)) if since is None else (" AND updated_at >= ?", (site_id, utc_text(since)))
        rows = self._all(
            f"SELECT {', '.join(PERSON_COLUMNS)} FROM people "
            f"WHERE face_site_id = ? AND face_id IS NOT NULL AND face_encoding IS NOT NULL{since_sql} ORDER BY person_id",
            params,
        )
        return [person_from_sql(row) for row in rows]


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

    def take_from_bucket(self, family: str, key: str, now: float, rate: Rate, cost: float) -> float:
        """`limits.bucket_take` on the shared pair of `family`/`key`, atomically: 0 when taken,
        else the seconds to wait."""
        return self.update_limit(family, key, lambda pair: bucket_take(pair, now, rate, cost))

    def forget_limits(self, before: float) -> int:
        """Delete rate-limit state last changed before `before` (the limits' clock); how many went."""
        with self._tx() as conn:
            return conn.execute("DELETE FROM limit_state WHERE b < ?", (float(before),)).rowcount

    # migrations --------------------------------------------------------------------------------

    def _migrate(self, conn: Conn, script: Callable[[str], Any]) -> None:
        """Apply the `MIGRATIONS` not yet in schema_migrations; `script(sql)` runs one."""
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)")
        done = {row["version"] for row in conn.execute("SELECT version FROM schema_migrations", ()).fetchall()}
        for version, description, sql in MIGRATIONS:
            if version in done:
                continue
            if migration_sql(sql, self.DIALECT):
                script(migration_sql(sql, self.DIALECT))
            if version == 1:
                self._add_columns(conn)
            conn.execute(
                "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (version, description, utc_text(datetime.now(UTC))),
            )

    def _add_columns(self, conn: Conn) -> None:
        """Files from before schema_migrations may lack columns added since the first release."""

    def schema_version(self) -> int:
        row = self._one("SELECT MAX(version) AS v FROM schema_migrations", ())
        return int(row["v"] or 0)

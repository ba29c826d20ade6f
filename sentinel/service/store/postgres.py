"""The store on PostgreSQL, shared by any number of service processes or uvicorn workers.

psycopg 3 (imported only when a `postgresql://` URL is opened: the default needs no driver) and a
small connection pool per process, READ COMMITTED; what must not race is made safe by the
statements themselves or a transaction-scoped advisory lock (`_serialise`). Migrations run under
an advisory lock, so workers starting together migrate once.

When PostgreSQL restarts or a connection drops, the first use of a cut connection fails at once
(a transaction's BEGIN, or a read's one statement, before anything was changed); the pool drops
it, and the same work is tried on the next connection, up to `POOL_SIZE + 1` times. So the
service recovers by itself without paying a check round trip on every lend (psycopg_pool's
`check_connection` cost a quarter of a verify's CPU under load: docs/benchmarks.md). A request
that meets the outage waits at most `WAIT_S` for a connection and then fails as
`StoreUnavailable` (the service's 503), its transaction rolled back: never a wrong answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from sentinel.service.limits import Rate, bucket_take
from sentinel.service.store.base import Conn, Store, is_postgres_url


class PostgresStore(Store):
    DIALECT = "postgresql"
    #: connections per process: FastAPI's thread pool waits for one when all are busy
    POOL_SIZE = 8
    #: how long a request waits for a connection (all busy, or the server unreachable) before its 503
    WAIT_S = 3.0

    @staticmethod
    def handles(db: str | Path) -> bool:
        return is_postgres_url(db)

    def __init__(self, url: str, *, pool_size: int | None = None) -> None:
        import psycopg
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool, PoolTimeout

        self.path = url
        self._integrity = (psycopg.errors.IntegrityError,)
        self._cut = psycopg.OperationalError
        self._unavailable = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout)
        self._pool = ConnectionPool(
            # autocommit: a read is one round trip, not BEGIN, SELECT, COMMIT (READ COMMITTED
            # gives each statement its own snapshot either way); a change is still one
            # transaction (`_begin`: conn.transaction() sends BEGIN and COMMIT itself)
            url, min_size=1, max_size=pool_size or self.POOL_SIZE, kwargs={"row_factory": dict_row, "autocommit": True}, open=False,
            name="sentinel-store", timeout=self.WAIT_S,
        )  # fmt: skip
        self._pool.open(wait=True, timeout=10.0)
        try:
            with self._tx() as conn:
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('sentinel schema_migrations'))")
                self._migrate(conn, conn.raw.execute)
        except BaseException:
            self._pool.close()
            raise

    def close(self) -> None:
        self._pool.close()

    def _another_try(self, conn: Any, attempt: int) -> bool:
        """After an OperationalError on `conn`'s first use: try the next connection? Only when
        this one was cut (the pool drops it on return) and tries are left."""
        return bool(conn.broken) and attempt < self.POOL_SIZE

    @contextmanager
    def _begin(self) -> Iterator[Conn]:
        for attempt in range(self.POOL_SIZE + 1):
            with ExitStack() as stack:
                conn = stack.enter_context(self._pool.connection())
                try:
                    stack.enter_context(conn.transaction())  # BEGIN: a cut connection fails here
                except self._cut:
                    if self._another_try(conn, attempt):
                        continue
                    raise
                yield Conn(conn, "%s")
                return

    @contextmanager
    def _read(self) -> Iterator[Conn]:
        with self._pool.connection() as conn:
            yield Conn(conn, "%s")

    def _statement(self, work: Callable[[Conn], Any]) -> Any:
        """`work` (one statement) on a connection that answers; tried again on the next one when
        a cut connection fails it. Only for reads, which change nothing, and takes from a rate-limit
        bucket, where a statement that ran before its connection was cut costs one token more."""
        with self._reachable():
            for attempt in range(self.POOL_SIZE + 1):
                with self._read() as conn:
                    try:
                        return work(conn)
                    except self._cut:
                        if not self._another_try(conn.raw, attempt):
                            raise

    def _upsert_sql(self, table: str, columns: tuple[str, ...], key: str, replace: bool) -> str:
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        if replace:
            sql += f" ON CONFLICT ({key}) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in columns if c != key)
        return sql

    def _serialise(self, conn: Conn, names: list[str]) -> None:
        if names:
            conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext(n)) FROM (SELECT unnest(?::text[]) AS n ORDER BY 1) AS names",
                (sorted(names),),
            )

    def shares_limits(self) -> bool:
        return True

    #: `limits.bucket_take` as one upsert: the row lock of ON CONFLICT DO UPDATE orders concurrent
    #: takes on one key, and the SET expressions see the row as it was before this take
    _TAKE = (
        "INSERT INTO limit_state AS s (family, key, a, b, c) VALUES (%(family)s, %(key)s, %(fresh_a)s, %(now)s, %(fresh_wait)s) "
        "ON CONFLICT (family, key) DO UPDATE SET a = CASE WHEN {level} >= %(cost)s THEN {level} - %(cost)s ELSE {level} END, "
        "b = %(now)s, c = CASE WHEN {level} >= %(cost)s THEN 0.0 ELSE (%(cost)s - {level}) / %(per_s)s END RETURNING c"
    ).format(level="LEAST(%(burst)s, s.a + (%(now)s - s.b) * %(per_s)s)")

    def take_from_bucket(self, family: str, key: str, now: float, rate: Rate, cost: float) -> float:
        (fresh_a, _), fresh_wait = bucket_take(None, now, rate, cost)
        params = {"family": family, "key": key, "fresh_a": fresh_a, "fresh_wait": fresh_wait, "now": float(now),
                  "cost": float(cost), "burst": float(rate.burst), "per_s": float(rate.per_s)}  # fmt: skip
        return self._statement(lambda conn: float(conn.raw.execute(self._TAKE, params).fetchone()["c"]))

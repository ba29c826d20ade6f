"""The store on PostgreSQL, shared by any number of service processes or uvicorn workers.

psycopg 3 (imported only when a `postgresql://` URL is opened: the default needs no driver) and a
small connection pool per process, READ COMMITTED; what must not race is made safe by the
statements themselves or a transaction-scoped advisory lock (`_serialise`). Migrations run under
an advisory lock, so workers starting together migrate once.

When PostgreSQL restarts or a connection drops, the pool checks each connection before lending it
(`check_connection`) and opens new ones in the background, so the service recovers by itself; a
request that meets the outage waits at most `WAIT_S` for a connection and then fails as
`StoreUnavailable` (the service's 503), its transaction rolled back: never a wrong answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
        self._unavailable = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout)
        self._pool = ConnectionPool(
            # autocommit: a read is one round trip, not BEGIN, SELECT, COMMIT (READ COMMITTED
            # gives each statement its own snapshot either way); a change is still one
            # transaction (`_begin`: conn.transaction() sends BEGIN and COMMIT itself)
            url, min_size=1, max_size=pool_size or self.POOL_SIZE, kwargs={"row_factory": dict_row, "autocommit": True}, open=False,
            name="sentinel-store", check=ConnectionPool.check_connection, timeout=self.WAIT_S,
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

    @contextmanager
    def _begin(self) -> Iterator[Conn]:
        with self._pool.connection() as conn, conn.transaction():
            yield Conn(conn, "%s")

    @contextmanager
    def _read(self) -> Iterator[Conn]:
        with self._pool.connection() as conn:
            yield Conn(conn, "%s")

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

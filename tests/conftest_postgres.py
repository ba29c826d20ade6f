"""Fixtures that run the service's tests on both stores: SQLite (the default) and PostgreSQL.

`service_db` is parametrized: a SQLite file in the test's directory, or a fresh database in one
throwaway PostgreSQL server per test session (tests/postgres.py). Without the server packages or
psycopg the PostgreSQL half skips, with the reason, and the SQLite half still runs.
"""

from __future__ import annotations

import pytest

from tests.postgres import PostgresServer, find_binaries


@pytest.fixture(scope="session")
def postgres_server():
    bindir, why = find_binaries()
    if bindir is None:
        pytest.skip(why)
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"{exc.name} not installed (pip install 'psycopg[binary,pool]'; the service extra's PostgreSQL driver)")
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """A new, empty database of the session's PostgreSQL server."""
    return postgres_server.new_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def service_db(request, tmp_path):
    """What `ReferenceServer`/`--db` take: a SQLite file path, or a PostgreSQL URL."""
    if request.param == "sqlite":
        return tmp_path / "service.db"
    return request.getfixturevalue("postgres_url")

"""Runs the reference service with uvicorn in a background thread: a real HTTP server on a real
socket, so tests, the demo and a technician's bench exercise the same network path a device uses
(timeouts, dropped connections, oversized answers), which an in-process test client cannot.

The listening socket is bound here, before uvicorn starts, so `port=0` yields the real port at
once and there is no window where two servers race for a "free" port. With `certfile`/`keyfile` it
serves HTTPS; fault injection is off unless `fault_injection=True`; records past `retention` are
purged when it starts (and hourly by the app). The database is a SQLite file or a PostgreSQL URL
(`store.open_store`); several servers may share one PostgreSQL database. A request that finds the
database unreachable (`StoreUnavailable`, e.g. PostgreSQL restarting) is answered 503
`unavailable` with a Retry-After; the store's pool reconnects by itself.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Self

import uvicorn

from sentinel.service.state import purge_expired
from sentinel.service.app import create_app, utc_now
from sentinel.service.errors import error_response
from sentinel.service.faults import Faults, FaultState, hide_dropped_connections
from sentinel.service.limits import Limits
from sentinel.service.seed import SEEDS
from sentinel.service.store import Store, StoreUnavailable, describe_db, open_store
from sentinel.service.tokens import new_admin_token

log = logging.getLogger("sentinel.service")

START_TIMEOUT_S = 10.0


class ReferenceServer:
    """`with ReferenceServer(tmp_path / "svc.db", seed="demo") as srv: requests.get(srv.url + "/healthz")`;
    `db_path` may be a `postgresql://` URL instead (see store.py)."""

    def __init__(
        self,
        db_path: str | Path,
        *,
        seed: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        admin_token: str | None = None,
        faults: Faults | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] = utc_now,
        fault_injection: bool = False,
        limits: Limits | None = None,
        retention: timedelta | None = None,
        certfile: str | Path | None = None,
        keyfile: str | Path | None = None,
    ) -> None:
        """`fault_injection`: honour `faults`, `PUT /admin/faults` and the fault header (with the
        admin token); off by default, so tests that inject faults say so. `certfile`/`keyfile`:
        serve HTTPS. `retention`: purge records older than this on start and hourly."""
        if faults is not None and faults.active and not fault_injection:
            raise ValueError("faults given but fault_injection is off")
        if seed is not None and seed not in SEEDS:
            raise ValueError(f"unknown seed {seed!r}; known: {', '.join(SEEDS)}")
        self.db_path = db_path
        self.seed = seed
        self.host = host
        self.port = port
        self.admin_token = admin_token or new_admin_token()
        self.fault_state = FaultState(faults, rng)
        self.clock = clock
        self.fault_injection = fault_injection
        self.limits = limits
        self.retention = retention
        self.certfile, self.keyfile = certfile, keyfile
        self.store: Store | None = None
        self._server: uvicorn.Server | None = None
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.certfile else 'http'}://{host}:{self.port}"

    def start(self) -> str:
        """Open the database, seed it, listen, and return the base URL once requests are served."""
        if self._thread is not None:
            raise RuntimeError("already started")
        self.store = open_store(self.db_path)
        try:
            if self.seed:
                SEEDS[self.seed](self.store, self.clock())
            self._socket = _listen(self.host, self.port)
            self.port = self._socket.getsockname()[1]
            app = create_app(self.store, self.fault_state, self.admin_token, clock=self.clock,
                             fault_injection=self.fault_injection, limits=self.limits, retention=self.retention)  # fmt: skip
            app.add_exception_handler(StoreUnavailable, _unavailable)
            purge_expired(app, self.clock())
            config = uvicorn.Config(
                app,
                log_config=None,  # keep the host's logging (the journal on a Pi, pytest's capture in tests)
                access_log=False,  # access lines are noise here, and auth headers must never reach a log
                lifespan="off",
                http="h11",  # the same protocol everywhere, so a dropped connection drops the same way
                ws="none",
                server_header=False,
                timeout_graceful_shutdown=2,
                ssl_certfile=None if self.certfile is None else str(self.certfile),
                ssl_keyfile=None if self.keyfile is None else str(self.keyfile),
            )
            self._server = uvicorn.Server(config)
            hide_dropped_connections(logging.getLogger("uvicorn.error"))
            self._thread = threading.Thread(
                target=self._server.run, kwargs={"sockets": [self._socket]}, name="reference-service", daemon=True
            )
            self._thread.start()
            deadline = time.monotonic() + START_TIMEOUT_S
            while not self._server.started:
                if not self._thread.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError("the reference service did not start; see the log")
                time.sleep(0.01)
        except BaseException:
            self.stop()
            raise
        log.debug("reference health-status service at %s (db %s)", self.url, describe_db(self.db_path))
        return self.url

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=5)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(timeout=5)
        if self._socket is not None:
            self._socket.close()
        if self.store is not None:
            self.store.close()
        self._server = self._socket = self._thread = self.store = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


async def _unavailable(request, exc: StoreUnavailable):
    """The database could not be reached (PostgreSQL restarting): an honest "try again", never a
    guess; the device's client retries a 5xx later."""
    log.warning("database unavailable for %s %s: %s", request.method, request.url.path, exc)
    return error_response(503, "unavailable", "the service's database is unavailable; try again shortly", {"Retry-After": "2"})


def _listen(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock

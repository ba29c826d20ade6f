"""Assembles the reference health-status service: routers, error shape, faults, body limit.

Everything stateful (store, faults, admin token, clock, limits, retention) comes in as arguments,
so tests, the demo and the CLI each build the same app around their own database. Fault injection
is off unless asked for (`fault_injection=True`), and then only for the admin token; the body
limit counts streamed bytes too, so a chunked body cannot get past it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI

from sentinel import __version__
from sentinel.service import api_admin, api_v1
from sentinel.service.errors import install_error_handlers
from sentinel.service.faults import FaultMiddleware, FaultState
from sentinel.service.limits import Limits
from sentinel.service.state import PURGE_EVERY  # noqa: F401 (re-exported: its old home)
from sentinel.service.store import Store

log = logging.getLogger("sentinel.service")

#: 500 records of at most a few KB each fit easily; anything bigger is a bug or an attack
MAX_BODY_BYTES = 2 * 1024 * 1024

DESCRIPTION = """\
Reference implementation of the health-status service a digital sentinel talks to.
The contract is docs/api.md; `/admin` and the `X-Sentinel-Fault` header exist only here.
"""


class _BodyLimit:
    """Refuses oversize bodies: declared ones before reading them, and streamed ones (chunked, or
    longer than declared) as soon as the bytes received pass the limit, so no body over the limit
    is ever buffered (a reference server on a bench LAN still should not hold a gigabyte because
    a client sent one)."""

    def __init__(self, app, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def _refuse(self, send) -> None:
        body = json.dumps({"error": "too_large", "message": f"request body over {self.limit} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = next((v for k, v in scope["headers"] if k == b"content-length"), b"0")
        if length.isdigit() and int(length) > self.limit:
            await self._refuse(send)
            return
        received, over, started = 0, False, False

        async def counted_receive():
            nonlocal received, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    over = True  # the app sees the client gone and stops reading
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message) -> None:
            nonlocal started
            if over and not started:
                return  # whatever the app answers to a cut-off body is replaced by the 413
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not over:
                raise
        if over and not started:
            log.warning("refused a streamed request body over %d bytes from %s", self.limit, (scope.get("client") or ("?",))[0])
            await self._refuse(send)


def utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(
    store: Store,
    faults: FaultState | None,
    admin_token: str,
    *,
    clock: Callable[[], datetime] = utc_now,
    fault_injection: bool = False,
    limits: Limits | None = None,
    retention: timedelta | None = None,
) -> FastAPI:
    """`fault_injection`: obey server-wide faults and the `X-Sentinel-Fault` header (with the
    admin token); off, faults are never applied and `PUT /admin/faults` is refused.
    `retention`: records received longer ago than this are purged (None: kept)."""
    if not admin_token:
        raise ValueError("an admin token is required")
    app = FastAPI(title="Digital sentinel health-status service (reference)", version=__version__, description=DESCRIPTION)
    app.state.store = store
    app.state.faults = faults or FaultState()
    app.state.admin_token = admin_token
    app.state.clock = clock
    app.state.fault_injection = fault_injection
    app.state.limits = limits = limits or Limits()
    if store.shares_limits() and limits.shared is None:
        limits.share(store)  # several processes share the database: they share the limits too
    app.state.retention = retention
    app.state.last_purge = None
    install_error_handlers(app)
    app.include_router(api_v1.router)
    app.include_router(api_admin.router)

    @app.get("/healthz", tags=["health"], summary="Liveness; never affected by faults")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    # Added last = outermost: an injected fault happens before anything else, like a real proxy.
    app.add_middleware(_BodyLimit, limit=MAX_BODY_BYTES)
    app.add_middleware(FaultMiddleware, state=app.state.faults, enabled=fault_injection, admin_token=admin_token)
    return app

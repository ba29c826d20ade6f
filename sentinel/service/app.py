"""Assembles the reference health-status service: routers, error shape, faults, body limit.

Everything stateful (store, faults, admin token, clock) comes in as arguments, so tests, the demo
and the CLI each build the same app around their own database.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import FastAPI

from sentinel import __version__
from sentinel.service import api_admin, api_v1
from sentinel.service.errors import install_error_handlers
from sentinel.service.faults import FaultMiddleware, FaultState
from sentinel.service.store import Store

#: 500 records of at most a few KB each fit easily; anything bigger is a bug or an attack
MAX_BODY_BYTES = 2 * 1024 * 1024

DESCRIPTION = """\
Reference implementation of the health-status service a digital sentinel talks to.
The contract is docs/api.md; `/admin` and the `X-Sentinel-Fault` header exist only here.
"""


class _BodyLimit:
    """Refuses declared oversize bodies before reading them (a reference server on a bench LAN
    still should not buffer a gigabyte because a client said so)."""

    def __init__(self, app, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            length = next((v for k, v in scope["headers"] if k == b"content-length"), b"0")
            if length.isdigit() and int(length) > self.limit:
                body = json.dumps({"error": "too_large", "message": f"request body over {self.limit} bytes"}).encode()
                await send({"type": "http.response.start", "status": 413,
                            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})  # fmt: skip
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(
    store: Store,
    faults: FaultState | None,
    admin_token: str,
    *,
    clock: Callable[[], datetime] = utc_now,
) -> FastAPI:
    if not admin_token:
        raise ValueError("an admin token is required")
    app = FastAPI(title="Digital sentinel health-status service (reference)", version=__version__, description=DESCRIPTION)
    app.state.store = store
    app.state.faults = faults or FaultState()
    app.state.admin_token = admin_token
    app.state.clock = clock
    install_error_handlers(app)
    app.include_router(api_v1.router)
    app.include_router(api_admin.router)

    @app.get("/healthz", tags=["health"], summary="Liveness; never affected by faults")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    # Added last = outermost: an injected fault happens before anything else, like a real proxy.
    app.add_middleware(_BodyLimit, limit=MAX_BODY_BYTES)
    app.add_middleware(FaultMiddleware, state=app.state.faults)
    return app

"""Fault injection: the reference service misbehaving the way real backends and networks did.

Real health-status services answered in 2 to 30 s, returned 5xx under load, and sat behind
proxies and captive portals that answered 200 with an HTML page; mobile links dropped mid-answer.
A device must survive all of that, so the reference service can do each on purpose, either for
every request (server setting: CLI flags or `PUT /admin/faults`) or for one request (the
`X-Sentinel-Fault` header, e.g. `latency=2.5;status=503`). Header fields override the server's;
`none` in the header switches the server's faults off for that request.

Faults touch `/v1/` only: `/admin` and `/healthz` must keep working so a test can turn faults off.
Nothing here happens unless the service was started with fault injection enabled
(`--allow-fault-injection`, `ReferenceServer(fault_injection=True)`), and the header counts only next
to the admin token (`X-Sentinel-Fault-Token`, or as the bearer token): a device cannot inject faults.

Two families, on purpose:
- `status` and `error_rate` refuse the request before it is handled (nothing is stored);
- `garbage`, `oversized` and `drop` let the request be handled and then spoil the answer, which is
  the case idempotent record upload exists for (stored, but the device never heard so).
`latency` delays the request before either and never blocks other requests (asyncio.sleep).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

log = logging.getLogger("sentinel.service")

FAULT_HEADER = "X-Sentinel-Fault"
#: the admin token, which the fault header needs next to it (a device token cannot inject faults)
FAULT_TOKEN_HEADER = "X-Sentinel-Fault-Token"
DEFAULT_OVERSIZED_BYTES = 4 * 1024 * 1024
#: what a captive portal or a confused proxy answers, with a JSON content type to make it worse
GARBAGE_BODY = b"<html><head><title>Login</title></head><body>Please log in to use the Wi-Fi\x00\xff</body></html>"


class Faults(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_s: float = Field(0.0, ge=0, le=300, title="Latency", description="Seconds to wait before handling the request")
    error_rate: float = Field(0.0, ge=0, le=1, title="Error rate", description="Probability of answering 500 instead")
    status: int | None = Field(None, ge=400, le=599, title="Status", description="Answer every request with this status")
    garbage: bool = Field(False, title="Garbage", description="Answer 200 with a non-JSON body labelled application/json")
    oversized_bytes: int = Field(
        0, ge=0, le=256 * 1024 * 1024, title="Oversized", description="Pad the JSON answer to about this many bytes (0: off)"
    )
    drop: bool = Field(False, title="Drop", description="Close the connection in the middle of the answer")

    @property
    def active(self) -> bool:
        return self != Faults()


class FaultSpecError(ValueError):
    pass


class DroppedConnection(Exception):
    """Raised after the response has started, so that the server closes the connection mid-answer."""


#: header spelling → Faults field
_KEYS = {
    "latency": "latency_s",
    "error_rate": "error_rate",
    "status": "status",
    "garbage": "garbage",
    "oversized": "oversized_bytes",
    "drop": "drop",
}
_FLAGS = {"garbage", "drop", "oversized"}


def parse_spec(spec: str) -> tuple[bool, dict[str, Any]]:
    """`latency=2.5; status=503; garbage` → (clear server faults?, fields set by the spec).

    Raises FaultSpecError with a message fit for an API error answer.
    """
    clear, fields = False, {}
    for part in spec.split(";"):
        part = part.strip()
        if not part:
            continue
        key, has_value, value = (s.strip() for s in part.partition("="))
        key = key.lower()
        if key == "none" and not has_value:
            clear = True
            continue
        if key not in _KEYS:
            raise FaultSpecError(f"unknown fault {key!r}; known: none, {', '.join(_KEYS)}")
        if not has_value:
            if key not in _FLAGS:
                raise FaultSpecError(f"fault {key!r} needs a value, e.g. {key}=…")
            value = DEFAULT_OVERSIZED_BYTES if key == "oversized" else True
        fields[_KEYS[key]] = value
    try:
        Faults(**fields)
    except ValidationError as exc:
        problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
        raise FaultSpecError(f"bad fault value: {problems}") from None
    return clear, fields


class FaultState:
    """The server's current faults (changed at run time by the admin API) and the dice for error_rate."""

    def __init__(self, faults: Faults | None = None, rng: random.Random | None = None) -> None:
        self._faults = faults or Faults()
        self._lock = threading.Lock()
        self.rng = rng or random.Random()

    @property
    def faults(self) -> Faults:
        return self._faults

    def set(self, faults: Faults) -> None:
        with self._lock:
            self._faults = faults

    def for_request(self, header: str | None) -> Faults:
        if header is None:
            return self._faults
        clear, fields = parse_spec(header)
        base = Faults() if clear else self._faults
        return Faults(**{**base.model_dump(), **fields})

    def roll(self, rate: float) -> bool:
        with self._lock:
            return rate > 0 and self.rng.random() < rate


async def _send_json(send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": payload})


class FaultMiddleware:
    """Pure ASGI (not Starlette's BaseHTTPMiddleware): dropping a connection mid-answer needs the
    raw `send`, and sleeping must stay a coroutine so other requests go on meanwhile."""

    def __init__(self, app, state: FaultState, enabled: bool = False, admin_token: str = "") -> None:
        self.app = app
        self.state = state
        self.enabled = enabled
        self.admin_token = admin_token

    def _from_admin(self, headers) -> bool:
        """The fault header counts only next to the admin token: as `X-Sentinel-Fault-Token` or as
        the bearer token of the request."""
        import hmac

        for k, v in headers:
            given = None
            if k == FAULT_TOKEN_HEADER.lower().encode():
                given = v.strip()
            elif k == b"authorization" and v[:7].lower() == b"bearer ":
                given = v[7:].strip()
            if given and self.admin_token and hmac.compare_digest(given, self.admin_token.encode()):
                return True
        return False

    async def __call__(self, scope, receive, send) -> None:
        if not self.enabled or scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        header = next((v.decode("latin-1") for k, v in scope["headers"] if k == FAULT_HEADER.lower().encode()), None)
        if header is not None and not self._from_admin(scope["headers"]):
            log.warning("ignored an X-Sentinel-Fault header without the admin token")
            header = None
        try:
            faults = self.state.for_request(header)
        except FaultSpecError as exc:
            await _send_json(send, 400, {"error": "bad_fault_header", "message": str(exc)})
            return
        if not faults.active:
            await self.app(scope, receive, send)
            return
        if faults.latency_s:
            await asyncio.sleep(faults.latency_s)
        if self.state.roll(faults.error_rate):
            await _send_json(send, 500, {"error": "injected_fault", "message": "error_rate fault (reference service)"})
            return
        if faults.status is not None:
            await _send_json(send, faults.status, {"error": "injected_fault", "message": f"status={faults.status} fault (reference service)"})
            return
        if not (faults.garbage or faults.oversized_bytes or faults.drop):
            await self.app(scope, receive, send)
            return
        await self._spoil(faults, scope, receive, send)

    async def _spoil(self, faults: Faults, scope, receive, send) -> None:
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        body = b"".join(chunks)
        if faults.drop:
            await send({**start, "type": "http.response.start"})
            if len(body) > 1:
                await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
            raise DroppedConnection("drop fault (reference service)")
        if faults.garbage:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(GARBAGE_BODY)).encode())]})  # fmt: skip
            await send({"type": "http.response.body", "body": GARBAGE_BODY})
            return
        try:
            answer = json.loads(body) if body else {}
        except ValueError:
            answer = {}
        if not isinstance(answer, dict):
            answer = {"answer": answer}
        answer = {"padding": "x" * faults.oversized_bytes, **answer}
        await _send_json(send, start.get("status", 200), answer)


class _HideDroppedConnections(logging.Filter):
    """uvicorn logs every exception escaping the app with a traceback; an injected drop is not a bug."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], DroppedConnection))


def hide_dropped_connections(logger: logging.Logger) -> None:
    if not any(isinstance(f, _HideDroppedConnections) for f in logger.filters):
        logger.addFilter(_HideDroppedConnections())

"""The bind call over HTTP: `POST /v1/devices/bind` (docs/api.md), a code in, a device token out.

A second HTTP client beside `sentinel.client` on purpose: it runs once, from the CLI, and must
tell the technician in one line what went wrong with a code that may now be spent. It shares the
verify client's TLS session and overall deadline (`sentinel.client.watched_session`,
`overall_deadline`), never `verify=False` and never follows a redirect (it could carry the code and
the token to plain http).

Failure: every problem is a `BindError` (one line, never the token): no connection, TLS, the
deadline, a redirect, a service error code (`_BIND_ERRORS`), an answer that is not JSON, too big
(`MAX_ANSWER_BYTES`), off the contract, for another device, or a token that cannot be a header.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import requests
from pydantic import ValidationError

from sentinel import __version__
from sentinel.client import marker_reason, overall_deadline, watched_session
from sentinel.client import tls_reason as _tls_reason
from sentinel.config import is_loopback_host
from sentinel.contract import BindResponse
from sentinel.textsafe import printable

#: the bind call's overall deadline (connect, send, every read of the answer), enforced by the same
#: watchdog as verify (sentinel/http_deadline.py): a server that trickles its answer cannot hold it
TIMEOUT_S = 20.0
#: how long connecting may take, within the deadline
CONNECT_TIMEOUT_S = 10.0
#: a bind answer is a few hundred bytes; anything near this is not a sentinel service
MAX_ANSWER_BYTES = 64 * 1024
#: a bearer token is one header line; refuse to store anything that could not be one
MAX_TOKEN_CHARS = 4096

_TOKEN = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII, no space: fits a header and a one-line file

#: service error code → what the technician should do
_BIND_ERRORS = {
    "code_unknown": "binding code not known to the service: check it, or ask for a new one",
    "code_used": "binding code already used (codes are single-use): ask for a new one",
    "code_expired": "binding code has expired: ask for a new one",
    "device_exists": "this device id is already bound: re-binding it is an admin action at the service "
    "(POST /admin/devices/{id}/rebind-allowed); the code was not used",
    "wrong_site": "this device id belongs to another site: check device.id, or ask the service's admin",
    "rate_limited": "too many binding attempts from here: wait a few minutes and try again",
}


class BindError(Exception):
    """Binding failed; the message is one line for the technician and never contains the token."""


def check_server_url(server: str) -> str:
    """The base URL without a trailing slash; BindError unless it is http(s)://host[:port][/path]."""
    server = server.strip().rstrip("/")
    try:
        parts = urlsplit(server)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise BindError(f"--server {server!r} is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment or parts.username:
        raise BindError(f"--server {server!r} must look like https://host[:port], without user, query or fragment")
    return server


def request_binding(
    server: str, code: str, device_id: str, ca_bundle: Path | None = None, *, timeout_s: float = TIMEOUT_S
) -> BindResponse:
    """POST /v1/devices/bind; the validated answer, or BindError with one line for the technician."""
    url = f"{server}/v1/devices/bind"
    spent = "; if the service got the request, the code may be used up"
    late = f"the service at {server} did not answer within {timeout_s:.0f} s{spent}"
    session = watched_session(ca_bundle)  # never verify=False: the token must reach only the service
    try:
        with overall_deadline(timeout_s) as watch:
            try:
                response = session.post(
                    url,
                    json={"code": code, "device_id": device_id},
                    headers={"Accept": "application/json", "User-Agent": f"digital-sentinel/{__version__}"},
                    timeout=(min(CONNECT_TIMEOUT_S, timeout_s), timeout_s),
                    allow_redirects=False,  # a redirect could take the code and the token to plain http
                    stream=True,
                )
            except requests.exceptions.SSLError as e:
                if watch.fired:
                    raise BindError(late) from None
                hint = "give the service's CA certificate with --ca-bundle" if ca_bundle is None else f"is {ca_bundle} the right CA?"
                raise BindError(f"TLS verification failed for {server} ({_tls_reason(e)}): {hint}") from None
            except requests.exceptions.ConnectTimeout:
                raise BindError(f"cannot reach the service at {server}: no connection within {min(CONNECT_TIMEOUT_S, timeout_s):.0f} s") from None
            except requests.exceptions.ReadTimeout:
                raise BindError(late) from None
            except requests.RequestException as e:
                if watch.fired:  # the deadline cut a status line or headers still trickling in
                    raise BindError(late) from None
                if isinstance(e, requests.exceptions.ConnectionError):
                    raise BindError(f"cannot reach the service at {server}: {_connection_reason(e)}") from None
                raise BindError(f"cannot reach the service at {server}: {type(e).__name__}") from None
            with response:
                raw = _read_limited(response, server, timeout_s, spent, watch)
            if watch.fired:  # cut mid-headers, http.client may hand back what it had as an answer
                raise BindError(late)
    finally:
        session.close()
    status = response.status_code
    if 300 <= status < 400:
        where = one_line(response.headers.get("Location", "?"), 120)
        raise BindError(f"the service at {server} redirected to {where}: give the final URL with --server")
    if status >= 400:
        code_name, message = _api_error(raw)
        if code_name in _BIND_ERRORS:
            raise BindError(_BIND_ERRORS[code_name])
        if code_name == "bad_request":
            raise BindError(f"the service refused the request as malformed: {message or 'no details'}")
        if status >= 500:
            what = f"HTTP {status} {code_name}" if code_name else f"HTTP {status}"
            raise BindError(f"the service at {server} failed ({what}): try again later{spent}")
        if code_name:
            raise BindError(f"the service refused the binding: HTTP {status} {code_name}" + (f": {message}" if message else ""))
        raise BindError(f"the service at {server} answered HTTP {status} without a service error: is --server the health-status service?")
    if status != 200:
        raise BindError(f"malformed answer from the service: HTTP {status} instead of 200{spent}")
    try:
        body = json.loads(raw)
    except ValueError:
        raise BindError(f"malformed answer from the service: not JSON ({len(raw)} bytes){spent}") from None
    try:
        answer = BindResponse.model_validate(body)
    except ValidationError as e:
        fields = sorted({".".join(str(p) for p in err["loc"]) or "(body)" for err in e.errors()})[:5]
        raise BindError(f"malformed answer from the service: does not match the contract ({', '.join(fields)}){spent}") from None
    if answer.device_id != device_id:
        raise BindError(f"malformed answer from the service: it bound device {answer.device_id!r}, not {device_id!r}{spent}")
    if len(answer.token) > MAX_TOKEN_CHARS or not _TOKEN.match(answer.token):
        raise BindError(f"malformed answer from the service: the token is empty, too long or has spaces or control characters{spent}")
    return answer


def _read_limited(response: requests.Response, server: str, timeout_s: float, spent: str, watch) -> bytes:
    too_big = f"malformed answer from the service: over {MAX_ANSWER_BYTES // 1024} KiB, not a bind answer{spent}"
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
        raise BindError(too_big)
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(chunk_size=16 * 1024):
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                raise BindError(too_big)
            if watch.fired:
                raise BindError(f"the service at {server} did not answer within {timeout_s:.0f} s{spent}")
            chunks.append(chunk)
    except requests.RequestException as e:
        if watch.fired or "timed out" in str(e).lower():
            raise BindError(f"the service at {server} did not answer within {timeout_s:.0f} s{spent}") from None
        raise BindError(f"the connection to {server} dropped in the middle of the answer{spent}") from None
    return b"".join(chunks)


def _api_error(raw: bytes) -> tuple[str | None, str]:
    try:
        body = json.loads(raw)
    except ValueError:
        return None, ""
    if not isinstance(body, dict) or not isinstance(body.get("error"), str) or not body["error"].isidentifier():
        return None, ""
    message = body.get("message")
    return body["error"], one_line(message, 200) if isinstance(message, str) else ""


def one_line(text: str, limit: int) -> str:
    text = "".join(c if c.isprintable() else " " for c in printable(text, limit * 4)).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


#: connection failures by a marker in the library's text, each with the fixed words said instead
_CONNECTION_MARKERS = (
    ("Connection refused", "connection refused (wrong port, or the service is down)"),
    ("Name or service not known", "host name not found"),
    ("nodename nor servname", "host name not found"),
    ("Temporary failure in name resolution", "host name not found (no DNS?)"),
    ("No route to host", "no route to host"),
    ("Network is unreachable", "network unreachable (no link or no address?)"),
    ("timed out", "connection timed out"),
    ("ProxyError", "the proxy refused the connection"),
    ("RemoteDisconnected", "the server closed the connection without an answer"),
    ("Connection reset", "the connection was reset"),
)


def _connection_reason(error: Exception) -> str:
    return marker_reason(error, _CONNECTION_MARKERS)


def plain_http_off_host(server: str) -> bool:
    parts = urlsplit(server)
    return parts.scheme == "http" and not is_loopback_host(parts.hostname or "")

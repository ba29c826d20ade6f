"""The device's client of the health-status service (docs/api.md).

Real backends answered in 2–30 s; a gate cannot wait that long. So each check has one overall
deadline (connect + send + every read of the body), answers are read with a size limit and
validated against the contract's models, and every fault becomes a status (`timeout`,
`verify_failed`, `device_unauthorized`) instead of an exception out of the kiosk loop.

It fails closed. Only "the service could not be reached in time" (no connection, a dropped one,
the deadline, HTTP 429/502/503/504) is `timeout`, for the site's offline policy. Anything the
device does not understand or trust is `verify_failed`, a staff check: a TLS failure (logged as
an error: someone may be in the middle), a redirect (never followed, on any call: it could take
the token to plain http or another host), any other HTTP status, a body that is not JSON, too
large, or not the contract (a time without a zone, a status the service may not send). The
contract's own device errors (401 `unauthorized` / `token_revoked`, 403 `wrong_site` /
`wrong_device`) are `device_unauthorized`. Each carries a short `status_detail` code that goes
into the check record; network text reaches a log only escaped and bounded. TLS trusts the
configured CA bundle or the default store, never one named by the environment.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import requests
from pydantic import BaseModel, ValidationError
from requests.sessions import merge_setting

from sentinel import __version__
from sentinel.contract import Heartbeat, HeartbeatAck, RecordsAccepted
from sentinel.credentials import Credential
from sentinel.health import HealthStatus, Status
from sentinel.http_deadline import WATCHDOG, Watch, WatchedAdapter, current
from sentinel.verifier import Verifier

log = logging.getLogger("sentinel.client")

#: A verify answer is a few hundred bytes; anything near this is a broken or hostile server.
MAX_ANSWER_BYTES = 64 * 1024
#: Records uploads and listings are bigger (500 records a batch).
MAX_BULK_ANSWER_BYTES = 4 * 1024 * 1024
#: A site's face gallery: about 2.6 kB of JSON per enrolled face (128 numbers), so ~12,000 faces.
MAX_FACES_ANSWER_BYTES = 32 * 1024 * 1024
#: Retry a failed verify only if at least this much of the deadline is left.
MIN_RETRY_BUDGET_S = 0.3

#: the contract's errors that mean "this device is refused", with the HTTP status each comes with
_DEVICE_ERRORS = {"unauthorized": 401, "token_revoked": 401, "wrong_site": 403, "wrong_device": 403}
#: verify faults that mean "the service could not be reached in time": the offline policy decides
_OFFLINE_REASONS = {"connection", "http_429", "http_502", "http_503", "http_504"}
#: of those, the ones worth one retry within the deadline (429 asks the device to back off)
_RETRY_REASONS = {"connection", "http_502", "http_503", "http_504"}
#: a contract model a `_contract` answer is read as
_Answer = TypeVar("_Answer", bound=BaseModel)


def clock_offset(sent_at: datetime, received_at: datetime, answered_at: datetime) -> float:
    """Device clock minus service clock, in seconds, from one exchange: the device's wall clock
    when it sent (`sent_at`) and got the answer (`answered_at`), and the service clock in the
    answer (`received_at`, e.g. `HeartbeatAck.received_at`), taken as the middle of the exchange."""
    middle = sent_at + (answered_at - sent_at) / 2
    return (middle - received_at).total_seconds()


class ClientError(Exception):
    """A call that did not produce a valid answer; `code` is short and safe to log."""

    def __init__(self, code: str, message: str, http_status: int | None = None):
        self.code = code
        self.http_status = http_status
        super().__init__(message)


class _Deadline(Exception):
    pass


class StrictSession(requests.Session):
    """A Session that trusts only its own `verify` and never follows a redirect.

    TLS: `verify` is True (the default store) or a CA bundle; requests would otherwise let
    REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE in the environment replace the default store
    (merge_environment_settings), silently trusting whatever that file holds.
    Redirects: a 3xx comes back as it is. Even with allow_redirects=False requests works out the
    next request from the Location header, and raises UnicodeDecodeError out of `request()` on a
    Location that is not UTF-8; there is no redirect target here at all."""

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        settings["verify"] = merge_setting(verify, self.verify)
        return settings

    def get_redirect_target(self, resp):
        return None


def watched_session(ca_bundle: Path | str | None = None) -> StrictSession:
    """A StrictSession whose connections the deadline watchdog can cut, trusting the CA bundle or
    the default store: ServiceClient's, and `sentinel bind`'s (which has no token yet and bounds
    its call with `overall_deadline`)."""
    session = StrictSession()
    adapter = WatchedAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.verify = str(ca_bundle) if ca_bundle else True
    return session


@contextlib.contextmanager
def overall_deadline(timeout_s: float) -> Iterator[Watch]:
    """One overall deadline for the HTTP exchange this thread makes in the body through a
    `watched_session` (request, headers and every read of the body): at `timeout_s` its socket is
    shut down, so a blocked read ends at once. `watch.fired` says whether that happened: then any
    exception out of `requests` means "no answer in time"."""
    watch = Watch()
    current.watch = watch
    WATCHDOG.arm(watch, time.monotonic() + timeout_s)
    try:
        yield watch
    finally:
        WATCHDOG.disarm(watch)
        current.watch = None


#: TLS failures by a marker in the library's text, each with the fixed words said instead
_TLS_MARKERS = (
    ("Hostname mismatch", "certificate is for another host name"),
    ("IP address mismatch", "certificate is for another host name"),
    ("hostname", "certificate is for another host name"),
    ("certificate has expired", "certificate expired (or the device clock is wrong)"),
    ("CERTIFICATE_VERIFY_FAILED", "certificate not trusted"),
    ("certificate verify failed", "certificate not trusted"),
    ("WRONG_VERSION_NUMBER", "the server does not speak TLS there; http:// instead of https://?"),
    ("Could not find a suitable TLS CA certificate bundle", "CA bundle not usable"),
)


def marker_reason(error: Exception, markers: tuple[tuple[str, str], ...]) -> str:
    """The fixed words of the first (marker, reason) whose marker is in the error's text, else the
    error's type name: never the library's text itself, which may quote the peer."""
    text = str(error)
    for marker, reason in markers:
        if marker in text:
            return reason
    return type(error).__name__


def tls_reason(error: Exception) -> str:
    """A TLS failure in a few fixed words (never the library's text, which quotes the peer)."""
    return marker_reason(error, _TLS_MARKERS)


def _safe(text: str, limit: int = 80) -> str:
    """Text that came from the network, for a log line: quoted, ASCII-escaped, bounded."""
    return ascii(text[:limit]) + ("..." if len(text) > limit else "")


def read_token(path: Path) -> str:
    """The bearer token from its root-only file; the message never contains the token."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ClientError("no_token", f"device token file {path} does not exist: bind the device first (sentinel bind)") from None
    except PermissionError:
        raise ClientError("no_token", f"cannot read the device token file {path}: permission denied") from None
    except UnicodeDecodeError:  # its message quotes bytes of the file: never pass it on
        raise ClientError("no_token", f"device token file {path} is empty or malformed (not UTF-8)") from None
    except OSError as e:  # a directory, an I/O error on a dying SD card, …
        raise ClientError("no_token", f"cannot read the device token file {path}: {e.strerror or type(e).__name__}") from None
    if not token or any(c.isspace() for c in token):
        raise ClientError("no_token", f"device token file {path} is empty or malformed")
    return token


class ServiceClient(Verifier):
    """The verifier seam's real backend, and the uploader's transport. One `requests.Session`
    (kept-alive connections matter at 0.2 s per person) per device."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        device_id: str,
        site_id: str,
        ca_bundle: Path | None = None,
        connect_timeout_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.base_url = base_url.rstrip("/")
        self.device_id = device_id
        self.site_id = site_id
        self.connect_timeout_s = connect_timeout_s
        self._clock = clock
        # TLS is verified by default; a CA bundle pins a private CA, never `verify=False`; the
        # environment never changes either (StrictSession).
        self._session = watched_session(ca_bundle)
        self._session.headers.update(
            {"Authorization": f"Bearer {token}", "User-Agent": f"digital-sentinel/{__version__}", "Accept": "application/json"}
        )

    # --- calls ----------------------------------------------------------------------------

    def verify(self, credential: Credential, timeout_s: float) -> HealthStatus:
        """Never raises. Verify only reads, so it is retried once after a dropped connection or a
        502/503/504 while at least MIN_RETRY_BUDGET_S of the deadline is left."""
        deadline = self._clock() + timeout_s
        body = {
            "device_id": self.device_id,
            "site_id": self.site_id,
            "credential": {"kind": credential.kind.value, "value": credential.value},
            "scanned_at": datetime.now(UTC).isoformat(),
        }
        for attempt in (1, 2):
            try:
                answer = self._call("POST", "/v1/verify", deadline, json_body=body, limit=MAX_ANSWER_BYTES)
            except _Deadline:
                return _offline("deadline", f"no answer within {timeout_s:.1f} s")
            except ClientError as e:
                if e.code in _DEVICE_ERRORS and e.http_status == _DEVICE_ERRORS[e.code]:
                    log.error("the service refused this device: %s (%s)", e.code, e)
                    return HealthStatus.unreachable(Status.DEVICE_UNAUTHORIZED, e.code, e.code)
                reason = _verify_reason(e)
                if reason in _OFFLINE_REASONS:
                    if reason in _RETRY_REASONS and attempt == 1 and deadline - self._clock() >= MIN_RETRY_BUDGET_S:
                        log.info("verify failed (%s), retrying once", reason)
                        continue
                    return _offline(reason, f"{e.code}: {e}")
                return _failed(reason, f"{e.code}: {e}")
            return _verify_answer(answer)
        raise AssertionError("unreachable")  # pragma: no cover

    def upload_records(self, records: list[dict[str, Any]], timeout_s: float = 10.0) -> list[str]:
        """Returns the ids the service acknowledged; raises ClientError when nothing was acknowledged."""
        return list(self.upload_records_detailed(records, timeout_s).accepted)

    def upload_records_detailed(self, records: list[dict[str, Any]], timeout_s: float = 10.0) -> RecordsAccepted:
        """The whole answer: `accepted` ids (delete them) and `rejected` ones (set them aside, never
        retry: wrong_device, wrong_site, id_conflict). Raises ClientError when there is no valid answer."""
        answer = self._ask("POST", "/v1/records", timeout_s, json_body={"records": records}, limit=MAX_BULK_ANSWER_BYTES)
        return _contract(RecordsAccepted, answer, "records")

    def list_records(self, since: str | None = None, timeout_s: float = 10.0, limit: int = 500) -> list[dict[str, Any]]:
        """This device's records as the service stored them (audits, tests), all pages."""
        out: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            params = {"device_id": self.device_id, "limit": limit}
            if since:
                params["since"] = since
            if after:
                params["after"] = after
            page = self._ask("GET", "/v1/records", timeout_s, params=params, limit=MAX_BULK_ANSWER_BYTES)
            out.extend(page.get("records", []))
            after = page.get("next_after")
            if not after:
                return out

    def heartbeat(self, body: Heartbeat, timeout_s: float = 5.0) -> HeartbeatAck:
        """Send the device's health (`POST /v1/devices/{id}/heartbeat`, about every 60 s). Returns
        the service's ack, whose `received_at` (service clock) lets the caller work out the device's
        clock offset for the next heartbeat: `clock_offset(sent_at, ack)`. Raises ClientError."""
        answer = self._ask(
            "POST", f"/v1/devices/{self.device_id}/heartbeat", timeout_s, json_body=body.model_dump(mode="json"), limit=MAX_ANSWER_BYTES
        )
        return _contract(HeartbeatAck, answer, "heartbeat")

    def revoke(self, timeout_s: float = 5.0) -> bool:
        """Revoke this device's own token at the service (`POST /v1/devices/{id}/revoke`, for
        `sentinel wipe`): True once the service answered that the token no longer works. Idempotent
        at the service. Raises ClientError (code `timeout` past the deadline)."""
        answer = self._ask("POST", f"/v1/devices/{self.device_id}/revoke", timeout_s, limit=MAX_ANSWER_BYTES)
        if not (isinstance(answer, dict) and answer.get("revoked") is True):
            raise ClientError("malformed", "revoke answer does not say the token is revoked")
        return True

    def faces(self, since: datetime | None = None, timeout_s: float = 30.0):
        """The site's face gallery (`GET /v1/faces`): every entry, or those enrolled or changed at
        or after `since` (the `as_of` of the previous answer). Returns a `contract.FaceGallery`;
        raises ClientError. Gallery sync runs off the kiosk loop: give it its own client."""
        from sentinel.contract import FaceGallery

        params = {"site_id": self.site_id}
        if since is not None:
            params["since"] = since.isoformat()
        answer = self._ask("GET", "/v1/faces", timeout_s, params=params, limit=MAX_FACES_ANSWER_BYTES)
        gallery = _contract(FaceGallery, answer, "faces")
        if gallery.site_id != self.site_id:
            raise ClientError("malformed", f"faces answer is for site {gallery.site_id}, not {self.site_id}")
        return gallery

    def close(self) -> None:
        self._session.close()

    # --- one HTTP exchange under a deadline ------------------------------------------------

    def _ask(self, method: str, path: str, timeout_s: float, *, limit: int, json_body=None, params=None) -> Any:
        """`_call` with a deadline `timeout_s` from now; ClientError `timeout` past it."""
        try:
            return self._call(method, path, self._clock() + timeout_s, limit=limit, json_body=json_body, params=params)
        except _Deadline:
            raise ClientError("timeout", f"no answer within {timeout_s:.0f} s") from None

    def _call(self, method: str, path: str, deadline: float, *, limit: int, json_body=None, params=None) -> Any:
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise _Deadline
        watch = Watch()
        current.watch = watch
        WATCHDOG.arm(watch, time.monotonic() + remaining)
        try:
            return self._exchange(method, path, deadline, remaining, watch, limit=limit, json_body=json_body, params=params)
        finally:
            WATCHDOG.disarm(watch)
            current.watch = None

    def _exchange(self, method, path, deadline, remaining, watch: Watch, *, limit, json_body, params) -> Any:
        try:
            response = self._session.request(
                method,
                self.base_url + path,
                json=json_body,
                params=params,
                timeout=(min(self.connect_timeout_s, remaining), remaining),
                stream=True,
                allow_redirects=False,  # a redirect could take the token to plain http or another host
            )
        except requests.Timeout:
            raise _Deadline from None
        except requests.exceptions.SSLError as e:
            raise ClientError("tls", f"TLS verification failed: {tls_reason(e)}") from None
        except requests.exceptions.ConnectionError as e:
            if watch.fired or deadline - self._clock() <= 0:
                raise _Deadline from None
            raise ClientError("connection", f"cannot reach {self.base_url}: {type(e).__name__}") from None
        except requests.RequestException as e:  # a header or URL requests cannot use: not a network fault
            if watch.fired or deadline - self._clock() <= 0:
                raise _Deadline from None
            raise ClientError("protocol", f"unusable HTTP answer from {path}: {type(e).__name__}") from None
        except OSError as e:  # requests raises a bare OSError for a CA bundle path that does not exist
            raise ClientError("tls", f"TLS set-up failed: {e}") from None
        with response:
            raw = self._read_limited(response, deadline, limit, watch)
        status = response.status_code
        if 300 <= status < 400:
            where = _safe(response.headers.get("Location", ""))
            raise ClientError("redirect", f"HTTP {status} from {path}: redirect to {where} not followed", status)
        if status != 200:  # every answer of the contract is a 200
            if status >= 500:
                code = "server_error"
            else:
                code = (_error_code(raw) if status >= 400 else None) or f"http_{status}"
            raise ClientError(code, f"HTTP {status} from {path}", status)
        try:
            return json.loads(raw)
        except ValueError:
            raise ClientError("malformed", f"answer from {path} is not JSON ({len(raw)} bytes)") from None

    def _read_limited(self, response: requests.Response, deadline: float, limit: int, watch: Watch) -> bytes:
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise ClientError("oversized", f"answer of {declared} bytes is over the {limit}-byte limit")
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(chunk_size=16 * 1024):
                size += len(chunk)
                if size > limit:
                    raise ClientError("oversized", f"answer is over the {limit}-byte limit")
                if self._clock() > deadline:
                    raise _Deadline
                chunks.append(chunk)
        except requests.exceptions.ConnectionError as e:  # includes read timeouts mid-body
            if watch.fired or self._clock() > deadline or "timed out" in str(e).lower():
                raise _Deadline from None
            raise ClientError("connection", f"connection dropped mid-answer: {type(e).__name__}") from None
        except requests.exceptions.ChunkedEncodingError as e:  # mostly a connection cut mid-chunk
            if watch.fired:  # the watchdog cut a body that was still trickling in
                raise _Deadline from None
            raise ClientError("connection", f"connection dropped mid-answer: {type(e).__name__}") from None
        except requests.RequestException as e:  # e.g. a body that is not in its declared Content-Encoding
            if watch.fired:
                raise _Deadline from None
            raise ClientError("protocol", f"unusable answer body: {type(e).__name__}") from None
        return b"".join(chunks)


def _contract(model: type[_Answer], answer: Any, what: str) -> _Answer:
    """The answer as the contract's `model`; ClientError `malformed` when it does not fit."""
    try:
        return model.model_validate(answer)
    except ValidationError as e:
        raise ClientError("malformed", f"{what} answer does not match the contract ({e.error_count()} errors)") from None


def _error_code(raw: bytes) -> str | None:
    """The contract's error code of an error answer (ApiError), or None for any other body."""
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    code = body.get("error") if isinstance(body, dict) else None
    return code if isinstance(code, str) and _ERROR_CODE.fullmatch(code) else None


_ERROR_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}", re.ASCII)


# --- verify: what a fault means for the check ------------------------------------------------------


def _verify_reason(e: ClientError) -> str:
    """The `status_detail` code of a verify call that raised ClientError (docs/api.md)."""
    if e.code in ("tls", "connection", "redirect", "protocol"):
        return e.code
    if e.code == "malformed":
        return "not_json"
    if e.code == "oversized":
        return "too_large"
    if e.http_status is not None:
        return f"http_{e.http_status}"
    return "error"


def _offline(reason: str, detail: str) -> HealthStatus:
    log.info("verify: the service could not be reached in time (%s): the offline policy decides", reason)
    return HealthStatus.unreachable(Status.TIMEOUT, detail, reason)


def _failed(reason: str, detail: str) -> HealthStatus:
    if reason == "tls":
        log.error(
            "verify failed (tls): %s; every check is a staff check until this is fixed. Is the clock right? "
            "Is verifier.ca_bundle the service's CA? Is something intercepting the connection?",
            detail,
        )
    else:
        log.warning("verify failed (%s): %s; staff check", reason, detail)
    return HealthStatus.unreachable(Status.VERIFY_FAILED, detail, reason)


def _verify_answer(answer: Any) -> HealthStatus:
    """A 200 answer as a status the policy may act on, or verify_failed with why not."""
    if isinstance(answer, dict) and "status_detail" in answer:  # device-side only, never the service's
        return _failed("schema", "malformed answer: it sets status_detail, which only the device sets")
    try:
        status = HealthStatus.model_validate(answer)
    except ValidationError as e:
        errors = e.errors()
        where = ", ".join(_safe(".".join(str(p) for p in err["loc"]) or "(body)", 40) for err in errors[:3])
        bad_status = any(tuple(err["loc"]) == ("status",) and err["type"] != "missing" for err in errors)
        reason = "unknown_status" if bad_status else "schema"
        return _failed(reason, f"malformed answer: {len(errors)} schema errors ({where})")
    if status.status.is_device_side:
        return _failed("unknown_status", f"the service answered status {status.status.value}, which only the device sets")
    return status


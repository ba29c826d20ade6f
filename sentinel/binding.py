"""Binding a device to a site: trade a one-time code for the device token (docs/api.md,
`POST /v1/devices/bind`), keep the token in a root-only file and write the device's identity into
its config file.

A binding code works once, and the token it buys is shown once. So everything that can be checked
before the code is spent is checked first (the arguments, the config file as it is and as it will
be, that the files can be written), and the answer is checked (its site is the one the technician
meant, the config it leads to validates) before anything is written. The token is written before
the config, because it is the one thing that cannot be had again without a new code.

Every failure is a `BindError` whose message is one line for the technician, and no message, log
line or result ever carries the token.

Records waiting in the outbox were made under the binding the device has now: each names its
device and site, and the service takes a record only from the device it names, bound to the site
it names (docs/api.md: `wrong_device`, `wrong_site`). So, before the code is spent:

- records of the same device and site as the new binding (a new token for the same place) are
  simply uploaded with the new token: a warning says how many;
- records of another device or site would be refused once the binding changes (the old token
  stops working too) and set aside by the uploader, never delivered. The bind stops there unless
  the technician confirms (`confirm_waiting`, the CLI's `--yes` or its question on a terminal);
  the message says how many, and to run `sentinel outbox flush` first.

And a bind that changes a value the config already had (the site name a technician typed, the
device or site id, the service URL) says so, old -> new, among its warnings.

The call has one overall deadline (`TIMEOUT_S`, connect + send + every read), enforced by the
verify client's watchdog (`sentinel.client.overall_deadline`), not per socket read. Text from the
service (the site's name and address, error messages) passes `sentinel.textsafe.printable` before
it is written to the config, printed or logged: no escape sequences, no line breaks, no bidi marks.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import stat
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import tomlkit
import tomlkit.items
from pydantic import ValidationError

from sentinel import __version__
from sentinel.atomic import write_atomic
from sentinel.client import overall_deadline, watched_session
from sentinel.client import tls_reason as _tls_reason
from sentinel.config import (
    ID_PATTERN,
    ConfigError,
    DeviceConfig,
    HttpVerifierConfig,
    SentinelConfig,
    is_loopback_host,
    parse_config,
)
from sentinel.contract import BindResponse, Site
from sentinel.textsafe import printable

log = logging.getLogger("sentinel.binding")

DEFAULT_CONFIG_PATH = Path("/etc/sentinel/sentinel.toml")
#: the id a config has before its device was ever bound (config/default.toml, DeviceConfig)
PLACEHOLDER_DEVICE_ID = "unbound-device"
MACHINE_ID_PATH = Path("/etc/machine-id")
#: the bind call's overall deadline (connect, send, every read of the answer), enforced by the same
#: watchdog as verify (sentinel/http_deadline.py): a server that trickles its answer cannot hold it
TIMEOUT_S = 20.0
#: how long connecting may take, within the deadline
CONNECT_TIMEOUT_S = 10.0
#: a bind answer is a few hundred bytes; anything near this is not a sentinel service
MAX_ANSWER_BYTES = 64 * 1024
#: a bearer token is one header line; refuse to store anything that could not be one
MAX_TOKEN_CHARS = 4096
#: DeviceConfig.site_name is shown in a status bar and allows fewer characters than Site.name
MAX_SITE_NAME_CHARS: int = next(
    (m.max_length for m in DeviceConfig.model_fields["site_name"].metadata if getattr(m, "max_length", None)), 80
)

_ID = re.compile(ID_PATTERN)
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


@dataclass(frozen=True)
class BindResult:
    device_id: str
    site: Site
    server: str
    config_path: Path
    config_created: bool
    token_file: Path
    token_replaced: bool
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class WaitingRecords:
    """Records waiting in the outbox, by the device and site they were made as."""

    path: Path
    by_binding: dict[tuple[str, str], int]  # (device_id, site_id) -> records
    error: str = ""  # the outbox could not be read: how many wait is unknown

    @property
    def total(self) -> int:
        return sum(self.by_binding.values())

    def made_as(self, device_id: str, site_id: str) -> int:
        return self.by_binding.get((device_id, site_id), 0)

    def others(self, device_id: str, site_id: str) -> dict[tuple[str, str], int]:
        return {k: n for k, n in self.by_binding.items() if k != (device_id, site_id)}


def waiting_records(outbox_path: Path | str) -> WaitingRecords:
    """Count the outbox's waiting records by (device, site), read-only (the kiosk may be running)."""
    import sqlite3

    from sentinel.outbox import readonly_uri

    path = Path(outbox_path)
    if not path.exists():
        return WaitingRecords(path, {})
    try:
        db = sqlite3.connect(readonly_uri(path), uri=True, isolation_level=None)
    except sqlite3.Error as e:
        return WaitingRecords(path, {}, str(e))
    try:
        db.execute("PRAGMA busy_timeout=5000")
        rows = db.execute(
            "SELECT json_extract(body, '$.device_id'), json_extract(body, '$.site_id'), COUNT(*) FROM records GROUP BY 1, 2"
        ).fetchall()
    except sqlite3.Error as e:
        return WaitingRecords(path, {}, str(e))
    finally:
        db.close()
    return WaitingRecords(path, {(str(d), str(s)): n for d, s, n in rows if n})


def _waiting_message(waiting: WaitingRecords, device_id: str, site: str) -> str:
    others = waiting.others(device_id, site)
    n = sum(others.values())
    made = ", ".join(f"{count} as device {d} at site {s}" for (d, s), count in sorted(others.items()))
    return (
        f"{n} record(s) waiting in the outbox {waiting.path} were made under the old binding ({made}); "
        f"once this device is bound as {device_id} at site {site} the service refuses them (wrong_device / wrong_site) "
        f"and they are set aside undelivered (`sentinel outbox export --rejected` can still carry them out): "
        f"upload them first with `sentinel outbox flush`"
    )


# --- the whole job -------------------------------------------------------------------------------


def bind_device(
    server: str,
    site: str,
    code: str,
    device_id: str | None = None,
    config_path: Path | str = DEFAULT_CONFIG_PATH,
    token_file: Path | str | None = None,
    ca_bundle: Path | str | None = None,
    *,
    timeout_s: float = TIMEOUT_S,
    machine_id_path: Path = MACHINE_ID_PATH,
    confirm_waiting: Callable[[str], bool] | None = None,
) -> BindResult:
    """Bind this device to `site` with a one-time `code` from the service at `server`.

    `device_id`: None keeps the config's id, or makes one from the machine when the config has
    none. `token_file`: None uses the config's `verifier.token_file`. `confirm_waiting(message)`:
    asked, before the code is spent, whether to go on although records made under another binding
    wait in the outbox (module docstring); None or False stops with BindError. Raises BindError."""
    server = check_server_url(server)
    if not _ID.match(site):
        raise BindError(f"--site {site!r} is not a valid site id (letters, digits, '.', '_', '-'; at most 64)")
    code = code.strip()
    if not code or len(code) > 64 or not code.isprintable():
        raise BindError("the binding code must be 1 to 64 printable characters")
    if device_id is not None and not _ID.match(device_id):
        raise BindError(f"--device-id {device_id!r} is not a valid device id (letters, digits, '.', '_', '-'; at most 64)")
    ca_path = None
    if ca_bundle is not None:
        ca_path = Path(ca_bundle).absolute()
        if not ca_path.is_file():
            raise BindError(f"CA bundle {ca_path} is not a file")

    config_path = Path(os.path.realpath(config_path))  # a symlinked config stays a symlink
    doc, current, config_exists = read_config(config_path)

    if device_id is None:
        device_id = current.device.id if current.device.id != PLACEHOLDER_DEVICE_ID else machine_device_id(machine_id_path)
    token_path = Path(token_file).absolute() if token_file is not None else Path(current.verifier.token_file)
    if not token_path.is_absolute():
        raise BindError(f"the config's verifier.token_file {str(token_path)!r} is not an absolute path: give --token-file")
    if token_path == config_path:
        raise BindError(f"the token file and the config file are the same file ({token_path})")

    updates = {"device_id": device_id, "site_id": site, "url": server}
    # Only what the technician asked for explicitly, so that the kiosk finds the token and trusts the CA.
    if token_file is not None and token_path != Path(current.verifier.token_file):
        updates["token_file"] = str(token_path)
    if ca_path is not None and ca_path != current.verifier.ca_bundle:
        updates["ca_bundle"] = str(ca_path)

    # Before the code is spent: the config as it will be must validate, and both files must be writable.
    render_config(doc, config_path, site_name="", **updates)
    _check_writable(config_path, "config file")
    _check_writable(token_path, "token file")

    warnings: list[str] = []
    waiting = waiting_records(current.outbox_path)
    if waiting.error:
        warnings.append(
            f"cannot read the outbox {waiting.path} ({waiting.error}): records made under the old binding may be waiting; "
            f"see `sentinel outbox status`"
        )
    if waiting.others(device_id, site):
        message = _waiting_message(waiting, device_id, site)
        if confirm_waiting is None or not confirm_waiting(message):
            raise BindError(f"{message}, or bind again with --yes to go on without them; nothing sent, the code is not used")
        warnings.append(message.replace("upload them first with `sentinel outbox flush`", "bound anyway, as confirmed"))
    same = waiting.made_as(device_id, site)
    if same:
        warnings.append(
            f"{same} record(s) waiting in the outbox {waiting.path} were made as device {device_id} at site {site}: "
            f"they are uploaded with the new token"
        )

    answer = request_binding(server, code, device_id, ca_path, timeout_s=timeout_s)

    if answer.site.id != site:
        rebound = device_id == current.device.id and token_path.exists()
        old_token = " (the token this device had no longer works)" if rebound else ""
        raise BindError(
            f"the code is for site {answer.site.id!r} ({_one_line(answer.site.name, 100)}), not {site!r} as given with --site: "
            f"nothing written; the service has used the code and moved device {device_id} to {answer.site.id!r}{old_token}: "
            f"ask for a code for {site!r} and bind again"
        )
    site_name = printable(answer.site.name, MAX_SITE_NAME_CHARS).strip()
    new_text = render_config(doc, config_path, site_name=site_name, **updates)

    token_replaced = token_path.exists()
    try:
        # The config's folder first (0755, the kiosk reads the config), so that a token file next to
        # the config does not make the shared folder root-only.
        if not config_path.parent.exists():
            config_path.parent.mkdir(mode=0o755, parents=True)
        write_secret_file(token_path, answer.token)
    except OSError as e:
        raise BindError(
            f"the service bound device {device_id} to {site!r}, but writing the token to {token_path} failed "
            f"({_os_reason(e)}); the code is used up: fix that and bind again with a new code"
        ) from None
    try:
        _write_config_text(config_path, new_text)
    except OSError as e:
        raise BindError(
            f"token saved in {token_path}, but writing {config_path} failed ({_os_reason(e)}); "
            f"bind again with a new code once it is writable"
        ) from None

    if config_exists:
        warnings += _local_changes(current, device_id=device_id, site_id=site, site_name=site_name, url=server,
                                   token_file=updates.get("token_file"), ca_bundle=updates.get("ca_bundle"))
    if _plain_http_off_host(server):
        warnings.append(f"{server} is plain HTTP to another machine: the token crossed the network unencrypted; use https outside a bench LAN")
    if len(answer.site.name) > MAX_SITE_NAME_CHARS:
        warnings.append(f"site name shortened to {MAX_SITE_NAME_CHARS} characters in the config")
    log.debug("bound device %s to site %s", device_id, site)
    return BindResult(
        device_id=device_id,
        site=answer.site,
        server=server,
        config_path=config_path,
        config_created=not config_exists,
        token_file=token_path,
        token_replaced=token_replaced,
        warnings=warnings,
    )


def _local_changes(current: SentinelConfig, **new: str | None) -> list[str]:
    """`key: old -> new` for each value the config already had (not a placeholder or default) that
    the bind replaces."""
    defaults = SentinelConfig()
    old = {
        "device_id": (current.device.id, "device.id", PLACEHOLDER_DEVICE_ID),
        "site_id": (current.device.site_id, "device.site_id", defaults.device.site_id),
        "site_name": (current.device.site_name, "device.site_name", ""),
        "url": (current.verifier.url, "verifier.url", HttpVerifierConfig().url),
        "token_file": (str(current.verifier.token_file), "verifier.token_file", str(HttpVerifierConfig().token_file)),
        "ca_bundle": (str(current.verifier.ca_bundle) if current.verifier.ca_bundle else "", "verifier.ca_bundle", ""),
    }
    changes = []
    for name, value in new.items():
        was, key, unset = old[name]
        if value is None or value == was or was == unset:
            continue
        extra = " (the name the service has for the site)" if name == "site_name" else ""
        changes.append(f"{key} changed: {_one_line(was, 100)!r} -> {_one_line(value, 100)!r}{extra}")
    return changes


# --- the service ---------------------------------------------------------------------------------


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
        where = _one_line(response.headers.get("Location", "?"), 120)
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
    return body["error"], _one_line(message, 200) if isinstance(message, str) else ""


def _one_line(text: str, limit: int) -> str:
    text = "".join(c if c.isprintable() else " " for c in printable(text, limit * 4)).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _connection_reason(error: Exception) -> str:
    text = str(error)
    for marker, reason in (
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
    ):
        if marker in text:
            return reason
    return type(error).__name__


def _plain_http_off_host(server: str) -> bool:
    parts = urlsplit(server)
    return parts.scheme == "http" and not is_loopback_host(parts.hostname or "")


# --- the device id -------------------------------------------------------------------------------


def machine_device_id(machine_id_path: Path = MACHINE_ID_PATH) -> str:
    """`sentinel-` and 8 hex digits, the same on every bind of this machine.

    Derived from /etc/machine-id by a keyed hash, not copied from it: systemd asks applications not
    to expose the machine id itself. Random when there is no machine id (then the config keeps it)."""
    try:
        machine_id = machine_id_path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        machine_id = ""
    if re.fullmatch(r"[0-9a-f]{32}", machine_id):
        suffix = hashlib.sha256(f"digital-sentinel device id:{machine_id}".encode()).hexdigest()[:8]
    else:
        suffix = secrets.token_hex(4)
    return f"sentinel-{suffix}"


# --- the config file -----------------------------------------------------------------------------


def read_config(path: Path) -> tuple[tomlkit.TOMLDocument, SentinelConfig, bool]:
    """The file as an editable document, its validated content, and whether it exists. A file that
    exists must be valid now: binding spends a code, so a broken file stops it before that."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return tomlkit.document(), SentinelConfig(), False
    except IsADirectoryError:
        raise BindError(f"config {path} is a directory, not a file") from None
    except PermissionError:
        raise BindError(f"cannot read config {path}: permission denied (run as root)") from None
    except UnicodeDecodeError as e:
        raise BindError(f"config {path} is not UTF-8 text (byte {e.start}): fix it before binding") from None
    except OSError as e:
        raise BindError(f"cannot read config {path}: {_os_reason(e)}") from None
    try:
        doc = tomlkit.parse(text)
        data = tomllib.loads(text)
    except Exception as e:  # tomlkit and tomllib raise their own parse errors
        raise BindError(f"config {path} is not valid TOML ({_one_line(str(e), 120)}): fix it before binding") from None
    try:
        current = parse_config(data, str(path))
    except ConfigError as e:
        raise BindError(f"config {path} is not valid ({'; '.join(e.problems)}): fix it before binding (sentinel check-config)") from None
    return doc, current, True


def update_config(
    config_path: Path | str,
    *,
    device_id: str,
    site_id: str,
    site_name: str,
    url: str,
    token_file: str | None = None,
    ca_bundle: str | None = None,
) -> bool:
    """Set the binding's keys in a config file, keeping its comments and other keys; the file and
    its sections are created when missing. The result is validated before the file is replaced
    (atomically). Returns True when the file was created. Raises BindError."""
    path = Path(os.path.realpath(config_path))
    doc, _current, exists = read_config(path)
    text = render_config(
        doc, path, device_id=device_id, site_id=site_id, site_name=site_name, url=url, token_file=token_file, ca_bundle=ca_bundle
    )
    try:
        _write_config_text(path, text)
    except OSError as e:
        raise BindError(f"writing config {path} failed: {_os_reason(e)}") from None
    return not exists


def render_config(
    doc: tomlkit.TOMLDocument,
    path: Path,
    *,
    device_id: str,
    site_id: str,
    site_name: str,
    url: str,
    token_file: str | None = None,
    ca_bundle: str | None = None,
) -> str:
    """The config text with the binding's keys set (on a copy of `doc`), validated. BindError if
    the result would not load."""
    doc = tomlkit.parse(tomlkit.dumps(doc))  # a copy: the caller renders twice from the same document
    if not doc.body:
        doc.add(tomlkit.comment("Digital sentinel configuration; [device] and the service URL were set by `sentinel bind`."))
        doc.add(tomlkit.comment("Every other key is optional: see config/default.toml. Check with `sentinel check-config FILE`."))
        doc.add(tomlkit.nl())
    device = {"id": device_id, "site_id": site_id, "site_name": site_name}
    verifier: dict[str, str] = {"url": url}
    if token_file is not None:
        verifier["token_file"] = token_file
    if ca_bundle is not None:
        verifier["ca_bundle"] = ca_bundle
    _set_keys(doc, "device", device)
    _set_keys(doc, "verifier", verifier, first={"type": "http"})
    text = tomlkit.dumps(doc)

    try:
        data = tomllib.loads(text)
        config = parse_config(data, str(path))
    except tomllib.TOMLDecodeError as e:  # pragma: no cover - tomlkit wrote it
        raise BindError(f"updating config {path} would make it unreadable TOML ({e}); nothing written") from None
    except ConfigError as e:
        raise BindError(f"config {path} would not be valid after binding ({'; '.join(e.problems)}); nothing written") from None
    got = (config.device.id, config.device.site_id, config.device.site_name, config.verifier.url)
    if got != (device_id, site_id, site_name, url):  # pragma: no cover - a tomlkit surprise, caught before writing
        raise BindError(f"updating config {path} did not give the expected values; nothing written: set [device] by hand")
    return text


def _set_keys(doc: tomlkit.TOMLDocument, section: str, values: dict[str, Any], first: dict[str, Any] | None = None) -> None:
    if section not in doc:
        table = tomlkit.table()
        for key, value in {**(first or {}), **values}.items():
            table[key] = value
        doc[section] = table
        return
    table = doc[section]
    for key, value in (first or {}).items():
        if key not in table:
            _add_key(table, key, value)
    for key, value in values.items():
        if key in table:
            table[key] = value  # tomlkit keeps the line's comment
        else:
            _add_key(table, key, value)


def _add_key(table: Any, key: str, value: Any) -> None:
    """A new key goes after the table's last key rather than at its very end, where it would land
    below a comment that introduces the next section."""
    if isinstance(table, tomlkit.items.Table):
        plain = [k for k in table.keys() if not isinstance(table[k], (tomlkit.items.Table, tomlkit.items.AoT))]
        if plain:
            try:
                table.value._insert_after(plain[-1], key, tomlkit.item(value))
                return
            except Exception:  # noqa: BLE001 - private API; the plain assignment below always works
                log.debug("tomlkit insert after %s failed; appending %s", plain[-1], key)
    table[key] = value


def _write_config_text(path: Path, text: str) -> None:
    """Atomically replace (or create, 0644) the config file, keeping an existing file's mode and owner."""
    try:
        st = path.stat()
    except FileNotFoundError:
        st = None
    if st is None and not path.parent.exists():
        path.parent.mkdir(mode=0o755, parents=True)
    mode = stat.S_IMODE(st.st_mode) if st else 0o644
    owner = (st.st_uid, st.st_gid) if st else None
    write_atomic(path, text.encode("utf-8"), mode, owner=owner)


# --- files ---------------------------------------------------------------------------------------


def write_secret_file(path: Path | str, secret: str) -> None:
    """Write `secret` and a newline to a root-only (0600) file, atomically: a temporary 0600 file
    in the same folder, fsync, rename over the target, fsync the folder. The folder is created 0700
    when missing. The file is never readable by others, not even for a moment."""
    if not secret or "\n" in secret or "\r" in secret:
        raise ValueError("a secret is one non-empty line")
    path = Path(path)
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
        os.chmod(path.parent, 0o700)  # whatever the umask
    write_atomic(path, (secret + "\n").encode("utf-8"), 0o600)


def _check_writable(path: Path, what: str) -> None:
    """Whether `path` can be created or replaced: its nearest existing folder is writable."""
    if path.is_dir():
        raise BindError(f"{what} {path} is a directory")
    folder = path.parent
    while not folder.exists():
        if folder.parent == folder:
            break
        folder = folder.parent
    if not folder.is_dir():
        raise BindError(f"cannot write the {what} {path}: {folder} is not a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise BindError(f"cannot write the {what} {path}: {folder} is not writable (run as root); nothing was sent to the service")


def _os_reason(error: OSError) -> str:
    return error.strerror or type(error).__name__

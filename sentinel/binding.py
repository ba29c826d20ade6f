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
import os
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sentinel.binding_http import (  # noqa: F401 (BindError, request_binding: imported from here by the CLI and tests)
    TIMEOUT_S,
    BindError,
    check_server_url,
    one_line,
    plain_http_off_host,
    request_binding,
)
from sentinel.binding_toml import (  # noqa: F401 (update_config, write_secret_file: imported from here by tests)
    check_writable,
    os_reason,
    read_config,
    render_config,
    update_config,
    write_config_text,
    write_secret_file,
)
from sentinel.config import ID_PATTERN, DeviceConfig, HttpVerifierConfig, SentinelConfig
from sentinel.contract import Site
from sentinel.textsafe import printable

log = logging.getLogger("sentinel.binding")

DEFAULT_CONFIG_PATH = Path("/etc/sentinel/sentinel.toml")
#: the id a config has before its device was ever bound (config/default.toml, DeviceConfig)
PLACEHOLDER_DEVICE_ID = "unbound-device"
MACHINE_ID_PATH = Path("/etc/machine-id")
#: DeviceConfig.site_name is shown in a status bar and allows fewer characters than Site.name
MAX_SITE_NAME_CHARS: int = next(
    (m.max_length for m in DeviceConfig.model_fields["site_name"].metadata if getattr(m, "max_length", None)), 80
)

_ID = re.compile(ID_PATTERN)

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
    check_writable(config_path, "config file")
    check_writable(token_path, "token file")

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
            f"the code is for site {answer.site.id!r} ({one_line(answer.site.name, 100)}), not {site!r} as given with --site: "
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
            f"({os_reason(e)}); the code is used up: fix that and bind again with a new code"
        ) from None
    try:
        write_config_text(config_path, new_text)
    except OSError as e:
        raise BindError(
            f"token saved in {token_path}, but writing {config_path} failed ({os_reason(e)}); "
            f"bind again with a new code once it is writable"
        ) from None

    if config_exists:
        warnings += _local_changes(current, device_id=device_id, site_id=site, site_name=site_name, url=server,
                                   token_file=updates.get("token_file"), ca_bundle=updates.get("ca_bundle"))
    if plain_http_off_host(server):
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
        changes.append(f"{key} changed: {one_line(was, 100)!r} -> {one_line(value, 100)!r}{extra}")
    return changes


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

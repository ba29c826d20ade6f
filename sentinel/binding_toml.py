"""The bind's edits of the config file: set `[device]` and `[verifier]` keys in the TOML as the
technician wrote it (comments, order and layout kept, by tomlkit), and write the token file.

The new text is validated as a whole config before anything is written, and written atomically
with the old file's mode and owner (`sentinel.atomic.write_atomic`); the token file is 0600 in a
0700 folder. Failure: a `BindError` (one line for the technician) for a config that is unreadable,
not UTF-8, not valid TOML or not a valid config, would not be valid after the edit, or cannot be
written; nothing is written then.
"""

from __future__ import annotations

import logging
import os
import stat
import tomllib
from pathlib import Path
from typing import Any

import tomlkit
import tomlkit.items

from sentinel.atomic import write_atomic
from sentinel.binding_http import BindError, one_line
from sentinel.config import ConfigError, SentinelConfig, parse_config

log = logging.getLogger("sentinel.binding")

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
        raise BindError(f"cannot read config {path}: {os_reason(e)}") from None
    try:
        doc = tomlkit.parse(text)
        data = tomllib.loads(text)
    except Exception as e:  # tomlkit and tomllib raise their own parse errors
        raise BindError(f"config {path} is not valid TOML ({one_line(str(e), 120)}): fix it before binding") from None
    try:
        current = parse_config(data, str(path))
    except ConfigError as e:
        raise BindError(f"config {path} is not valid ({'; '.join(e.problems)}): fix it before binding (sentinel check-config)") from None
    return doc, current, True


def update_config(config_path: Path | str, **keys: str | None) -> bool:
    """Set the binding's keys (`device_id=`, `site_id=`, ... as `render_config` takes them) in a
    config file, keeping its comments and other keys; the file and its sections are created when
    missing. The result is validated before the file is replaced (atomically). Returns True when
    the file was created. Raises BindError (TypeError for a key `render_config` does not take)."""
    path = Path(os.path.realpath(config_path))
    doc, _current, exists = read_config(path)
    text = render_config(doc, path, **keys)  # type: ignore[arg-type]  # render_config names and types the keys
    try:
        write_config_text(path, text)
    except OSError as e:
        raise BindError(f"writing config {path} failed: {os_reason(e)}") from None
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


def write_config_text(path: Path, text: str) -> None:
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


def check_writable(path: Path, what: str) -> None:
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


def os_reason(error: OSError) -> str:
    return error.strerror or type(error).__name__

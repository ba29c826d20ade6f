"""`sentinel wipe`: destroy this device's local personal data (retired or handed-over devices).

Destroys the outbox (records waiting and records set aside), copies of a corrupt outbox, the
status cache, the record key and the face gallery, by overwriting then deleting each file. Asks for
the device id to be typed (or `--yes`), refuses while the kiosk runs, and refuses while records
are still waiting for upload unless `--discard-undelivered` says that is intended (deliver them
with `sentinel outbox flush`, or carry them out with `sentinel outbox export`, first).

Run with sudo, it reads the config as root, then does everything else as the kiosk's `sentinel`
user where one exists (sentinel/state_files.py `as_state_owner`), and never follows a symbolic
link in the state directory: a link where a file belongs is removed, a link where a directory
belongs is refused in one line and the command exits 1 (sentinel/wipe.py).

The device token (the config's `verifier.token_file`, root's file) goes too: a wiped device must
not keep a working credential. Once the wipe is confirmed, wipe asks the service to revoke the
token (`POST /v1/devices/{id}/revoke`, a 5 s deadline), then overwrites and deletes the file
either way, and says which: "token revoked at the service and destroyed", or "service
unreachable: token destroyed here only; revoke it at the service: ..." (then the token still
works at the service until an operator revokes the device there).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sentinel.commands._config import USAGE_ERROR, load_or_report

NAME = "wipe"
HELP = "destroy local personal data: outbox, status cache, record key, face gallery"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="/etc/sentinel/sentinel.toml", help="config file (default /etc/sentinel/sentinel.toml)")
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.add_argument(
        "--discard-undelivered",
        action="store_true",
        help="wipe even though records are still waiting for upload (they are lost for contact tracing)",
    )
    parser.add_argument("--dry-run", action="store_true", help="list what would be destroyed, destroy nothing")


def run(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return USAGE_ERROR
    from sentinel.state_files import as_state_owner

    token = _Token.read(config)  # as root, before dropping to the kiosk's user
    with as_state_owner(state_dir=config.device.state_dir) as owner:
        code = _wipe(args, config, owner, token)
    if token.go:
        code = max(code, token.retire(config))
    return code


#: how long wipe waits for the service to revoke the token
REVOKE_TIMEOUT_S = 5.0


class _Token:
    """The device token file, read as root before the wipe drops privileges; `go` once the wipe
    was confirmed (not a dry run, not refused)."""

    def __init__(self, path: Path | None, value: str | None, problem: str = ""):
        self.path = path
        self.value = value
        self.problem = problem
        self.go = False

    @classmethod
    def read(cls, config) -> _Token:
        from sentinel.client import ClientError, read_token

        configured = getattr(config.verifier, "token_file", None)
        if configured is None:
            return cls(None, None)
        path = Path(configured)
        if not (path.exists() or path.is_symlink()):
            return cls(None, None)
        try:
            return cls(path, read_token(path))
        except ClientError as e:
            return cls(path, None, str(e))

    def retire(self, config) -> int:
        """Revoke at the service when it can be reached, destroy the file either way; say which."""
        from sentinel.wipe import shred

        assert self.path is not None
        url = getattr(config.verifier, "url", "")
        revoked, why = False, self.problem or "no token to revoke"
        if self.value and url:
            revoked, why = _revoke(config, url, self.value)
        elif self.value:
            why = "no service URL in the config"
        try:
            shred(self.path)
        except FileNotFoundError:
            pass
        except OSError as e:
            print(f"sentinel wipe: could not destroy the device token {self.path}: {e.strerror or type(e).__name__}", file=sys.stderr)
            return 1
        if revoked:
            print(f"device token {self.path}: token revoked at the service and destroyed")
            return 0
        how = f"on {url}: POST /admin/devices/{config.device.id}/revoke" if url else f"for device {config.device.id}"
        print(
            f"sentinel wipe: device token {self.path}: service unreachable ({why}): token destroyed here only; "
            f"revoke it at the service: {how} (or ask its operator to revoke device {config.device.id})",
            file=sys.stderr,
        )
        return 0


def _revoke(config, url: str, token: str) -> tuple[bool, str]:
    """(True, "") once the service revoked the token; (False, why) otherwise. Never raises."""
    from sentinel.client import ClientError, ServiceClient

    try:
        client = ServiceClient(
            url, token, device_id=config.device.id, site_id=config.device.site_id,
            ca_bundle=getattr(config.verifier, "ca_bundle", None), connect_timeout_s=REVOKE_TIMEOUT_S,
        )
    except Exception as e:  # noqa: BLE001 - a bad CA path and the like: the token is destroyed anyway
        return False, type(e).__name__
    try:
        client.revoke(timeout_s=REVOKE_TIMEOUT_S)
        return True, ""
    except ClientError as e:
        if e.http_status == 401:  # unknown or already revoked: the token works nowhere
            return True, ""
        return False, e.code
    except Exception as e:  # noqa: BLE001
        return False, type(e).__name__
    finally:
        client.close()


def _wipe(args: argparse.Namespace, config, owner, token: _Token | None = None) -> int:
    from sentinel.outbox import inspect
    from sentinel.state_lock import StateLock, StateLockHeld
    from sentinel.wipe import WEAR_LEVELLING_NOTE, personal_data, refused, wipe

    state_dir = config.device.state_dir
    outbox_path = config.outbox_path
    if state_dir.is_symlink():
        print(f"sentinel wipe: {state_dir} is a symbolic link: refused, not followed; set [device] state_dir to the real folder",
              file=sys.stderr)
        return 1
    lock = StateLock(state_dir)
    try:
        if state_dir.is_dir():
            lock.acquire()
    except StateLockHeld as e:
        print(f"sentinel wipe: {e}; stop it first (systemctl stop sentinel)", file=sys.stderr)
        return 1
    try:
        files = personal_data(state_dir, outbox_path)
        refusals = refused(state_dir, outbox_path)
        for line in refusals:
            print(f"sentinel wipe: {line}", file=sys.stderr)
        has_token = token is not None and token.path is not None
        if not files:
            if refusals:
                return 1
            print(f"nothing to wipe in {state_dir}")
            if not has_token:
                return 0
        seen = inspect(outbox_path)
        waiting = seen.health.depth if seen.health else None
        copies = seen.health.corrupt_copies if seen.health else ()
        print(f"device {config.device.id}: these files will be overwritten and deleted:")
        for f in files:
            print(f"  {f} ({_size(f)})")
        if has_token:
            print(f"  {token.path} (the device token: revoked at the service first when it can be reached)")
        if waiting is None:
            print(f"the outbox cannot be read ({seen.error}): it may hold records not yet delivered")
        elif waiting:
            print(f"{waiting:,} records have NOT been delivered to the health-status service")
        if copies:
            print(f"{len(copies)} corrupt outbox copies may hold records that were not recovered")
        if (waiting or waiting is None or copies) and not args.discard_undelivered:
            print(
                "sentinel wipe: refusing to destroy undelivered records; deliver them (sentinel outbox flush) or "
                "export them (sentinel outbox export FILE), or pass --discard-undelivered",
                file=sys.stderr,
            )
            return 1
        if args.dry_run:
            print("dry run: nothing destroyed")
            return 0
        if not args.yes and not _confirmed(config.device.id):
            print("sentinel wipe: not confirmed; nothing destroyed", file=sys.stderr)
            return 1
        if has_token:
            token.go = True
        report = wipe(state_dir, outbox_path, as_root=owner.as_root if owner.user else None)
        print(f"wiped {len(report.files)} files ({report.bytes_overwritten:,} bytes overwritten with zeros, then deleted)")
        for link in report.links_removed:
            print(f"sentinel wipe: removed the symbolic link {link} without following it (someone put it there)", file=sys.stderr)
        for err in report.errors:
            if err not in refusals:
                print(f"sentinel wipe: could not wipe {err}", file=sys.stderr)
        print(WEAR_LEVELLING_NOTE)
        return 0 if report.ok else 1
    finally:
        lock.release()


def _size(path: Path) -> str:
    try:
        return f"{path.stat().st_size:,} bytes"
    except OSError:
        return "?"


def _confirmed(device_id: str) -> bool:
    if not sys.stdin.isatty():
        print("sentinel wipe: confirmation needed: run it on a terminal, or pass --yes", file=sys.stderr)
        return False
    try:
        answer = input(f"Type the device id ({device_id}) to destroy this data for good: ")
    except EOFError:
        return False
    return answer.strip() == device_id

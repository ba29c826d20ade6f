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
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sentinel.config import ConfigError, load_config

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
    try:
        config = load_config(args.config)
    except ConfigError as e:
        for problem in e.problems:
            print(f"{e.path}: {problem}", file=sys.stderr)
        return 2
    from sentinel.state_files import as_state_owner

    with as_state_owner() as owner:
        return _wipe(args, config, owner)


def _wipe(args: argparse.Namespace, config, owner) -> int:
    from sentinel.outbox import inspect
    from sentinel.wipe import WEAR_LEVELLING_NOTE, StateLock, StateLockHeld, personal_data, refused, wipe

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
        if not files:
            if refusals:
                return 1
            print(f"nothing to wipe in {state_dir}")
            return 0
        seen = inspect(outbox_path)
        waiting = seen.health.depth if seen.health else None
        copies = seen.health.corrupt_copies if seen.health else ()
        print(f"device {config.device.id}: these files will be overwritten and deleted:")
        for f in files:
            print(f"  {f} ({_size(f)})")
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

"""`sentinel run --config FILE`: the kiosk as the systemd unit starts it.

Exit 2 for a config with mistakes (one line each) and for a device that is not bound (a verifier
that talks to the service but no device token file, or the placeholder device id: one line saying
to run `sentinel bind`; its records would all be refused as wrong_device), exit 1 with one line
when a part cannot be opened at all (no display, an unreadable token, another kiosk on the state
directory; systemd starts it again), 0 after SIGTERM. A missing camera, a full or read-only state directory and a record key
that cannot be written are not start failures: the kiosk runs and shows the fault
(sentinel/kiosk.py)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from sentinel.client import ClientError
from sentinel.commands._config import USAGE_ERROR, load_or_report

NAME = "run"
HELP = "run the kiosk from a config file"

log = logging.getLogger("sentinel.run")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="/etc/sentinel/sentinel.toml", help="config file (default /etc/sentinel/sentinel.toml)")
    parser.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this many seconds (testing)")


def run(args: argparse.Namespace) -> int:
    from hardware.camera import CameraError
    from sentinel.kiosk import NotBound, build_kiosk, check_bound
    from ui.display import DisplayError

    config = load_or_report(args.config)
    if config is None:
        return USAGE_ERROR
    try:
        check_bound(config)
    except NotBound as e:
        print(f"sentinel: cannot start: {e}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        kiosk = build_kiosk(config, config_path=Path(args.config))
    except NotBound as e:  # the token went away since the check above
        print(f"sentinel: cannot start: {e}", file=sys.stderr)
        return 2
    except (ClientError, CameraError, DisplayError, OSError) as e:
        print(f"sentinel: cannot start: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # a part's bug: one line and the log's traceback, not a bare crash
        log.exception("cannot start")
        print(f"sentinel: cannot start: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    log.info("kiosk running: device %s at site %s", config.device.id, config.device.site_id)
    kiosk.run(stop=stop, duration_s=args.duration)
    return 0

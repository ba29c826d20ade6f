"""`sentinel service`: the reference health-status service in the foreground, for development, the
demo and a technician bench-testing a device (point the device at this URL, then change people,
revoke tokens or inject faults through the admin API; see docs/api.md).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

NAME = "service"
HELP = "run the reference health-status service"

log = logging.getLogger("sentinel.service")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for a bench LAN)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    parser.add_argument("--db", required=True, type=Path, help="SQLite file holding sites, devices, people and records")
    parser.add_argument("--seed", choices=["demo", "demo-faces"], help="(re)write the demo site, device, people and binding code")
    parser.add_argument(
        "--admin-token-file",
        type=Path,
        help="file whose first line is the admin token; without it a token is generated and printed once",
    )
    parser.add_argument("--latency", type=float, default=0.0, metavar="S", help="delay every /v1 answer by S seconds")
    parser.add_argument("--error-rate", type=float, default=0.0, metavar="R", help="answer this fraction (0..1) of /v1 requests with 500")
    parser.add_argument(
        "--fault",
        metavar="SPEC",
        help="more server-wide faults, same syntax as the X-Sentinel-Fault header, e.g. 'status=503' or 'garbage'",
    )


def _read_admin_token(path: Path) -> str:
    lines = path.read_text(encoding="utf-8").splitlines()
    token = lines[0].strip() if lines else ""
    if not token:
        raise ValueError(f"admin token file {path} is empty")
    return token


def run(args: argparse.Namespace) -> int:
    try:
        from sentinel.service.faults import Faults, FaultSpecError, parse_spec
        from sentinel.service.server import ReferenceServer
    except ImportError as exc:  # the Pi image installs the kiosk without the web stack
        print(f"sentinel service: {exc.name} is missing; install the service extra: pip install 'digital-sentinel[service]'", file=sys.stderr)
        return 2

    try:
        token = _read_admin_token(args.admin_token_file) if args.admin_token_file else None
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        print(f"sentinel service: cannot use the admin token file: {exc}", file=sys.stderr)
        return 2
    try:
        _clear, fields = parse_spec(args.fault or "")
        faults = Faults(**{"latency_s": args.latency, "error_rate": args.error_rate, **fields})
    except (FaultSpecError, ValueError) as exc:
        print(f"sentinel service: bad fault options: {exc}", file=sys.stderr)
        return 2

    server = ReferenceServer(args.db, seed=args.seed, host=args.host, port=args.port, admin_token=token, faults=faults)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            url = server.start()
        except OSError as exc:
            print(f"sentinel service: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
            return 1
        if token is None:
            # stdout, not the log: shown once to the person who started the server, never journaled
            print(f"admin token (shown once): {server.admin_token}", flush=True)
        log.info("listening on %s (API docs at %s/docs)", url, url)
        if faults.active:
            log.warning("injecting faults into every /v1 request: %s", faults.model_dump(exclude_defaults=True))
        while not stop.wait(0.5):
            pass
        log.info("stopping")
        return 0
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)

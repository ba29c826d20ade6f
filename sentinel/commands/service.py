"""`sentinel service`: the reference health-status service in the foreground, for development, the
demo and a technician bench-testing a device (point the device at this URL, then change people,
revoke tokens or inject faults through the admin API; see docs/api.md).

Safe by default for a small site running it as it is: plain HTTP only on loopback (else
`--certfile/--keyfile` or `--behind-tls-proxy`), no fault injection without
`--allow-fault-injection`, the admin token never printed (an owner-only file), records purged after
`--retention-days`. See "Running the reference service safely" in docs/api.md.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import sys
import threading
from datetime import timedelta
from pathlib import Path

NAME = "service"
HELP = "run the reference health-status service"

log = logging.getLogger("sentinel.service")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for a bench LAN)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    parser.add_argument("--db", required=True, type=_db,
                        help="SQLite file holding sites, devices, people and records, or a postgresql:// URL of a database that "
                        "several service processes may share (needs --admin-token-file)")  # fmt: skip
    parser.add_argument("--seed", choices=["demo", "demo-faces"], help="(re)write the demo site, device, people and binding code")
    parser.add_argument(
        "--admin-token-file",
        type=Path,
        help="file (owner-only, mode 0600) whose first line is the admin token; without it a token is generated and "
        "written to <db>.admin-token (0600), and only that path is printed",
    )
    parser.add_argument("--retention-days", type=float, default=28.0, metavar="D",
                        help="purge records received more than D days ago, on start and hourly (default 28; 0 keeps them)")  # fmt: skip
    parser.add_argument("--certfile", type=Path, help="TLS certificate (PEM): serve HTTPS")
    parser.add_argument("--keyfile", type=Path, help="TLS private key (PEM) for --certfile")
    parser.add_argument("--behind-tls-proxy", action="store_true",
                        help="allow plain HTTP on a non-loopback address because a TLS proxy in front terminates TLS")  # fmt: skip
    parser.add_argument("--allow-fault-injection", action="store_true",
                        help="obey --latency/--error-rate/--fault, PUT /admin/faults and the X-Sentinel-Fault header (with the admin "
                        "token); off by default")  # fmt: skip
    parser.add_argument("--latency", type=float, default=0.0, metavar="S", help="delay every /v1 answer by S seconds")
    parser.add_argument("--error-rate", type=float, default=0.0, metavar="R", help="answer this fraction (0..1) of /v1 requests with 500")
    parser.add_argument(
        "--fault",
        metavar="SPEC",
        help="more server-wide faults, same syntax as the X-Sentinel-Fault header, e.g. 'status=503' or 'garbage'",
    )


def _db(text: str) -> str | Path:
    """A postgresql:// URL stays text (a Path would fold its //); anything else is a SQLite path."""
    from sentinel.service.store import (
        is_postgres_url,  # standard library only at import
    )

    return text if is_postgres_url(text) else Path(text)


def _read_admin_token(path: Path) -> str:
    mode = path.stat().st_mode
    if mode & 0o077:
        raise ValueError(f"{path} is readable by group or others (mode {mode & 0o777:o}); chmod 600 it")
    lines = path.read_text(encoding="utf-8").splitlines()
    token = lines[0].strip() if lines else ""
    if not token:
        raise ValueError(f"admin token file {path} is empty")
    return token


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _write_private(path: Path, text: str) -> None:
    """Replace `path` with `text`, owner-only from the first byte (sentinel.atomic)."""
    from sentinel.atomic import write_atomic

    write_atomic(path, text.encode())


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

    if faults.active and not args.allow_fault_injection:
        print("sentinel service: --latency/--error-rate/--fault need --allow-fault-injection", file=sys.stderr)
        return 2
    if (args.certfile is None) != (args.keyfile is None):
        print("sentinel service: --certfile and --keyfile go together", file=sys.stderr)
        return 2
    if args.certfile is None and not args.behind_tls_proxy and not _is_loopback(args.host):
        print(f"sentinel service: refusing plain HTTP on {args.host}: tokens and personal data would cross the network in clear; "
              "give --certfile/--keyfile, or --behind-tls-proxy when a TLS proxy is in front", file=sys.stderr)  # fmt: skip
        return 2
    if isinstance(args.db, str) and token is None:
        print("sentinel service: a postgresql:// database needs --admin-token-file (there is no file to write the token next to)",
              file=sys.stderr)  # fmt: skip
        return 2
    if args.retention_days < 0:
        print("sentinel service: --retention-days must be 0 or more", file=sys.stderr)
        return 2
    retention = timedelta(days=args.retention_days) if args.retention_days else None
    server = ReferenceServer(args.db, seed=args.seed, host=args.host, port=args.port, admin_token=token, faults=faults,
                             fault_injection=args.allow_fault_injection, retention=retention,
                             certfile=args.certfile, keyfile=args.keyfile)  # fmt: skip
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            url = server.start()
        except OSError as exc:  # psycopg's OperationalError is not an OSError: caught below
            print(f"sentinel service: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
            return 1
        except ImportError as exc:
            print(f"sentinel service: {exc.name} is missing for a postgresql:// database; install it: pip install 'psycopg[binary,pool]'",
                  file=sys.stderr)  # fmt: skip
            return 2
        except Exception as exc:
            if type(exc).__module__.split(".")[0] not in ("psycopg", "psycopg_pool"):
                raise
            print(f"sentinel service: cannot use the database: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        if token is None:
            # never printed (stdout is the journal under systemd): written owner-only, the path shown
            token_path = Path(str(args.db) + ".admin-token")
            try:
                _write_private(token_path, server.admin_token + "\n")
            except OSError as exc:
                print(f"sentinel service: cannot write the admin token file: {exc}", file=sys.stderr)
                return 1
            print(f"admin token written to {token_path} (mode 0600)", flush=True)
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

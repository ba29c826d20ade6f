"""`sentinel bind --server URL --site SITE --code CODE`: what a technician runs once on a new (or
re-imaged, or moved) device. The logic is in `sentinel.binding`; this module only talks to the
technician: what was done on stdout, each problem as one line on stderr, never the token.

Records made under the old binding and still waiting in the outbox would be refused by the service
once the binding changes (sentinel/binding.py): the bind then stops before the code is spent and
says how many, unless the technician confirms, with `--yes` or by answering the question when
`sentinel bind` runs on a terminal. Warnings (records uploaded under the new token, a site name or
other config value replaced, old -> new) go to stderr after the bind."""

from __future__ import annotations

import argparse
import logging
import sys

NAME = "bind"
HELP = "bind this device to a site with a one-time code from the service"

log = logging.getLogger("sentinel.bind")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", required=True, metavar="URL", help="base URL of the health-status service, e.g. https://health.example")
    parser.add_argument("--site", required=True, metavar="SITE", help="id of the site this device is meant for; the code must be for that site")
    parser.add_argument("--code", required=True, metavar="ONE_TIME_CODE", help="the binding code from the back office (case, spaces and hyphens do not matter)")
    parser.add_argument(
        "--device-id", metavar="ID",
        help="this device's id (default: the config's, or one made from /etc/machine-id when the config has none)",
    )
    parser.add_argument(
        "--config", default="/etc/sentinel/sentinel.toml", metavar="FILE",
        help="config file to update or create (default /etc/sentinel/sentinel.toml)",
    )
    parser.add_argument("--token-file", metavar="PATH", help="where to keep the token (default: the config's verifier.token_file)")
    parser.add_argument("--ca-bundle", metavar="PEM", help="CA certificate(s) to verify the service's TLS certificate (default: the system's)")
    parser.add_argument(
        "--yes", action="store_true",
        help="bind even though records made under the old binding wait in the outbox (the service will refuse them; "
             "run `sentinel outbox flush` first to deliver them)",
    )


def run(args: argparse.Namespace) -> int:
    from sentinel.textsafe import printable

    try:
        from sentinel.binding import BindError, bind_device
    except ImportError as e:
        print(f"sentinel bind: cannot run: {e} (reinstall digital-sentinel)", file=sys.stderr)
        return 1
    try:
        result = bind_device(
            server=args.server,
            site=args.site,
            code=args.code,
            device_id=args.device_id,
            config_path=args.config,
            token_file=args.token_file,
            ca_bundle=args.ca_bundle,
            confirm_waiting=_confirm(args.yes),
        )
    except BindError as e:
        print(f"sentinel bind: {printable(str(e), 2000)}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - a technician gets one line, never a traceback
        log.debug("bind failed", exc_info=True)
        print(f"sentinel bind: unexpected failure ({type(e).__name__}); run with -vv for details", file=sys.stderr)
        return 1

    # the service chose some of these strings: printed without escapes or line breaks (printable)
    for warning in result.warnings:
        print(f"sentinel bind: warning: {printable(warning, 2000)}", file=sys.stderr)
    site = result.site
    name = printable(site.name, 200)
    where = f"{name}, {printable(site.address, 200)}" if site.address else name
    print(f"bound device {result.device_id} to site {site.id}: {where}")
    print(f"  service: {result.server}")
    print(f"  config:  {result.config_path} ({'created' if result.config_created else 'updated'})")
    print(f"  token:   {result.token_file} (mode 0600{', replaced the previous one' if result.token_replaced else ''})")
    return 0


def _confirm(yes: bool):
    """`--yes`: go on; on a terminal: ask; otherwise (a script, a pipe): stop, the message says why."""

    def confirm(message: str) -> bool:
        if yes:
            return True
        if not (sys.stdin.isatty() and sys.stderr.isatty()):
            return False
        print(f"sentinel bind: warning: {message}.", file=sys.stderr)
        try:
            answer = input("Bind anyway? The service will refuse those records. [y/N] ")
        except EOFError:
            return False
        return answer.strip().lower() in ("y", "yes")

    return confirm

"""The `sentinel` command: one subcommand per module in `sentinel.commands`.

Each command module defines `NAME`, `HELP`, `add_arguments(parser)` and `run(args) -> int`, and is
imported only when its subcommand runs, so `sentinel check-config` on a technician's laptop does
not load the decoders, the camera stack or the web server.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from sentinel import __version__

#: subcommand name → module in sentinel.commands (help text is in the module, loaded on demand)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "run the kiosk on embedded defaults: replayed camera, demo people, this terminal"),
    "run": ("run", "run the kiosk from a config file"),
    "check-config": ("check_config", "validate a config file; exit 2 with one line per problem"),
    "scan-image": ("scan_image", "decode QR codes in image files; one JSON object per line per file"),
    "service": ("service", "run the reference health-status service"),
    "screens": ("screens", "render every screen to PNG files; --hash-pin makes a technician PIN hash"),
    "bind": ("bind", "bind this device to a site with a one-time code from the service"),
    "outbox": ("outbox", "records waiting for upload: status, flush (upload now), export (carry out by hand)"),
    "faces": ("faces", "the face gallery: enroll, list, remove, match (JSON per image), sync from the service"),
    "wipe": ("wipe", "destroy local personal data (outbox, status cache, record key, face gallery) on a retired device"),
    "doctor": ("doctor", "on-site checklist: camera, decoder, relay, display, font, clock, disk, service and token, outbox"),
    "fleet": ("fleet", "the district's side: signing keys (keygen), a site's signed policy (publish-policy), the live fleet dashboard"),
}


def _load(name: str):
    return importlib.import_module(f"sentinel.commands.{COMMANDS[name][0]}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sentinel", description="Digital sentinel (数字哨兵) kiosk firmware.")
    parser.add_argument("--version", action="version", version=f"sentinel {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors in the log")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == only:
            _load(name).add_arguments(p)
    return parser


def setup_logging(verbose: int, quiet: bool) -> None:
    """One logger per component (`sentinel.pipeline`, `hardware.camera`…), to stderr: the journal on the Pi."""
    level = logging.WARNING if quiet else logging.DEBUG if verbose > 1 else logging.INFO
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Find the subcommand first so that only its module is imported: the global options take no
    # value, so it is the first word that is not an option.
    chosen = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(chosen)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    setup_logging(args.verbose, args.quiet)
    try:
        return int(_load(args.command).run(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

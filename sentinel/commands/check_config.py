"""`sentinel check-config FILE`: what a technician runs after editing a config on site.

Exit 2 with one line per problem (key path, the bad value, what is expected) when the file cannot
be used; 0 otherwise, with a warning line on stderr for settings that are valid but unsafe.
"""

from __future__ import annotations

import argparse
import sys

from sentinel.commands._config import USAGE_ERROR, load_or_report

NAME = "check-config"
HELP = "validate a config file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="TOML config file, e.g. /etc/sentinel/sentinel.toml")


def run(args: argparse.Namespace) -> int:
    config = load_or_report(args.file)
    if config is None:
        return USAGE_ERROR
    print(f"{args.file}: ok (device {config.device.id}, site {config.device.site_id}, camera {config.camera.type}, "
          f"verifier {config.verifier.type}, gate {config.gate.type}, offline policy {config.policy.offline})")
    if getattr(config.verifier, "allow_insecure_http", False):
        print(f"{args.file}: warning: verifier.allow_insecure_http = true: the device token and every scanned code may cross "
              f"the network unencrypted (verifier.url {config.verifier.url!r}); bench LAN only, set it to false at a site",
              file=sys.stderr)
    return 0

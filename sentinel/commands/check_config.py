"""`sentinel check-config FILE`: what a technician runs after editing a config on site."""

from __future__ import annotations

import argparse
import sys

from sentinel.config import ConfigError, load_config

NAME = "check-config"
HELP = "validate a config file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="TOML config file, e.g. /etc/sentinel/sentinel.toml")


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.file)
    except ConfigError as e:
        for problem in e.problems:
            print(f"{e.path}: {problem}", file=sys.stderr)
        return 2
    print(f"{args.file}: ok (device {config.device.id}, site {config.device.site_id}, camera {config.camera.type}, "
          f"verifier {config.verifier.type}, gate {config.gate.type}, offline policy {config.policy.offline})")
    return 0

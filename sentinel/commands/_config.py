"""Loading the config for a subcommand: the one way every command reports a config it cannot use.

Each problem goes to stderr as `<file>: <problem>`, one line each (the same lines
`sentinel check-config` prints), and the caller gets None and exits 2: a mistake in the setup,
which no restart fixes.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sentinel.config import ConfigError, SentinelConfig, load_config

#: the exit status of a command whose config (or command line) is wrong
USAGE_ERROR = 2


def load_or_report(path: str | Path | None) -> SentinelConfig | None:
    """The config at `path`, or None after printing its problems to stderr."""
    try:
        return load_config(path)
    except ConfigError as e:
        for problem in e.problems:
            print(f"{e.path}: {problem}", file=sys.stderr)
        return None

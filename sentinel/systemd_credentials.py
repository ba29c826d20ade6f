"""The device token under systemd's `LoadCredential=`.

The token file /etc/sentinel/device-token is root's alone (0600), and the kiosk runs as the
unprivileged `sentinel` user. The unit says `LoadCredential=device-token:/etc/sentinel/device-token`:
systemd, as root, copies it into a private, read-only directory only this service can read and
passes its path in $CREDENTIALS_DIRECTORY. The kiosk reads that copy when it is there and the
configured file otherwise (a laptop, the demo, `sentinel doctor` run by root).

After `sentinel bind` writes a new token, restart the service: systemd copies credentials when
the service starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

#: the name in the unit's `LoadCredential=device-token:…`
TOKEN_CREDENTIAL = "device-token"


def credential_path(name: str, env: Mapping[str, str] | None = None) -> Path | None:
    """$CREDENTIALS_DIRECTORY/name when systemd passed a credential of that name, else None."""
    env = os.environ if env is None else env
    directory = env.get("CREDENTIALS_DIRECTORY")
    if not directory:
        return None
    path = Path(directory) / name
    return path if path.is_file() else None


def resolve_token_file(configured: Path | str, env: Mapping[str, str] | None = None) -> Path:
    """Where to read the device token: systemd's copy when the unit loaded one, else `configured`."""
    return credential_path(TOKEN_CREDENTIAL, env) or Path(configured)

"""`sentinel run` as the unit runs it: Type=notify (READY=1 once frames flow), watchdog pings while
healthy, STOPPING=1 on SIGTERM, and the device token from systemd's LoadCredential= copy."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sentinel.service.seed import DEMO_DEVICE_ID, DEMO_DEVICE_TOKEN
from sentinel.service.seed import DEMO_SITE as _DEMO_SITE
from sentinel.service.server import ReferenceServer
from tests.helpers import drain_datagrams

pytestmark = pytest.mark.slow  # runs whole programs: left out of the quick loop (README)

ROOT = Path(__file__).resolve().parents[1]
DEMO_SITE = _DEMO_SITE.id


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    with ReferenceServer(tmp_path_factory.mktemp("svc") / "svc.db", seed="demo") as server:
        yield server


@pytest.fixture
def unit_env(tmp_path, service):
    """What systemd gives the service: $NOTIFY_SOCKET, $WATCHDOG_USEC, $CREDENTIALS_DIRECTORY
    (the token's copy; the configured file itself is not readable), and a config."""
    notify = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify))
    sock.settimeout(0.05)
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "device-token").write_text(DEMO_DEVICE_TOKEN + "\n")
    config = tmp_path / "sentinel.toml"
    config.write_text(
        f'[device]\nid = "{DEMO_DEVICE_ID}"\nsite_id = "{DEMO_SITE}"\nstate_dir = "{tmp_path / "state"}"\n'
        f'[camera]\ntype = "replay"\npath = "{ROOT / "sentinel/assets/scenes"}"\nfps = 10\nloop = true\n'
        f'[verifier]\ntype = "http"\nurl = "{service.url}"\ntoken_file = "{tmp_path / "root-only" / "device-token"}"\n'
        '[gate]\ntype = "fake"\n[display]\ntype = "console"\n'
    )
    env = dict(os.environ, NOTIFY_SOCKET=str(notify), WATCHDOG_USEC="2000000", CREDENTIALS_DIRECTORY=str(creds))
    env.pop("WATCHDOG_PID", None)

    def received():
        return drain_datagrams(sock)

    yield config, env, received
    sock.close()


def _start(config, env):
    return subprocess.Popen(
        [sys.executable, "-m", "sentinel", "run", "--config", str(config)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_ready_watchdog_and_stopping_under_a_stand_in_for_systemd(unit_env):
    config, env, received = unit_env
    kiosk = _start(config, env)
    messages: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while messages.count("WATCHDOG=1") < 3 and time.monotonic() < deadline and kiosk.poll() is None:
            messages += received()
        kiosk.send_signal(signal.SIGTERM)  # systemctl stop
        out, err = kiosk.communicate(timeout=30)
    finally:
        if kiosk.poll() is None:
            kiosk.kill()
    messages += received()
    assert kiosk.returncode == 0, err[-3000:]
    assert messages[0].startswith("READY=1"), messages
    assert messages.count("WATCHDOG=1") >= 3  # every WatchdogSec/4 = 0.5 s while frames flow
    assert messages[-1].startswith("STOPPING=1"), messages[-3:]
    assert "Traceback" not in err


def test_the_token_comes_from_the_credential_copy(unit_env):
    config, env, _ = unit_env
    env = {k: v for k, v in env.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    result = subprocess.run(
        [sys.executable, "-m", "sentinel", "run", "--config", str(config), "--duration", "1.5"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "cannot start" not in result.stderr

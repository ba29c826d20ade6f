"""`sentinel service` as a technician runs it: a process that prints where it listens, serves,
and stops cleanly on SIGTERM (systemd) or Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from sentinel.service.seed import DEMO_DEVICE_TOKEN

pytestmark = pytest.mark.slow  # runs whole programs: left out of the quick loop (README)

REPO = Path(__file__).resolve().parents[1]


def start(*args: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sentinel", "service", "--port", "0", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in proc.stderr:
        if "listening on " in line:
            return proc, line.split("listening on ")[1].split()[0]
    proc.wait(5)
    raise AssertionError(f"no URL; exit {proc.returncode}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_service_command_serves_and_stops_on_a_signal(tmp_path, sig):
    token_file = tmp_path / "admin-token"
    token_file.write_text("sat_from-a-file\n")
    token_file.chmod(0o600)
    proc, url = start("--db", str(tmp_path / "s.db"), "--seed", "demo", "--admin-token-file", str(token_file), "--latency", "0.2",
                      "--allow-fault-injection")  # fmt: skip
    try:
        assert requests.get(f"{url}/healthz", timeout=5).json()["status"] == "ok"
        admin = requests.get(f"{url}/admin/faults", headers={"Authorization": "Bearer sat_from-a-file"}, timeout=5)
        assert admin.json()["latency_s"] == 0.2
        start_time = time.monotonic()
        records = requests.get(f"{url}/v1/records", headers={"Authorization": f"Bearer {DEMO_DEVICE_TOKEN}"}, timeout=5)
        assert records.status_code == 200 and time.monotonic() - start_time >= 0.2
    finally:
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "sat_from-a-file" not in out + err
    assert DEMO_DEVICE_TOKEN not in out + err


def test_generated_admin_token_is_written_to_a_private_file(tmp_path):
    proc, url = start("--db", str(tmp_path / "s.db"))
    try:
        line = proc.stdout.readline()
        path = tmp_path / "s.db.admin-token"
        assert line.startswith(f"admin token written to {path}")
        assert path.stat().st_mode & 0o777 == 0o600
        token = path.read_text().strip()
        assert token.startswith("sat_") and token not in line
        ok = requests.get(f"{url}/admin/faults", headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert ok.status_code == 200
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert token not in err


@pytest.mark.parametrize(
    "args",
    [
        ["--error-rate", "2"],
        ["--fault", "explode"],
        ["--admin-token-file", "/nonexistent/token"],
        ["--seed", "production"],
    ],
)
def test_bad_options_exit_2(tmp_path, args):
    result = subprocess.run(
        [sys.executable, "-m", "sentinel", "service", "--port", "0", "--db", str(tmp_path / "s.db"), *args],
        cwd=REPO, capture_output=True, text=True, timeout=20,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip()

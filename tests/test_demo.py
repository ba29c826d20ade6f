"""`sentinel demo`: the kiosk on embedded defaults decides the demo people through the reference service."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # runs whole programs: left out of the quick loop (README)


def test_demo_once_decides_every_scene_through_the_reference_service():
    result = subprocess.run(
        [sys.executable, "-m", "sentinel", "demo", "--once", "--json", "--fps", "20"],
        capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    checks = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(c["credential_kind"], c["status"], c["verdict"], c["reason"]) for c in checks] == [
        ("health_code", "green", "pass", "ok"),
        ("health_code", "yellow", "manual_check", "yellow_code"),
        ("health_code", "red", "deny", "red_code"),
        (None, None, "deny", "unrecognised"),  # the mall's promotion QR never reaches the service
        ("health_code", "green", "deny", "nat_too_old"),  # green code, but the test is 80 h old
        ("face", "green", "pass", "ok"),  # the resident without a phone, let in by face
        ("health_code", "not_found", "manual_check", "not_found"),  # a well-formed code the service does not know
    ]
    assert [c["person"] for c in checks if c["person"]] == ["王*明", "李*", "张*", "陈*", "林*英"]
    assert all(not c["offline"] for c in checks)
    assert all(c["latency_ms"] < 1500 for c in checks)

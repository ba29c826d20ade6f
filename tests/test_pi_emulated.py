"""The Pi's own userland, emulated: tools/pi-emulated.sh builds (or reuses) a minimal arm64 Debian
Bookworm root, runs the Pi install there and checks what works without a Pi. Minutes long, so it
runs only when selected (`pytest -m pi_emulated`); it skips with the script's reason where the
machine cannot emulate arm64 (not root, no debootstrap, qemu-user-static or binfmt_misc)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CANNOT_RUN_HERE = 77  # the script's exit status when the machine lacks what it needs


@pytest.mark.pi_emulated
@pytest.mark.timeout(3 * 3600)
def test_the_pi_install_and_its_checks_pass_in_an_emulated_arm64_root():
    result = subprocess.run([str(ROOT / "tools" / "pi-emulated.sh")], capture_output=True, text=True, timeout=3 * 3600)
    if result.returncode == CANNOT_RUN_HERE:
        pytest.skip(result.stdout.strip().splitlines()[-1])
    summary = result.stdout[result.stdout.find("=== pi-emulated summary"):]
    assert result.returncode == 0, summary or (result.stdout + result.stderr)[-4000:]
    assert "FAIL" not in summary and "all checks passed" in summary

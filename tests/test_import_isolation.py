"""The core runs anywhere: importing it must not pull in a hardware or UI library."""

import subprocess
import sys

FORBIDDEN = ["picamera2", "RPi", "lgpio", "gpiozero", "pygame", "cv2"]

CORE_MODULES = [
    "sentinel", "sentinel.cli", "sentinel.config", "sentinel.credentials", "sentinel.decoding", "sentinel.pipeline",
    "sentinel.policy", "sentinel.records", "sentinel.outbox", "sentinel.screens", "sentinel.verifier",
    "sentinel.health", "sentinel.frames",
]


def test_core_imports_no_hardware_or_ui_library():
    code = (
        "import importlib, sys\n"
        f"for m in {CORE_MODULES!r}: importlib.import_module(m)\n"
        f"print(','.join(m for m in {FORBIDDEN!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"core imported: {result.stdout.strip()}"


def test_the_check_detects_a_forbidden_import():
    """Guard against a test that cannot fail: the same probe sees gpiozero once it is imported."""
    code = f"import gpiozero, sys\nprint(','.join(m for m in {FORBIDDEN!r} if m in sys.modules))\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "gpiozero" in result.stdout

"""install.sh: a second run changes nothing; no network leaves no half-made venv behind."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs whole programs: left out of the quick loop (README)

ROOT = Path(__file__).resolve().parents[1]


def test_second_run_is_a_no_op():
    if not (ROOT / ".venv" / ".sentinel-install-stamp").exists():
        pytest.skip("the project was not installed with ./install.sh --dev")
    stamp_before = (ROOT / ".venv" / ".sentinel-install-stamp").stat().st_mtime_ns
    result = subprocess.run(["bash", "install.sh", "--dev", "--skip-apt"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "venv up to date" in result.stdout
    assert (ROOT / ".venv" / ".sentinel-install-stamp").stat().st_mtime_ns == stamp_before


def test_no_network_gives_a_clear_message_and_no_venv(tmp_path):
    copy = tmp_path / "repo"
    copy.mkdir()
    for name in ("install.sh", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, copy / name)
    env = dict(os.environ, PIP_INDEX_URL="http://127.0.0.1:9/simple", PIP_RETRIES="0", PIP_TIMEOUT="2",
               PIP_NO_CACHE_DIR="1", PIP_FIND_LINKS="", PIP_CONFIG_FILE=os.devnull, TMPDIR=str(tmp_path))  # its own pip log
    result = subprocess.run(["bash", "install.sh", "--dev", "--skip-apt"], cwd=copy, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "step failed: install digital-sentinel[dev]" in result.stderr
    assert "is the package index reachable" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert not (copy / ".venv").exists(), "a half-made venv was left behind"


def test_unknown_option_is_refused():
    result = subprocess.run(["bash", "install.sh", "--frobnicate"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "unknown option: --frobnicate" in result.stderr

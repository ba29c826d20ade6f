"""install.sh --dev when a step fails: the message names the step and the package pip could not
get, points at the pip log, and
leaves no half-made venv behind. (When the network is down, tests/test_install.py.)"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # creates a venv and runs pip

ROOT = Path(__file__).resolve().parents[1]


def test_a_failed_pip_step_names_the_step_and_the_package_and_leaves_no_venv(tmp_path):
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    shutil.copy(ROOT / "install.sh", checkout / "install.sh")
    pyproject = (ROOT / "pyproject.toml").read_text()
    (checkout / "pyproject.toml").write_text(pyproject.replace('"tqdm>=4.60",', '"tqdm>=4.60",\n    "sentinel-no-such-package>=1",'))
    (tmp_path / "no-wheels").mkdir()
    (tmp_path / "tmp").mkdir()
    # no package index at all: pip cannot even get the build backend
    env = dict(os.environ, PIP_NO_INDEX="1", PIP_FIND_LINKS=str(tmp_path / "no-wheels"), PIP_CONFIG_FILE=os.devnull,
               TMPDIR=str(tmp_path / "tmp"))
    env.pop("VIRTUAL_ENV", None)
    result = subprocess.run(["bash", str(checkout / "install.sh"), "--dev", "--skip-apt"], cwd=checkout, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    log = tmp_path / "tmp" / "sentinel-pip.log"
    assert "step failed: install digital-sentinel[dev] (the project and its dev extras)" in result.stderr
    assert f"Full log: {log}" in result.stderr
    assert "ERROR: Could not find a version that satisfies the requirement setuptools" in result.stderr  # the package
    assert log.is_file() and not (checkout / ".venv").exists()

"""pi-requirements.lock, the hash-pinned list the Pi's install takes from PyPI, matches what the
project asks for: a dependency added to pyproject.toml without re-running
tools/lock-pi-requirements fails here, not on a technician's Pi."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "pi-requirements.lock"


def locked() -> dict[str, tuple[str, list[str]]]:
    """name -> (version, sha256 hashes) of every package in the lock."""
    entries: dict[str, tuple[str, list[str]]] = {}
    text = LOCK.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)((?:\s+--hash=sha256:[0-9a-f]{64})+)", line)
        assert match, f"not a hash-pinned line: {line[:80]}"
        hashes = re.findall(r"sha256:([0-9a-f]{64})", match.group(3))
        entries[canonicalize_name(match.group(1))] = (match.group(2), hashes)
    return entries


def pi_requirements() -> list[Requirement]:
    result = subprocess.run(["bash", str(ROOT / "install.sh"), "--pi-requirements"], capture_output=True, text=True, timeout=60,
                            env=dict(os.environ, PYTHON=sys.executable))
    assert result.returncode == 0, result.stderr
    return [Requirement(line) for line in result.stdout.splitlines() if line.strip()]


def test_every_package_the_pi_takes_from_pip_is_pinned_with_hashes():
    entries = locked()
    for requirement in pi_requirements():
        name = canonicalize_name(requirement.name)
        assert name in entries, f"{name} is not in pi-requirements.lock: run tools/lock-pi-requirements"
        version, hashes = entries[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"the lock has {name} {version}, pyproject.toml asks {requirement.specifier}: run tools/lock-pi-requirements"
        )
    assert all(hashes for _, hashes in entries.values())


def test_the_lock_never_takes_what_apt_owns():
    # numpy 2 or pip's OpenCV over apt's breaks picamera2 (docs/design.md); Pillow and pygame are apt's too
    assert not set(locked()) & {"numpy", "pillow", "opencv-python", "opencv-python-headless", "picamera2", "pygame"}


def test_the_setuptools_that_builds_the_project_is_locked():
    version, _ = locked()["setuptools"]
    assert Requirement("setuptools>=68").specifier.contains(version)

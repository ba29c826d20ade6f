"""Fixtures shared by the test modules."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real images in ../shared/data (next to the repository, same copy in CI); a fresh clone
    without it skips the tests that need it instead of failing them."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"../shared/data not present: expected at {SHARED_DATA.resolve()}")
    return SHARED_DATA

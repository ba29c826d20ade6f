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


@pytest.fixture
def mock_factory():
    """A gpiozero MockFactory of its own for the test, passed to devices by hand; reset afterwards,
    and gpiozero's default factory cleared."""
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    factory = MockFactory()
    yield factory
    factory.reset()
    Device.pin_factory = None


@pytest.fixture
def mock_pins():
    """The shared gpiozero MockFactory that `pin_factory = "mock"` configs use (as `sentinel run`
    builds them); every GPIO gate made meanwhile is released and the factory reset afterwards, so
    the next test finds every pin free and low."""
    from hardware.gate import GpioGate, make_pin_factory

    made: list[GpioGate] = []
    real_init = GpioGate.__init__

    def tracking_init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        made.append(self)

    GpioGate.__init__ = tracking_init
    factory = make_pin_factory("mock")
    factory.reset()
    try:
        yield factory
    finally:
        GpioGate.__init__ = real_init
        for gate in made:
            gate.release()
        factory.reset()


def pytest_collection_modifyitems(config, items):
    """`pi_emulated` tests take many minutes (an arm64 root under qemu): they run only when asked
    for by name, `pytest -m pi_emulated`, never in the README's command or the quick loop."""
    if "pi_emulated" in (config.getoption("markexpr") or "") and "not pi_emulated" not in config.getoption("markexpr"):
        return
    skip = pytest.mark.skip(reason="runs an emulated arm64 install for minutes: select it with `pytest -m pi_emulated`")
    for item in items:
        if "pi_emulated" in item.keywords:
            item.add_marker(skip)
from tests.conftest_postgres import postgres_server, postgres_url, service_db  # noqa: F401  (issue 21: both stores)

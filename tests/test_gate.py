"""Gate relay through gpiozero's MockFactory: pin levels and their timing, and closed on exit."""

import time

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from hardware.gate import FakeGate, GpioGate, NoGate, open_gate
from sentinel.config import FakeGateConfig, GpioGateConfig, NoGateConfig


@pytest.fixture
def factory():
    f = MockFactory()
    yield f
    f.reset()
    Device.pin_factory = None


def test_relay_is_low_at_start(factory):
    GpioGate(GpioGateConfig(type="gpio", pin=17), pin_factory=factory)
    assert factory.pin(17).state == 0


def test_pulse_holds_the_relay_for_the_pulse_length_then_drops_it(factory):
    gate = GpioGate(GpioGateConfig(type="gpio", pin=17, pulse_s=0.2), pin_factory=factory)
    pin = factory.pin(17)
    gate.pulse()
    time.sleep(0.05)
    assert pin.state == 1 and gate.is_open
    time.sleep(0.35)
    assert pin.state == 0 and not gate.is_open
    # the recorded level changes: one rise and one fall, about 0.2 s apart
    changes = [(c.timestamp, c.state) for c in pin.states]
    rises = [t for t, s in changes if s == 1]
    falls = [t for t, s in changes if s == 0 and rises and t > rises[0]]
    assert len(rises) == 1 and falls
    assert 0.15 <= falls[0] - rises[0] <= 0.35


def test_active_low_relay(factory):
    gate = GpioGate(GpioGateConfig(type="gpio", pin=27, active_high=False, pulse_s=0.2), pin_factory=factory)
    pin = factory.pin(27)
    assert pin.state == 1  # active-low: high means closed
    gate.pulse()
    time.sleep(0.05)
    assert pin.state == 0
    gate.close()
    assert pin.state == 1


def test_close_cuts_a_pulse_short(factory):
    gate = GpioGate(GpioGateConfig(type="gpio", pin=17, pulse_s=5), pin_factory=factory)
    gate.pulse()
    time.sleep(0.05)
    gate.close()
    assert factory.pin(17).state == 0


def test_mock_pin_factory_from_config():
    gate = open_gate(GpioGateConfig(type="gpio", pin=22, pin_factory="mock"))
    try:
        assert not gate.is_open
    finally:
        gate.release()
        Device.pin_factory = None


def test_fake_gate_closes_itself():
    gate = FakeGate(pulse_s=0.1)
    gate.pulse()
    assert gate.is_open
    time.sleep(0.25)
    assert not gate.is_open


def test_factory_picks_backend_by_type():
    assert isinstance(open_gate(NoGateConfig(type="none")), NoGate)
    assert isinstance(open_gate(FakeGateConfig()), FakeGate)

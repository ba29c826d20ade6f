"""Relay first (issue 18): the gate's pin is written on the thread that acted on the verdict, the
pulse's end is timed by one long-lived thread (not a thread per pulse), and the pipeline energises
the relay before it wakes the uploader. gpiozero MockFactory pins; timings only as lower bounds or
with seconds of slack, so a busy machine makes these slow, never wrong."""

from __future__ import annotations

import threading
import time

import pytest
from gpiozero.pins.mock import MockPin

from hardware.gate import FakeGate, GpioGate, PulseTimer
from sentinel.config import GpioGateConfig
from tests.helpers import wait_until


@pytest.fixture
def writers(monkeypatch):
    """(thread name, level) of every change of any mock pin, in order."""
    seen: list[tuple[str, bool]] = []
    real = MockPin._change_state

    def tracking(self, value):
        changed = real(self, value)
        if changed:
            seen.append((threading.current_thread().name, bool(value)))
        return changed

    monkeypatch.setattr(MockPin, "_change_state", tracking)
    return seen


def test_pulse_energises_the_relay_on_the_calling_thread(mock_factory, writers):
    gate = GpioGate(GpioGateConfig(type="gpio", pin=17, pulse_s=0.2), pin_factory=mock_factory)
    try:
        writers.clear()
        gate.pulse()
        assert mock_factory.pin(17).state == 1  # before pulse() returned
        assert writers == [(threading.current_thread().name, True)]
        wait_until(lambda: mock_factory.pin(17).state == 0, what="the relay to drop")
        assert writers[-1] == ("gate-pulse-17", False)  # the end is the timer thread's
    finally:
        gate.release()


def test_many_pulses_use_one_timer_thread(mock_factory):
    """Counted by thread identity, not by name: a gate another test left behind on the same pin
    number may still have its own timer thread."""
    gate = GpioGate(GpioGateConfig(type="gpio", pin=17, pulse_s=0.05), pin_factory=mock_factory)
    try:
        gate.pulse()
        timer = gate._timer._thread
        assert timer is not None and timer.is_alive()
        before = {t.ident for t in threading.enumerate()}
        for _ in range(30):
            gate.pulse()
            time.sleep(0.005)
        wait_until(lambda: mock_factory.pin(17).state == 0, what="the relay to drop")
        for _ in range(5):  # pulses after the relay dropped reuse the same thread too
            gate.pulse()
            wait_until(lambda: mock_factory.pin(17).state == 0, what="the relay to drop")
        new_timers = [t for t in threading.enumerate() if t.ident not in before and t.name.startswith("gate-pulse")]
        assert new_timers == [] and gate._timer._thread is timer and timer.is_alive()
    finally:
        gate.release()
    wait_until(lambda: not timer.is_alive(), what="the timer to stop")


def test_an_old_pulse_end_never_cuts_a_later_pulse_short(mock_factory):
    """close() then pulse() again: the first pulse's end (due earlier) must not drop the second."""
    gate = GpioGate(GpioGateConfig(type="gpio", pin=17, pulse_s=0.6), pin_factory=mock_factory)
    pin = mock_factory.pin(17)
    try:
        gate.pulse()
        time.sleep(0.3)
        gate.close()
        assert pin.state == 0
        started = time.monotonic()
        gate.pulse()
        wait_until(lambda: pin.state == 0, what="the relay to drop")
        assert time.monotonic() - started >= 0.6 - 0.01  # held a whole pulse from the second start
    finally:
        gate.release()


def test_a_dead_timer_thread_is_started_again_and_the_relay_still_drops(mock_factory, monkeypatch):
    gate = GpioGate(GpioGateConfig(type="gpio", pin=17, pulse_s=0.1), pin_factory=mock_factory)
    try:
        gate._timer.stop()  # as if the thread had died
        gate.pulse()
        assert mock_factory.pin(17).state == 1
        wait_until(lambda: mock_factory.pin(17).state == 0, what="the relay to drop")
    finally:
        gate.release()


def test_pulse_timer_calls_only_the_latest_end():
    ends: list[int] = []
    timer = PulseTimer(ends.append)
    try:
        first = timer.schedule(5.0)
        second = timer.schedule(0.05)
        wait_until(lambda: ends, what="the end")
        time.sleep(0.1)
        assert ends == [second] and first != second
        assert timer.is_current(second)
        timer.cancel()
        assert not timer.is_current(second)
    finally:
        timer.stop()


def test_fake_gate_times_pulses_without_a_thread_each():
    gate = FakeGate(pulse_s=0.05)
    try:
        gate.pulse()
        before = threading.active_count()
        for _ in range(20):
            gate.pulse()
        assert gate.is_open and threading.active_count() == before
        wait_until(lambda: not gate.is_open, what="the fake gate to close itself")
    finally:
        gate.release()

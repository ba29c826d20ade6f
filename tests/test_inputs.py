"""Trigger button, status LEDs and buzzer through gpiozero's MockFactory: pin levels, their timing,
and what the config builds."""

import time

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from hardware.inputs import BEEP_ON_S, BLINK_S, PATTERNS, Indicators, NoIndicators, TriggerButton, open_inputs, used_pins
from sentinel.config import parse_config
from tests.helpers import FakeClock, wait_until


@pytest.fixture
def factory():
    f = MockFactory()
    opened = []
    yield f, opened
    for thing in opened:
        thing.close()
    f.reset()
    Device.pin_factory = None


# --- trigger ----------------------------------------------------------------------------------


def test_trigger_arms_the_camera_for_a_while_after_a_press(factory):
    f, opened = factory
    clock = FakeClock()
    trigger = TriggerButton(22, arm_s=5.0, pin_factory=f, bounce_s=None, clock=clock)
    opened.append(trigger)
    pin = f.pin(22)
    assert pin.state == 1  # pull-up: a button to ground reads high when idle
    assert not trigger.armed()
    pin.drive_low()  # pressed
    assert trigger.armed() and trigger.is_pressed
    pin.drive_high()  # released
    clock.advance(4.9)
    assert trigger.armed()
    clock.advance(0.2)
    assert not trigger.armed()


def test_holding_the_trigger_keeps_it_armed(factory):
    f, opened = factory
    clock = FakeClock()
    trigger = TriggerButton(22, arm_s=1.0, pin_factory=f, bounce_s=None, clock=clock)
    opened.append(trigger)
    f.pin(22).drive_low()
    clock.advance(30)
    assert trigger.armed()
    f.pin(22).drive_high()
    clock.advance(0.5)
    assert trigger.armed()  # arm_s counts from the release when it was held
    clock.advance(0.6)
    assert not trigger.armed()


def test_each_press_is_taken_once_and_disarm_stops_scanning(factory):
    f, opened = factory
    clock = FakeClock()
    presses = []
    trigger = TriggerButton(22, pin_factory=f, bounce_s=None, clock=clock, on_press=lambda: presses.append(clock()))
    opened.append(trigger)
    pin = f.pin(22)
    for _ in range(2):
        pin.drive_low()
        pin.drive_high()
    assert trigger.presses == 2 and len(presses) == 2
    assert trigger.take_press() is True
    assert trigger.take_press() is False
    trigger.disarm()
    assert not trigger.armed()


def test_trigger_driving_high(factory):
    f, opened = factory
    trigger = TriggerButton(22, active_low=False, pin_factory=f, bounce_s=None)
    opened.append(trigger)
    assert f.pin(22).state == 0  # pull-down
    f.pin(22).drive_high()
    assert trigger.armed()


# --- indicators -------------------------------------------------------------------------------


def _indicators(f, opened, **kw):
    ind = Indicators(green=5, red=6, amber=13, buzzer=12, pin_factory=f, **kw)
    opened.append(ind)
    return ind


@pytest.fixture
def indicators(factory):
    """Green, red and amber LEDs on GPIO 5, 6 and 13, the buzzer on GPIO 12."""
    f, opened = factory
    return _indicators(f, opened)


def watched(f, number: int):
    """Mock pin `number`, its history of levels cleared: `states` holds only what happens next."""
    pin = f.pin(number)
    pin.clear_states()
    return pin


def _lit(f):
    return {name: int(f.pin(pin).state) for name, pin in (("green", 5), ("red", 6), ("amber", 13))}


def test_everything_is_off_at_start(factory):
    f, opened = factory
    _indicators(f, opened)
    assert _lit(f) == {"green": 0, "red": 0, "amber": 0}
    assert f.pin(12).state == 0


def test_pass_lights_green_and_beeps_once(factory, indicators):
    f, _ = factory
    buzzer = watched(f, 12)
    indicators.signal("checking")
    assert _lit(f) == {"green": 0, "red": 0, "amber": 1}
    indicators.signal("pass")
    assert _lit(f) == {"green": 1, "red": 0, "amber": 0}
    wait_until(lambda: len(buzzer.states) >= 3, what="the beep to end")
    time.sleep(0.3)
    levels = [int(s.state) for s in buzzer.states]
    assert levels == [0, 1, 0]  # one beep
    # short, but not cut short (MockPin stamps each change with the time since the previous one)
    assert BEEP_ON_S - 0.005 <= buzzer.states[2].timestamp < BLINK_S + 1.0


@pytest.mark.parametrize(("kind", "beeps"), [("deny", 3), ("manual_check", 2), ("unknown_code", 3), ("fault", 0), ("idle", 0)])
def test_beeps_tell_the_verdict_without_looking(factory, indicators, kind, beeps):
    f, _ = factory
    buzzer = watched(f, 12)
    indicators.signal(kind)
    wait_until(lambda: sum(1 for s in buzzer.states if s.state) >= beeps and buzzer.state == 0)
    time.sleep(0.3)  # and no more than that
    assert sum(1 for s in buzzer.states if s.state) == beeps
    assert buzzer.state == 0


def test_fault_blinks_red(factory, indicators):
    f, _ = factory
    red = watched(f, 6)
    indicators.signal("fault")
    indicators.signal("fault")  # repeated: the blink is not restarted
    wait_until(lambda: sum(1 for s in red.states if s.state) >= 2)  # on 0.4 s, off 0.4 s, on again
    levels = [(int(s.state), s.timestamp) for s in red.states][1:]  # from the first rise on
    # on for a whole blink, then off for a whole blink: the repeated signal did not restart it
    assert [level for level, _ in levels[:3]] == [1, 0, 1]
    assert levels[1][1] >= BLINK_S - 0.005 and levels[2][1] >= BLINK_S - 0.005
    indicators.signal("idle")
    wait_until(lambda: red.state == 0)


def test_two_passes_in_a_row_beep_twice(factory, indicators):
    f, _ = factory
    buzzer = watched(f, 12)
    indicators.signal("pass")
    time.sleep(0.3)
    indicators.signal("pass")
    wait_until(lambda: sum(1 for s in buzzer.states if s.state) == 2)


def test_show_takes_a_screen(factory):
    from sentinel.screens import Screen, ScreenKind

    f, opened = factory
    ind = _indicators(f, opened)
    ind.show(Screen.prompt(ScreenKind.CHECKING, "en"))
    assert _lit(f)["amber"] == 1
    ind.preview(object())  # part of the display seam; nothing to do


def test_active_low_leds(factory):
    f, opened = factory
    _indicators(f, opened, leds_active_high=False)
    assert _lit(f) == {"green": 1, "red": 1, "amber": 1}  # high = off


def test_close_turns_everything_off(factory):
    f, opened = factory
    ind = Indicators(green=5, red=6, buzzer=12, pin_factory=f)
    ind.signal("fault")
    ind.signal("deny")
    ind.close()
    assert f.pin(5).state == 0 and f.pin(6).state == 0 and f.pin(12).state == 0
    ind.signal("pass")  # after close: ignored, no error


def test_every_verdict_screen_has_a_pattern_and_other_screens_go_dark(factory):
    from sentinel.screens import ScreenKind

    assert {"idle", "checking", "pass", "deny", "manual_check", "unknown_code", "fault"} <= {k.value for k in ScreenKind}
    assert {"idle", "checking", "pass", "deny", "manual_check", "unknown_code", "fault"} <= set(PATTERNS)
    f, opened = factory
    ind = _indicators(f, opened)
    for kind in ScreenKind:  # whatever screens come along, none raises
        ind.signal(kind.value)
    ind.signal("deny")
    ind.signal("a screen invented later")
    wait_until(lambda: _lit(f) == {"green": 0, "red": 0, "amber": 0})


# --- from config ------------------------------------------------------------------------------


def test_nothing_configured_imports_nothing():
    inputs = open_inputs(parse_config({}))
    assert inputs.trigger is None and isinstance(inputs.indicators, NoIndicators)
    inputs.close()


def test_config_builds_trigger_and_indicators(factory):
    f, opened = factory
    config = parse_config({"inputs": {"trigger_pin": 22, "led_green_pin": 5, "buzzer_pin": 12}})
    inputs = open_inputs(config, pin_factory=f)
    opened.append(inputs)
    assert inputs.trigger is not None and inputs.trigger.pin == 22
    assert set(inputs.indicators.leds) == {"green"} and inputs.indicators.buzzer is not None


def test_mock_factory_from_config():
    inputs = open_inputs(parse_config({"inputs": {"pin_factory": "mock", "led_red_pin": 6}}))
    try:
        inputs.indicators.signal("deny")
        assert inputs.indicators.leds["red"].value == 1
    finally:
        inputs.close()


def test_a_pin_used_twice_across_sections_is_refused():
    config = parse_config({"gate": {"type": "gpio", "pin": 17}, "inputs": {"buzzer_pin": 17}})
    with pytest.raises(ValueError, match="GPIO 17 is both the gate relay"):
        open_inputs(config)
    assert used_pins(parse_config({"gate": {"type": "gpio", "pin": 17, "sensor_pin": 27}})) == {
        17: "gate relay (gate.pin)",
        27: "gate sensor (gate.sensor_pin)",
    }


def test_indicator_display_feeds_both_and_survives_a_broken_led(factory):
    from hardware.inputs import IndicatorDisplay
    from sentinel.screens import Screen, ScreenKind

    f, opened = factory
    shown = []

    class Screen_:
        def show(self, screen):
            shown.append(screen.kind)

        def preview(self, frame):
            shown.append("preview")

        extra = "passed through"

    ind = _indicators(f, opened)
    tee = IndicatorDisplay(Screen_(), ind)
    tee.show(Screen.prompt(ScreenKind.CHECKING, "en"))
    tee.preview(object())
    assert shown == [ScreenKind.CHECKING, "preview"] and _lit(f)["amber"] == 1
    assert tee.extra == "passed through"

    class Broken:
        def show(self, screen):
            raise RuntimeError("pin gone")

    IndicatorDisplay(Screen_(), Broken()).show(Screen.prompt(ScreenKind.IDLE, "en"))
    assert shown[-1] == ScreenKind.IDLE

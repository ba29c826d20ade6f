"""Gate relay through gpiozero's MockFactory: pin levels and their timing, the door sensor's pass
window, and the gate closed on every exit path (normal exit, exception, SIGINT, SIGTERM, and the
unit's ExecStopPost after a crash)."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from hardware.gate import BOOT_MARK_BEGIN, FakeGate, GpioGate, NoGate, boot_config_lines, make_pin_factory, open_gate
from sentinel.config import FakeGateConfig, GpioGateConfig, NoGateConfig, load_config, parse_config
from tests.helpers import run_reading, wait_until

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def factory(monkeypatch):
    """A MockFactory; every gate made in the test is released afterwards (a gpiozero device that
    is only garbage-collected may be finalised on its own blink thread, which cannot join itself)."""
    f = MockFactory()
    made = []
    real_init = GpioGate.__init__

    def tracking_init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(GpioGate, "__init__", tracking_init)
    yield f
    for gate in made:
        gate.release()
    f.reset()
    Device.pin_factory = None


def _levels(pin):
    """[(seconds since the previous change, level)] as MockPin records them."""
    return [(round(s.timestamp, 3), int(s.state)) for s in pin.states]


# --- levels and timing ----------------------------------------------------------------------


def test_relay_is_low_at_start(factory):
    pin = factory.pin(17)
    gate = GpioGate(GpioGateConfig(type="gpio", pin=17), pin_factory=factory)
    assert pin.function == "output" and pin.state == 0 and not gate.is_open
    assert [level for _, level in _levels(pin)] == [0]  # never high, not even for an instant


def test_pulse_holds_the_relay_for_the_pulse_length_then_drops_it(factory):
    gate = GpioGate(GpioGateConfig(type="gpio", pin=17, pulse_s=0.2), pin_factory=factory)
    pin = factory.pin(17)
    gate.pulse()
    assert pin.state == 1 and gate.is_open  # energised before pulse() returns
    wait_until(lambda: pin.state == 0, what="the relay to drop")
    assert not gate.is_open
    levels = _levels(pin)
    assert [level for _, level in levels] == [0, 1, 0]  # one rise, one fall
    held = levels[2][0]  # MockPin stamps each change with the time since the previous one
    # never shorter than the pulse; a busy machine may only make it late to drop
    assert held >= 0.2 - 0.005


def test_active_low_relay(factory):
    gate = GpioGate(GpioGateConfig(type="gpio", pin=27, active_high=False, pulse_s=0.2), pin_factory=factory)
    pin = factory.pin(27)
    assert pin.state == 1  # active-low: high means closed
    pin.clear_states()
    gate.pulse()
    assert pin.state == 0
    gate.close()
    assert pin.state == 1
    time.sleep(0.3)  # past the pulse's own end
    assert [level for _, level in _levels(pin)] == [1, 0, 1]  # the cut pulse does not fire again


def test_close_cuts_a_pulse_short(factory):
    gate = GpioGate(GpioGateConfig(type="gpio", pin=17, pulse_s=5), pin_factory=factory)
    gate.pulse()
    started = time.monotonic()
    gate.close()
    assert factory.pin(17).state == 0  # dropped before close() returned
    assert time.monotonic() - started < 2.5  # close does not sit out the 5 s pulse


def test_a_second_pulse_restarts_the_time_without_a_gap(factory):
    gate = GpioGate(GpioGateConfig(type="gpio", pin=17, pulse_s=1.0), pin_factory=factory)
    pin = factory.pin(17)
    gate.pulse()
    time.sleep(0.5)
    gate.pulse()  # the next person, 0.5 s later: open for a full pulse from now
    wait_until(lambda: pin.state == 0, what="the relay to drop")
    levels = _levels(pin)
    assert [level for _, level in levels] == [0, 1, 0]  # no drop between the two pulses
    assert levels[2][0] >= 1.5 - 0.005  # held from the first pulse to a full pulse after the second


def test_release_closes_then_gives_the_pin_back(factory):
    gate = GpioGate(GpioGateConfig(type="gpio", pin=17, pulse_s=5), pin_factory=factory)
    pin = factory.pin(17)
    gate.pulse()
    gate.release()
    assert pin.state == 0 and pin.function == "input"
    assert gate.pulse() is None  # a late pulse after release does nothing
    assert pin.state == 0


def test_mock_pin_factory_from_config():
    gate = open_gate(GpioGateConfig(type="gpio", pin=22, pin_factory="mock"))
    try:
        assert not gate.is_open
        assert gate.pin_factory_name == "mock"
        assert make_pin_factory("mock") is make_pin_factory("mock")  # one factory shared by all devices
    finally:
        gate.release()


def test_auto_leaves_the_choice_to_gpiozero():
    assert make_pin_factory("auto") is None


def test_fake_gate_closes_itself():
    gate = FakeGate(pulse_s=0.1)
    gate.pulse()
    assert gate.is_open
    wait_until(lambda: not gate.is_open, what="the fake gate to close itself")


def test_factory_picks_backend_by_type():
    assert isinstance(open_gate(NoGateConfig(type="none")), NoGate)
    assert isinstance(open_gate(FakeGateConfig()), FakeGate)


# --- door / turnstile sensor ------------------------------------------------------------------


def _sensor_gate(factory, **kw):
    config = GpioGateConfig(type="gpio", pin=17, pulse_s=0.2, sensor_pin=27, pass_window_s=kw.pop("window", 0.3), **kw)
    return GpioGate(config, pin_factory=factory)


def test_a_turn_within_the_window_counts_as_passed(factory):
    gate = _sensor_gate(factory)
    sensor = factory.pin(27)
    assert sensor.state == 1  # pull-up: a dry contact to ground reads high when idle
    results = []
    watch = gate.pulse()
    gate.watch(results.append)
    time.sleep(0.1)
    sensor.drive_low()  # the turnstile arm moves
    assert watch.wait(10.0) is True
    assert watch.turned_after_s >= 0.1 - 0.005  # measured from the pulse, not from the callback
    assert results == [True]


def test_no_turn_within_the_window_counts_as_not_passed(factory):
    gate = _sensor_gate(factory, window=0.2)
    results = []
    started = time.monotonic()
    watch = gate.pulse()
    gate.watch(results.append)
    assert watch.wait(10.0) is False
    assert time.monotonic() - started >= 0.2 - 0.005  # the whole window was waited for
    assert results == [False] and watch.reason == "window passed"
    factory.pin(27).drive_low()  # a late turn changes nothing
    assert results == [False]


def test_a_turn_before_the_callback_is_registered_is_not_lost(factory):
    gate = _sensor_gate(factory)
    gate.pulse()
    factory.pin(27).drive_low()
    results = []
    gate.watch(results.append)
    assert results == [True]


def test_a_turn_the_moment_the_relay_opens_counts_as_passed(factory):
    """The window is open before the relay is: a turn as the pin goes high is inside it."""
    gate = _sensor_gate(factory, window=5.0)
    relay, sensor = factory.pin(17), factory.pin(27)
    write = relay._set_state

    def energise_and_turn(value):
        write(value)
        if value:
            sensor.drive_low()  # the person was already pushing the arm
            sensor.drive_high()

    relay._set_state = energise_and_turn
    watch = gate.pulse()
    assert watch.wait(10.0) is True and watch.reason == "turned"


def test_the_next_pass_ends_the_previous_window_as_not_passed(factory):
    gate = _sensor_gate(factory, window=5.0)
    first = gate.pulse()
    second = gate.pulse()
    assert first.turned is False and first.reason == "superseded by the next pass"
    factory.pin(27).drive_low()
    assert second.wait(10.0) is True


def test_a_door_already_open_counts_as_passed(factory):
    gate = _sensor_gate(factory)
    factory.pin(27).drive_low()  # propped open
    watch = gate.pulse()
    assert watch.turned is True and watch.reason == "sensor already active"


def test_sensor_driving_high_when_active(factory):
    gate = _sensor_gate(factory, sensor_active_low=False)
    sensor = factory.pin(27)
    assert sensor.state == 0  # pull-down
    watch = gate.pulse()
    sensor.drive_high()
    assert watch.wait(10.0) is True


def test_without_a_sensor_every_pass_counts_as_passed(factory):
    gate = GpioGate(GpioGateConfig(type="gpio", pin=17, pulse_s=0.1), pin_factory=factory)
    assert not gate.has_sensor
    assert gate.pulse() is None
    results = []
    gate.watch(results.append)
    assert results == [True]


# --- boot state -------------------------------------------------------------------------------


def test_boot_config_drives_outputs_inactive_and_pulls_inputs():
    config = parse_config(
        {
            "gate": {"type": "gpio", "pin": 17, "sensor_pin": 27},
            "inputs": {"trigger_pin": 22, "led_red_pin": 6, "leds_active_high": False, "buzzer_pin": 12},
        }
    )
    text = "\n".join(boot_config_lines(config)).splitlines()
    settings = [line for line in text if not line.startswith("#")]
    assert settings == ["gpio=17=op,dl", "gpio=27=ip,pu", "gpio=22=ip,pu", "gpio=6=op,dh", "gpio=12=op,dl"]
    assert all("#" not in line for line in settings)  # config.txt has no end-of-line comments


def test_boot_config_of_an_active_low_relay_holds_it_high():
    config = parse_config({"gate": {"type": "gpio", "pin": 5, "active_high": False}})
    assert boot_config_lines(config)[0].splitlines() == ["# gate relay: closed", "gpio=5=op,dh"]


def test_boot_config_command_on_the_pillar_profile():
    result = subprocess.run(
        [sys.executable, "-m", "hardware.gate", "boot-config", "--config", str(ROOT / "config" / "pillar.toml")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:2] == ["# gate relay: closed", "gpio=17=op,dl"]
    assert BOOT_MARK_BEGIN.startswith("# ")


# --- exit paths -------------------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import atexit, os, signal, sys, time
    # A shell's background job or nohup starts us with SIGINT/SIGHUP ignored; a kiosk under
    # systemd starts with the defaults, which is what this test is about.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    from gpiozero.pins.mock import MockFactory
    factory = MockFactory()
    pin = factory.pin(17)
    # registered before the gate, so it runs after the gate's own exit hook (last in, first out)
    atexit.register(lambda: print("AT EXIT", int(pin.state), flush=True))
    from hardware.gate import GpioGate
    from sentinel.config import GpioGateConfig
    gate = GpioGate(GpioGateConfig(type="gpio", pin=17, pulse_s=30), pin_factory=factory)
    gate.pulse()
    print("OPEN", int(pin.state), flush=True)
    how = sys.argv[1]
    if how == "exception":
        raise RuntimeError("a bug in the kiosk")
    if how == "normal":
        sys.exit(0)
    time.sleep(30)
    """
)


@pytest.mark.parametrize(
    ("how", "sig", "returncode"),
    [
        ("normal", None, 0),
        ("exception", None, 1),
        ("signal", signal.SIGINT, -signal.SIGINT),  # KeyboardInterrupt, re-raised as the signal
        ("signal", signal.SIGTERM, 128 + signal.SIGTERM),
        ("signal", signal.SIGHUP, 128 + signal.SIGHUP),
    ],
    ids=["normal", "exception", "sigint", "sigterm", "sighup"],
)
def test_the_gate_is_closed_on_every_exit_path(how, sig, returncode):
    child, out, err = run_reading([sys.executable, "-c", CHILD, how], cwd=ROOT)
    try:
        assert out.next_line(60) == "OPEN 1", err.seen  # mid-pulse: relay energised
        if sig is not None:
            child.send_signal(sig)
        rest = out.rest(60)
        child.wait(60)
    finally:
        if child.poll() is None:
            child.kill()
    assert "AT EXIT 0" in rest, (rest, err.rest())
    assert child.returncode == returncode, err.rest()


def test_close_command_for_execstoppost(tmp_path):
    """What the unit runs after the kiosk died any way at all (SIGKILL from the watchdog too)."""
    config = tmp_path / "s.toml"
    config.write_text('[gate]\ntype = "gpio"\npin = 17\npin_factory = "mock"\n')
    result = subprocess.run(
        [sys.executable, "-m", "hardware.gate", "close", "--config", str(config)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "gate closed: GPIO 17 driven low (mock)" in result.stdout


def test_close_command_without_a_relay_is_a_no_op(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "hardware.gate", "close", "--config", str(ROOT / "config" / "handheld.toml")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0 and "no relay" in result.stdout


def test_close_command_with_a_bad_config_says_why(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[gate]\ntype = 'gpio'\npin = 99\n")
    result = subprocess.run(
        [sys.executable, "-m", "hardware.gate", "close", "--config", str(bad)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "gate.pin: bad value 99" in result.stderr


def test_pillar_profile_loads_a_gpio_gate():
    assert isinstance(load_config(ROOT / "config" / "pillar.toml").gate, GpioGateConfig)


def test_signal_guard_leaves_existing_handlers_alone():
    """`sentinel run` installs its own SIGTERM handler (stop the loop, close in `finally`)."""
    code = textwrap.dedent(
        """
        import signal
        from gpiozero.pins.mock import MockFactory
        mine = lambda *a: None
        signal.signal(signal.SIGTERM, mine)
        from hardware.gate import GpioGate
        from sentinel.config import GpioGateConfig
        GpioGate(GpioGateConfig(type="gpio", pin=17), pin_factory=MockFactory())
        print(signal.getsignal(signal.SIGTERM) is mine, signal.getsignal(signal.SIGHUP) is not signal.SIG_DFL)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["True", "True"], result.stderr


def test_gate_module_imports_no_gpio_library():
    code = "import sys, hardware.gate, hardware.inputs; print([m for m in ('gpiozero', 'lgpio', 'RPi') if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert result.stdout.strip() == "[]", result.stderr

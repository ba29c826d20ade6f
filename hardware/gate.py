"""Gate relay backends, chosen by `gate.type`: none, fake (demo, logs), gpio (gpiozero).

The gate must be closed whenever nothing says otherwise: at start, after a pulse, and on every
exit path, because a relay left energised is a door left open. The layers, outermost first:

- wiring: the relay is energised only while the pin is at its active level, so a Pi that is off,
  booting or crashed leaves the gate closed (docs/deploy.md);
- boot: `gpio=N=op,dl` in config.txt drives the pin to its closed level from the firmware on,
  long before Linux runs (`python -m hardware.gate boot-config` prints the lines, install.sh
  writes them);
- start: the relay device is created at its closed level;
- exit: the kiosk closes the gate in a `finally`; an `atexit` hook here closes every gpio gate
  still open before gpiozero releases the pins, and a SIGTERM/SIGHUP arriving while nobody
  handles them closes the gates and exits through `finally` blocks instead of dying mid-pulse;
- crash (segfault, SIGKILL from the watchdog): the unit's `ExecStopPost=` runs
  `python -m hardware.gate close`, which drives the pin to its closed level again.

Every gate has `fault` (None, or why the gate cannot be trusted now): the kiosk shows the gate
fault screen while idle as long as it is set (sentinel/pipeline.py). A gpio gate reports a pulse
that raised (until a later pulse works) and, with a sensor, a sensor active without a break for
`GATE_STUCK_S` while the relay is not pulsing (a door propped open, a turnstile stuck).

The pin factory ("auto", "lgpio", "rpigpio", "mock") is made by hardware/pins.py, shared with
the trigger, LEDs and buzzer (hardware/inputs.py); its helpers are re-exported here.

**Timing a pulse.** `pulse()` energises the relay on the calling thread (the kiosk's frame loop),
so the relay moves the moment the verdict is acted on, and returns at once; the pulse's end is
timed by one long-lived `PulseTimer` thread per gate, started at its first pulse and stopped
by `release`. gpiozero's own `blink(background=True)`, used before, joins the previous blink
thread and starts a new one for every pulse, and writes the pin only once that thread runs: part
of the 0.9 ms the relay step cost over the raw floor (issue 18, with the uploader's wake-up). A
second pulse while open restarts the time without a drop; `close` drops the relay at once and
cancels the pending end, so an old end never cuts a later pulse short. If the timer thread were dead, `pulse` starts a new one (logged): the relay must
never stay energised because its end was not timed.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hardware.pins import describe_pin_factory, make_pin_factory, prepare_lgpio_workdir  # noqa: F401 - re-exported
from sentinel.config import FakeGateConfig, GateConfig, GpioGateConfig, NoGateConfig

if TYPE_CHECKING:
    from hardware.inputs import GateMonitor, PassWatch
    from sentinel.config import SentinelConfig

log = logging.getLogger("hardware.gate")

#: seconds a door or turnstile sensor may stay active, with the relay closed, before the gate
#: counts as stuck open (the gate fault screen); a person walking through takes a few seconds
GATE_STUCK_S = 30.0


class NoGate:
    """Sites without a relay (handhelds, staffed doors): the verdict on screen is the gate."""

    has_sensor = False
    fault: str | None = None
    is_open = False
    sensor_active: bool | None = None  # no door sensor

    def pulse(self) -> None:
        pass

    def close(self) -> None:
        pass

    def release(self) -> None:
        pass


class FakeGate:
    """Demo and test gate: remembers when it was opened and closes itself after `pulse_s`."""

    has_sensor = False
    fault: str | None = None
    sensor_active: bool | None = None  # no door sensor

    def __init__(self, pulse_s: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self.pulse_s = pulse_s
        self.pulses: list[float] = []
        self._clock = clock
        self._lock = threading.Lock()
        self._timer = PulseTimer(self._end_pulse, name="fake-gate-pulse")
        self.is_open = False

    def pulse(self) -> None:
        with self._lock:
            self.pulses.append(self._clock())
            self.is_open = True
            token = self._timer.schedule(self.pulse_s)
        log.debug("gate open for %.1f s (pulse %d)", self.pulse_s, token)

    def _end_pulse(self, token: int) -> None:
        with self._lock:
            if not self._timer.is_current(token):
                return
            was_open, self.is_open = self.is_open, False
        if was_open:
            log.debug("gate closed")

    def close(self) -> None:
        with self._lock:
            self._timer.cancel()
            was_open, self.is_open = self.is_open, False
        if was_open:
            log.debug("gate closed")

    def release(self) -> None:
        self.close()
        self._timer.stop()


class PulseTimer:
    """One long-lived thread that calls `on_end(token)` when the latest scheduled pulse is due.

    `schedule(seconds)` (re)starts the time and returns the new pulse's token; `cancel()` forgets
    the pending end; `is_current(token)` tells the callback whether its pulse is still the latest
    (the caller checks it under its own lock, so a pulse made while the end was being delivered
    wins). The callback runs on the timer thread without the timer's lock held, so it may take the
    caller's lock. A timer whose thread died is restarted by the next `schedule`.
    """

    def __init__(self, on_end: Callable[[int], None], *, name: str = "gate-pulse", clock: Callable[[], float] = time.monotonic):
        self._on_end = on_end
        self._name = name
        self._clock = clock
        self._cond = threading.Condition(threading.Lock())
        self._due: float | None = None
        self._token = 0
        self._stopped = False
        self._thread: threading.Thread | None = None

    def schedule(self, seconds: float) -> int:
        with self._cond:
            self._token += 1
            self._due = self._clock() + seconds
            if self._thread is None or not self._thread.is_alive():
                if self._thread is not None:
                    log.error("the gate's pulse timer thread had died: started again")
                self._stopped = False
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            else:
                self._cond.notify()
            return self._token

    def cancel(self) -> None:
        with self._cond:
            self._token += 1
            self._due = None
            self._cond.notify()

    def is_current(self, token: int) -> bool:
        return token == self._token

    def stop(self, timeout_s: float = 2.0) -> None:
        with self._cond:
            self._stopped = True
            self._due = None
            self._cond.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stopped:
                        return
                    if self._due is None:
                        self._cond.wait()
                        continue
                    remaining = self._due - self._clock()
                    if remaining > 0:
                        self._cond.wait(remaining)
                        continue
                    self._due = None
                    token = self._token
                    break
            try:
                self._on_end(token)
            except Exception:  # noqa: BLE001 - the timer must outlive a failing callback
                log.exception("ending the gate pulse failed")


# --- gpio --------------------------------------------------------------------------------------


class GpioGate:
    """A relay on a GPIO pin through gpiozero, optionally with a door or turnstile sensor.

    `pulse()` energises the relay on the calling thread and returns at once; the pulse's end is
    timed by the gate's one `PulseTimer` thread (module docstring). It returns the sensor's
    `PassWatch` when there is a sensor. `watch(callback)` hands the latest
    pulse's answer to `callback(turned)`: True once the sensor saw the gate turn within
    `pass_window_s`, False when it did not (or when the next pulse came first).
    """

    def __init__(
        self,
        config: GpioGateConfig,
        pin_factory: Any = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        stuck_s: float = GATE_STUCK_S,
    ):
        from gpiozero import DigitalOutputDevice  # deferred: only kiosks with a relay need gpiozero

        if pin_factory is None:
            pin_factory = make_pin_factory(config.pin_factory)
        self.config = config
        self.pulse_s = config.pulse_s
        self._lock = threading.Lock()
        self._relay = DigitalOutputDevice(
            config.pin, active_high=config.active_high, initial_value=False, pin_factory=pin_factory
        )
        self._monitor: GateMonitor | None = None
        self._last_watch: PassWatch | None = None
        self._clock = clock
        self.stuck_s = max(stuck_s, config.pass_window_s)
        self._pulse_error: str | None = None
        self._pulsed_at: float | None = None
        self._timer = PulseTimer(self._end_pulse, name=f"gate-pulse-{config.pin}")
        try:
            if config.sensor_pin is not None:
                from hardware.inputs import GateMonitor

                self._monitor = GateMonitor(
                    config.sensor_pin,
                    active_low=config.sensor_active_low,
                    window_s=config.pass_window_s,
                    pin_factory=pin_factory,
                    clock=clock,
                )
        except BaseException:
            self._relay.close()
            raise
        _guard(self)
        log.info(
            "gate relay on GPIO %d (%s), %s factory%s",
            config.pin,
            "active high" if config.active_high else "active low",
            describe_pin_factory(self._relay),
            f", sensor on GPIO {config.sensor_pin}" if config.sensor_pin is not None else "",
        )

    @property
    def is_open(self) -> bool:
        return bool(self._relay.value)

    @property
    def has_sensor(self) -> bool:
        return self._monitor is not None

    @property
    def sensor_active(self) -> bool | None:
        """The door/turnstile sensor's state now; None without a sensor."""
        return None if self._monitor is None else self._monitor.is_active

    @property
    def fault(self) -> str | None:
        """Why the gate cannot be trusted now, or None (module docstring)."""
        if self._pulse_error is not None:
            return f"pulse failed: {self._pulse_error}"
        monitor = self._monitor
        if monitor is None:
            return None
        try:
            active_for = monitor.active_for()
        except Exception as e:  # noqa: BLE001 - an unreadable sensor is a fault of its own
            return f"sensor unreadable: {e}"
        pulsed_at = self._pulsed_at
        since_pulse = float("inf") if pulsed_at is None else self._clock() - pulsed_at
        # held open for a pass is fine for the pass window after the pulse
        if active_for >= self.stuck_s and since_pulse >= self.stuck_s:
            return f"sensor active for {active_for:.0f} s (gate stuck or door propped open)"
        return None

    @property
    def last_watch(self) -> PassWatch | None:
        """The sensor's window for the latest pulse (None without a sensor or before a pulse)."""
        return self._last_watch

    @property
    def pin_factory_name(self) -> str:
        return describe_pin_factory(self._relay)

    def pulse(self) -> PassWatch | None:
        with self._lock:
            if self._relay.closed:
                log.error("gate pulse after release: ignored")
                return None
            # Energised here, on the caller's thread; the end is timed by the gate's one timer
            # thread (module docstring). The end is scheduled first: a write that raises half-way
            # still gets its end, and an energised relay always has one. Timed again once the
            # relay is on, so that a slow write (a busy machine) never shortens the pulse.
            # The sensor's window opens before the relay does: a person quick through an
            # unlocked gate (or a test driving the sensor as soon as the pin goes high) turns it
            # inside the window, never before it.
            self._timer.schedule(self.pulse_s)
            if self._monitor is not None:
                self._last_watch = self._monitor.expect()
            try:
                self._relay.on()
            except Exception as e:
                self._pulse_error = f"{type(e).__name__}: {e}"[:200]
                raise
            self._timer.schedule(self.pulse_s)
            self._pulse_error = None
            self._pulsed_at = self._clock()
            return self._last_watch

    def watch(self, on_result: Callable[[bool], None]) -> None:
        """`on_result(turned)` for the latest pulse, once known (at once if it is known already)."""
        watch = self._last_watch
        if watch is None:
            on_result(True)  # no sensor: a pass counts as passed
            return
        watch.add_callback(lambda w: on_result(bool(w.turned)))

    def _end_pulse(self, token: int) -> None:
        """The timer thread: the latest pulse is over (an older one's end is ignored)."""
        with self._lock:
            if self._timer.is_current(token) and not self._relay.closed:
                self._relay.off()

    def close(self) -> None:
        # drops the relay now and forgets the pending end of a pulse in progress
        with self._lock:
            self._timer.cancel()
            if not self._relay.closed:
                self._relay.off()

    def release(self) -> None:
        """Close and give the pins back: when the kiosk closes (a released output pin floats, and
        the relay is wired to be closed when low or floating), and for tests and `sentinel doctor`."""
        self.close()
        with self._lock:
            if self._monitor is not None:
                self._monitor.close()
            self._relay.close()
        self._timer.stop()
        _LIVE.discard(self)


# --- exit paths --------------------------------------------------------------------------------

_LIVE: "weakref.WeakSet[GpioGate]" = weakref.WeakSet()
_guard_lock = threading.Lock()
_atexit_registered = False
_EXIT_SIGNALS = ("SIGTERM", "SIGHUP")


def close_all_gates() -> None:
    """Drive every gpio gate of this process to closed; safe from a signal handler or atexit."""
    for gate in list(_LIVE):
        try:
            gate.close()
        except Exception:  # noqa: BLE001 - on the way out, try every gate
            log.exception("could not close the gate")


def _guard(gate: GpioGate) -> None:
    global _atexit_registered
    with _guard_lock:
        _LIVE.add(gate)
        if not _atexit_registered:
            # Registered after gpiozero was imported, so it runs before gpiozero's own atexit
            # hook releases the pins (atexit is last in, first out).
            atexit.register(close_all_gates)
            _atexit_registered = True
    install_signal_guard()


def install_signal_guard() -> None:
    """SIGTERM and SIGHUP kill Python without running `finally` blocks or atexit, which would
    leave a relay energised mid-pulse. Where nobody handles them yet (the kiosk's `run` sets its
    own handlers, which close the gate through its loop), close the gates and exit cleanly."""
    if threading.current_thread() is not threading.main_thread():
        return
    for name in _EXIT_SIGNALS:
        sig = getattr(signal, name, None)
        if sig is None or signal.getsignal(sig) is not signal.SIG_DFL:
            continue
        signal.signal(sig, _close_and_exit)


def _close_and_exit(signum: int, frame: Any) -> None:
    close_all_gates()
    raise SystemExit(128 + signum)


#: what `open_gate` makes: each has `fault`, `is_open`, `sensor_active`, `pulse`, `close`, `release`
AnyGate = NoGate | FakeGate | GpioGate


def open_gate(config: GateConfig, pin_factory: Any = None) -> AnyGate:
    if isinstance(config, NoGateConfig):
        return NoGate()
    if isinstance(config, FakeGateConfig):
        return FakeGate(config.pulse_s)
    return GpioGate(config, pin_factory=pin_factory)


# --- boot state --------------------------------------------------------------------------------

BOOT_MARK_BEGIN = "# >>> sentinel: GPIO levels from power-on (written by install.sh; do not edit by hand)"
BOOT_MARK_END = "# <<< sentinel"


def boot_config_lines(config: "SentinelConfig") -> list[str]:
    """config.txt entries that set every sentinel pin from the firmware on: outputs (relay, LEDs,
    buzzer) driven to their inactive level, inputs (sensor, trigger) with their pull. Without
    them a pin floats for the seconds until the kiosk starts, and a relay board may click. Each
    entry is a comment line and a `gpio=` line."""
    lines: list[str] = []
    gate = config.gate
    if isinstance(gate, GpioGateConfig):
        lines.append(_output_line(gate.pin, gate.active_high, "gate relay: closed"))
        if gate.sensor_pin is not None:
            lines.append(_input_line(gate.sensor_pin, gate.sensor_active_low, "door/turnstile sensor"))
    inputs = config.inputs
    if inputs.trigger_pin is not None:
        lines.append(_input_line(inputs.trigger_pin, inputs.trigger_active_low, "trigger button"))
    for name, label in (("led_green_pin", "green LED"), ("led_red_pin", "red LED"), ("led_amber_pin", "amber LED")):
        pin = getattr(inputs, name)
        if pin is not None:
            lines.append(_output_line(pin, inputs.leds_active_high, f"{label}: off"))
    if inputs.buzzer_pin is not None:
        lines.append(_output_line(inputs.buzzer_pin, inputs.buzzer_active_high, "buzzer: silent"))
    return lines


def _output_line(pin: int, active_high: bool, what: str) -> str:
    # config.txt has no end-of-line comments: the comment goes on the line before
    return f"# {what}\ngpio={pin}=op,{'dl' if active_high else 'dh'}"


def _input_line(pin: int, active_low: bool, what: str) -> str:
    return f"# {what}\ngpio={pin}=ip,{'pu' if active_low else 'pd'}"


# --- command line: the unit's ExecStopPost= and install.sh ---------------------------------------


def main(argv: list[str] | None = None) -> int:
    """`python -m hardware.gate close|boot-config [--config FILE]`."""
    import argparse

    from sentinel.config import ConfigError, load_config

    parser = argparse.ArgumentParser(prog="python -m hardware.gate", description="Gate relay: force closed, print boot config.")
    parser.add_argument("action", choices=["close", "boot-config"])
    parser.add_argument("--config", default="/etc/sentinel/sentinel.toml")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as e:
        for problem in e.problems:
            print(f"{e.path}: {problem}", file=sys.stderr)
        return 2
    if args.action == "boot-config":
        for line in boot_config_lines(config):
            print(line)
        return 0
    if not isinstance(config.gate, GpioGateConfig):
        print(f"gate type {config.gate.type}: no relay to close")
        return 0
    gate = GpioGate(config.gate)
    gate.close()
    level = "high" if not config.gate.active_high else "low"
    print(f"gate closed: GPIO {config.gate.pin} driven {level} ({gate.pin_factory_name})")
    sys.stdout.flush()
    # Leave the pin driven: releasing it (what gpiozero does at exit) would return it to an input
    # under RPi.GPIO, left to the pin's pull. lgpio's lines keep their level when released.
    os._exit(0)


if __name__ == "__main__":  # pragma: no cover - exercised through subprocess tests
    sys.exit(main())

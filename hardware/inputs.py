"""GPIO besides the gate relay: the door or turnstile sensor, a handheld's trigger button, status
LEDs and a buzzer, through gpiozero (its MockFactory in tests), each optional.

- `GateMonitor`: did the gate turn after a pass? `expect()` opens a window of `window_s`; the
  sensor's first activation in it answers True, the end of the window (or the next pass) False.
  The answer comes on gpiozero's callback thread (a turn) or the window's timer thread; the kiosk
  turns a False into an amendment of the pass record (sentinel/pipeline.py). `active_for()` says
  how long the sensor has been active without a break: a door propped or a turnstile stuck open
  (`hardware.gate.GpioGate.fault`).
- `TriggerButton`: handhelds scan only on the trigger; `armed()` is True while it is held and
  for `arm_s` after a press; `take_press()` tells the kiosk once per press (to check the same
  code again on purpose, e.g. each passenger's phone in turn).
- `Indicators`: green, red and amber LEDs and an active buzzer following the screen; it has the
  display's `show(screen)` / `preview(frame)` so the kiosk can feed it beside the screen.

gpiozero is imported when a device is made, never at import time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("hardware.inputs")


# --- door / turnstile sensor ------------------------------------------------------------------


@dataclass
class PassWatch:
    """One pass's window. `turned` is None while open, then True or False; callbacks get the watch."""

    started_at: float
    window_s: float
    turned: bool | None = None
    turned_after_s: float | None = None
    reason: str = ""  # "turned", "window passed", "superseded by the next pass", "sensor already active"
    _done: threading.Event = field(default_factory=threading.Event, repr=False)
    _callbacks: list[Callable[["PassWatch"], None]] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add_callback(self, callback: Callable[["PassWatch"], None]) -> None:
        with self._lock:
            if not self._done.is_set():
                self._callbacks.append(callback)
                return
        _call(callback, self)

    def wait(self, timeout: float | None = None) -> bool | None:
        self._done.wait(timeout)
        return self.turned

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def _resolve(self, turned: bool, after_s: float | None, reason: str) -> bool:
        with self._lock:
            if self._done.is_set():
                return False
            self.turned, self.turned_after_s, self.reason = turned, after_s, reason
            self._done.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            _call(callback, self)
        return True


def _call(callback: Callable[[PassWatch], None], watch: PassWatch) -> None:
    try:
        callback(watch)
    except Exception:  # noqa: BLE001 - a consumer's bug must not stop the sensor thread
        log.exception("pass watch callback failed")


class GateMonitor:
    """A door contact or turnstile arm sensor on a GPIO pin.

    `active_low`: the sensor connects the pin to ground when the gate turns (the pin's pull-up
    is on), the usual wiring for a dry contact; False: it drives the pin high (pull-down on).
    """

    def __init__(
        self,
        pin: int,
        *,
        active_low: bool = True,
        window_s: float = 5.0,
        pin_factory: Any = None,
        bounce_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        from gpiozero import DigitalInputDevice

        self.pin = pin
        self.window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: PassWatch | None = None
        self._timer: threading.Timer | None = None
        self.turns = 0  # activations seen, for `sentinel doctor`
        self._sensor = DigitalInputDevice(pin, pull_up=active_low, bounce_time=bounce_s, pin_factory=pin_factory)
        self._active_since: float | None = clock() if self._sensor.is_active else None
        self._sensor.when_activated = self._on_activated
        self._sensor.when_deactivated = self._on_deactivated

    @property
    def is_active(self) -> bool:
        return bool(self._sensor.is_active)

    def expect(self) -> PassWatch:
        """A gate pulse just started: watch for a turn within the window."""
        now = self._clock()
        watch = PassWatch(started_at=now, window_s=self.window_s)
        with self._lock:
            previous, self._pending = self._pending, watch
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self.window_s, self._expire, args=(watch,))
            self._timer.daemon = True
            self._timer.start()
        if previous is not None:
            previous._resolve(False, None, "superseded by the next pass")
        if self.is_active:
            # A door held or propped open: the person can walk through, there will be no new edge.
            log.warning("gate sensor on GPIO %d already active at the pass (door propped open?)", self.pin)
            with self._lock:
                if self._pending is watch:
                    self._pending = None
            watch._resolve(True, 0.0, "sensor already active")
        return watch

    def active_for(self) -> float:
        """Seconds the sensor has been active without a break (0 while it is not)."""
        with self._lock:
            since = self._active_since
        if since is None:
            if not self.is_active:
                return 0.0
            with self._lock:  # active at start, or an edge gpiozero did not report
                since = self._active_since = self._clock()
        return max(0.0, self._clock() - since)

    def _on_deactivated(self) -> None:
        with self._lock:
            self._active_since = None

    def _on_activated(self) -> None:
        now = self._clock()
        with self._lock:
            if self._active_since is None:
                self._active_since = now
            self.turns += 1
            watch, self._pending = self._pending, None
        if watch is not None and watch._resolve(True, now - watch.started_at, "turned"):
            log.info("gate turned %.2f s after the pass", now - watch.started_at)

    def _expire(self, watch: PassWatch) -> None:
        with self._lock:
            if self._pending is watch:
                self._pending = None
        if watch._resolve(False, None, "window passed"):
            log.warning("gate did not turn within %.1f s of the pass: recorded as not passed", watch.window_s)

    def close(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._pending = None
        self._sensor.close()


# --- trigger button ---------------------------------------------------------------------------


class TriggerButton:
    """A handheld's trigger: the camera looks for codes only while `armed()`."""

    def __init__(
        self,
        pin: int,
        *,
        active_low: bool = True,
        arm_s: float = 5.0,
        pin_factory: Any = None,
        bounce_s: float | None = 0.02,
        clock: Callable[[], float] = time.monotonic,
        on_press: Callable[[], None] | None = None,
    ):
        from gpiozero import Button

        self.pin = pin
        self.arm_s = arm_s
        self._clock = clock
        self._on_press = on_press
        self._lock = threading.Lock()
        self._armed_until = float("-inf")
        self._unread_presses = 0
        self.presses = 0
        self._button = Button(pin, pull_up=active_low, bounce_time=bounce_s, pin_factory=pin_factory)
        self._button.when_pressed = self._pressed

    def _pressed(self) -> None:
        with self._lock:
            self.presses += 1
            self._unread_presses += 1
            self._armed_until = self._clock() + self.arm_s
        log.debug("trigger pressed")
        if self._on_press is not None:
            try:
                self._on_press()
            except Exception:  # noqa: BLE001
                log.exception("trigger callback failed")

    @property
    def is_pressed(self) -> bool:
        return bool(self._button.is_pressed)

    def armed(self) -> bool:
        """True while held and for `arm_s` after the last press."""
        if self.is_pressed:
            with self._lock:
                self._armed_until = max(self._armed_until, self._clock() + self.arm_s)
            return True
        return self._clock() < self._armed_until

    def disarm(self) -> None:
        """A code was read: stop looking until the next press."""
        with self._lock:
            self._armed_until = float("-inf")

    def take_press(self) -> bool:
        """True once for each press since the last call (the loop thread asks every frame)."""
        with self._lock:
            if self._unread_presses:
                self._unread_presses = 0
                return True
            return False

    def close(self) -> None:
        self._button.close()


# --- status LEDs and buzzer -------------------------------------------------------------------

#: screen kind → (green, red, amber, beeps). An LED is "on", "blink" or "off"; the beeps are
#: counted so that the verdict is heard without looking: 1 pass, 2 staff check, 3 deny.
PATTERNS: dict[str, tuple[str, str, str, int]] = {
    "idle": ("off", "off", "off", 0),
    "checking": ("off", "off", "on", 0),
    "pass": ("on", "off", "off", 1),
    "manual_check": ("off", "off", "blink", 2),
    "deny": ("off", "on", "off", 3),
    "unknown_code": ("off", "on", "off", 3),
    "fault": ("off", "blink", "off", 0),
    "one_at_a_time": ("off", "off", "blink", 1),
    "hold_closer": ("off", "off", "blink", 0),  # a code seen but not read: amber, no beep (the screen tones once)
    # handheld vehicle mode: a vehicle being checked shows amber; the prompts and the summary are quiet
    "vehicle": ("off", "off", "on", 0),
    "plate": ("off", "off", "on", 0),
    "vehicle_idle": ("off", "off", "off", 0),
    "vehicle_summary": ("off", "off", "off", 0),
}
#: any other screen kind: everything off, no beep
BEEP_ON_S = 0.08
BEEP_OFF_S = 0.08
BLINK_S = 0.4


class Indicators:
    """Status LEDs and a buzzer; any of them may be absent (None)."""

    def __init__(
        self,
        *,
        green: int | None = None,
        red: int | None = None,
        amber: int | None = None,
        buzzer: int | None = None,
        leds_active_high: bool = True,
        buzzer_active_high: bool = True,
        pin_factory: Any = None,
    ):
        from gpiozero import LED, Buzzer

        self._lock = threading.Lock()
        self._devices: list[Any] = []
        try:
            self.leds = {
                name: self._keep(LED(pin, active_high=leds_active_high, initial_value=False, pin_factory=pin_factory))
                for name, pin in (("green", green), ("red", red), ("amber", amber))
                if pin is not None
            }
            self.buzzer = (
                self._keep(Buzzer(buzzer, active_high=buzzer_active_high, initial_value=False, pin_factory=pin_factory))
                if buzzer is not None
                else None
            )
        except BaseException:
            self.close()
            raise
        self.current: str | None = None

    def _keep(self, device: Any) -> Any:
        self._devices.append(device)
        return device

    def signal(self, kind: str) -> None:
        """Show a screen kind ("pass", "deny"…); unknown kinds turn everything off."""
        green, red, amber, beeps = PATTERNS.get(kind, PATTERNS["idle"])
        with self._lock:
            if self._closed:
                return
            same = kind == self.current
            self.current = kind
            for name, state in (("green", green), ("red", red), ("amber", amber)):
                led = self.leds.get(name)
                if led is None:
                    continue
                if state == "on":
                    led.on()
                elif state == "blink":
                    if not same:  # restarting a blink every call would never let it turn
                        led.blink(on_time=BLINK_S, off_time=BLINK_S, background=True)
                else:
                    led.off()
            if self.buzzer is not None and beeps:  # every verdict is heard, even two passes in a row
                self.buzzer.beep(on_time=BEEP_ON_S, off_time=BEEP_OFF_S, n=beeps, background=True)

    # the display seam, so the kiosk can tee screens to the indicators
    def show(self, screen: Any) -> None:
        """A screen's kind; a screen carrying a verdict `cue` (a handheld's vehicle screen showing
        the latest check: `screen.vehicle.cue`) signals the cue, so the verdict is heard there too."""
        cue = getattr(screen, "cue", None) or getattr(getattr(screen, "vehicle", None), "cue", None)
        self.signal(str(cue) if cue else str(getattr(screen, "kind", screen)))

    def preview(self, frame: Any) -> None:
        pass

    @property
    def _closed(self) -> bool:
        return bool(self._devices) and all(d.closed for d in self._devices)

    def off(self) -> None:
        with self._lock:
            for device in self._devices:
                if not device.closed:
                    device.off()
            self.current = None

    def close(self) -> None:
        for device in self._devices:
            try:
                if not device.closed:
                    device.off()
                device.close()
            except Exception:  # noqa: BLE001
                log.exception("could not release an indicator pin")


class NoIndicators:
    leds: dict[str, Any] = {}
    buzzer = None

    def signal(self, kind: str) -> None:
        pass

    def show(self, screen: Any) -> None:
        pass

    def preview(self, frame: Any) -> None:
        pass

    def off(self) -> None:
        pass

    def close(self) -> None:
        pass


# --- from config ------------------------------------------------------------------------------


@dataclass
class Inputs:
    """What `[inputs]` configures: a trigger (or None) and the indicators (possibly none)."""

    trigger: TriggerButton | None
    indicators: Indicators | NoIndicators

    def close(self) -> None:
        self.indicators.close()
        if self.trigger is not None:
            self.trigger.close()


def used_pins(config: Any) -> dict[int, str]:
    """Every BCM pin a whole config uses, and for what (gate relay, sensor, trigger, LEDs…)."""
    from sentinel.config import GpioGateConfig

    pins: dict[int, str] = {}
    clashes: list[str] = []

    def take(pin: int | None, what: str) -> None:
        if pin is None:
            return
        if pin in pins:
            clashes.append(f"GPIO {pin} is both the {pins[pin]} and the {what}")
        pins[pin] = what

    gate = config.gate
    if isinstance(gate, GpioGateConfig):
        take(gate.pin, "gate relay (gate.pin)")
        take(gate.sensor_pin, "gate sensor (gate.sensor_pin)")
    inputs = config.inputs
    take(inputs.trigger_pin, "trigger (inputs.trigger_pin)")
    take(inputs.led_green_pin, "green LED (inputs.led_green_pin)")
    take(inputs.led_red_pin, "red LED (inputs.led_red_pin)")
    take(inputs.led_amber_pin, "amber LED (inputs.led_amber_pin)")
    take(inputs.buzzer_pin, "buzzer (inputs.buzzer_pin)")
    if clashes:
        raise ValueError("; ".join(clashes))
    return pins


def open_inputs(config: Any, pin_factory: Any = None, *, clock: Callable[[], float] = time.monotonic) -> Inputs:
    """The trigger and indicators of a whole `SentinelConfig` (its `[inputs]`; the gate's pins
    are checked against them). Nothing configured: no gpiozero import at all."""
    used_pins(config)  # raises ValueError naming both uses of a pin
    c = config.inputs
    wanted = [c.trigger_pin, c.led_green_pin, c.led_red_pin, c.led_amber_pin, c.buzzer_pin]
    if all(pin is None for pin in wanted):
        return Inputs(None, NoIndicators())
    if pin_factory is None:
        from hardware.pins import make_pin_factory

        pin_factory = make_pin_factory(c.pin_factory)
    trigger = None
    if c.trigger_pin is not None:
        trigger = TriggerButton(c.trigger_pin, active_low=c.trigger_active_low, arm_s=c.trigger_arm_s, pin_factory=pin_factory, clock=clock)
    try:
        if any(pin is not None for pin in wanted[1:]):
            indicators: Indicators | NoIndicators = Indicators(
                green=c.led_green_pin,
                red=c.led_red_pin,
                amber=c.led_amber_pin,
                buzzer=c.buzzer_pin,
                leds_active_high=c.leds_active_high,
                buzzer_active_high=c.buzzer_active_high,
                pin_factory=pin_factory,
            )
        else:
            indicators = NoIndicators()
    except BaseException:
        if trigger is not None:
            trigger.close()
        raise
    return Inputs(trigger, indicators)


class IndicatorDisplay:
    """A display that also drives the indicators: `show` goes to both, the indicators' faults
    never reach the kiosk loop. `build_kiosk` wraps its display in this when LEDs are configured."""

    def __init__(self, display: Any, indicators: Indicators | NoIndicators):
        self.display = display
        self.indicators = indicators

    def show(self, screen: Any) -> None:
        try:
            self.indicators.show(screen)
        except Exception:  # noqa: BLE001 - an LED must never stop a check
            log.exception("indicators failed")
        self.display.show(screen)

    def preview(self, frame: Any) -> None:
        self.display.preview(frame)

    def __getattr__(self, name: str) -> Any:  # close, status providers… of the real display
        return getattr(self.display, name)

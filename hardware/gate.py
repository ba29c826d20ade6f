"""Gate relay backends, chosen by `gate.type`: none, fake (demo, logs), gpio (gpiozero).

The gate must be closed whenever nothing says otherwise: at start, after a pulse, and on every
exit path, because a relay left energised is a door left open.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sentinel.config import FakeGateConfig, GateConfig, GpioGateConfig, NoGateConfig

log = logging.getLogger("hardware.gate")


class NoGate:
    """Sites without a relay (handhelds, staffed doors): the verdict on screen is the gate."""

    def pulse(self) -> None:
        pass

    def close(self) -> None:
        pass


class FakeGate:
    """Demo and test gate: remembers when it was opened and closes itself after `pulse_s`."""

    def __init__(self, pulse_s: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self.pulse_s = pulse_s
        self.pulses: list[float] = []
        self._clock = clock
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self.is_open = False

    def pulse(self) -> None:
        with self._lock:
            self.pulses.append(self._clock())
            self.is_open = True
            if self._timer:
                self._timer.cancel()
            self._timer = threading.Timer(self.pulse_s, self.close)
            self._timer.daemon = True
            self._timer.start()
        log.info("gate open for %.1f s", self.pulse_s)

    def close(self) -> None:
        with self._lock:
            if self._timer:
                self._timer.cancel()
                self._timer = None
            was_open, self.is_open = self.is_open, False
        if was_open:
            log.info("gate closed")


class GpioGate:
    """A relay on a GPIO pin through gpiozero; its pin factory picks lgpio (Pi 5), RPi.GPIO, or mock."""

    def __init__(self, config: GpioGateConfig, pin_factory=None):
        from gpiozero import DigitalOutputDevice  # deferred: only kiosks with a relay need gpiozero

        if pin_factory is None and config.pin_factory != "auto":
            pin_factory = _pin_factory(config.pin_factory)
        self.pulse_s = config.pulse_s
        self._relay = DigitalOutputDevice(
            config.pin, active_high=config.active_high, initial_value=False, pin_factory=pin_factory
        )

    @property
    def is_open(self) -> bool:
        return bool(self._relay.value)

    def pulse(self) -> None:
        # gpiozero times the pulse on its own thread and leaves the relay off afterwards.
        self._relay.blink(on_time=self.pulse_s, off_time=0, n=1, background=True)

    def close(self) -> None:
        if not self._relay.closed:
            self._relay.off()

    def release(self) -> None:
        self.close()
        self._relay.close()


def _pin_factory(name: str):
    if name == "mock":
        from gpiozero.pins.mock import MockFactory

        return MockFactory()
    if name == "lgpio":
        from gpiozero.pins.lgpio import LGPIOFactory

        return LGPIOFactory()
    from gpiozero.pins.rpigpio import RPiGPIOFactory

    return RPiGPIOFactory()


def open_gate(config: GateConfig):
    if isinstance(config, NoGateConfig):
        return NoGate()
    if isinstance(config, FakeGateConfig):
        return FakeGate(config.pulse_s)
    return GpioGate(config)

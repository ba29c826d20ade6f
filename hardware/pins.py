"""gpiozero pin factories, shared by the gate relay (hardware/gate.py) and the trigger, LEDs and
buzzer (hardware/inputs.py): one instance per configured name, so every device of a kiosk sits on
the same factory and a pin cannot be claimed twice unnoticed.

"auto" leaves the choice to gpiozero ($GPIOZERO_PIN_FACTORY if set, else the first of lgpio,
RPi.GPIO, pigpio that loads; on a Pi 5 that is lgpio). lgpio writes a notification pipe into its
working directory, which under the unit's read-only file system fails ("can not open gpiochip"):
`prepare_lgpio_workdir` points it at a writable directory first (`LG_WD`). gpiozero is imported
only when a named factory is made; an unknown name raises ValueError.

Its own module because both the gate and the inputs need it, and the gate also uses the inputs'
`GateMonitor`: kept in gate.py it made the two modules import each other.
"""

from __future__ import annotations

import os
import tempfile
import threading
from typing import Any

_factories: dict[str, Any] = {}
_factories_lock = threading.Lock()


def make_pin_factory(name: str) -> Any:
    """The gpiozero pin factory for a config's `pin_factory`: None for "auto" (gpiozero's own
    choice, shared by every device), one shared instance per name otherwise."""
    prepare_lgpio_workdir()
    if name == "auto":
        return None
    with _factories_lock:
        factory = _factories.get(name)
        if factory is None:
            if name == "mock":
                from gpiozero.pins.mock import MockFactory

                factory = MockFactory()
            elif name == "lgpio":
                from gpiozero.pins.lgpio import LGPIOFactory

                factory = LGPIOFactory()
            elif name == "rpigpio":
                from gpiozero.pins.rpigpio import RPiGPIOFactory

                factory = RPiGPIOFactory()
            else:
                raise ValueError(f"unknown pin factory {name!r}")
            _factories[name] = factory
        return factory


def prepare_lgpio_workdir() -> None:
    """lgpio creates `.lgd-nfy*` pipes in $LG_WD (default: the working directory); under
    ProtectSystem=strict the working directory may be read-only."""
    wd = os.environ.get("LG_WD")
    if wd and os.access(wd, os.W_OK):
        return
    if os.access(os.getcwd(), os.W_OK):
        return
    for candidate in (os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0], os.environ.get("STATE_DIRECTORY", "").split(":")[0], tempfile.gettempdir()):
        if candidate and os.access(candidate, os.W_OK):
            os.environ["LG_WD"] = candidate
            return


def describe_pin_factory(device: Any) -> str:
    """"lgpio", "rpigpio", "mock"… for logs and `sentinel doctor`."""
    name = type(getattr(device, "pin_factory", None)).__name__
    return {
        "LGPIOFactory": "lgpio",
        "RPiGPIOFactory": "rpigpio",
        "PiGPIOFactory": "pigpio",
        "NativeFactory": "native",
        "MockFactory": "mock",
    }.get(name, name)

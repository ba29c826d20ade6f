"""The battery's charge, where the hardware reports it: a handheld's status bar shows it.

Read from Linux's power_supply class in sysfs (/sys/class/power_supply: laptop batteries, and UPS
HATs whose kernel driver registers one) or from a file a UPS HAT's daemon writes. How it fails:
nothing there, or nothing readable, is None and nothing is shown (an unreadable value is logged
once); it never raises to the caller. Moved out of sentinel/handheld.py so the core reads no
device files.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("sentinel.handheld")

POWER_SUPPLY = Path("/sys/class/power_supply")


class Battery:
    """The battery's charge where the hardware reports it, else None (and nothing is shown).

    `source`: "auto" (the first power_supply of type Battery under `root` with a capacity: laptop
    batteries, and UPS HATs whose kernel driver registers one), "none", or a path: a power_supply
    folder, or a file holding the percentage (what a UPS HAT's daemon may write, e.g. from an
    INA219 or MAX17040 fuel gauge). Read at most every `every_s` seconds: the status bar polls
    once a second and sysfs reads of a fuel gauge go over I²C."""

    def __init__(self, source: str = "auto", *, root: Path = POWER_SUPPLY, every_s: float = 20.0, clock: Callable[[], float] = time.monotonic):
        self.source = source
        self.root = Path(root)
        self.every_s = every_s
        self._clock = clock
        self._read_at: float | None = None
        self._value: tuple[int | None, bool | None] = (None, None)
        self._complained = False

    def level(self) -> int | None:
        return self._reading()[0]

    def charging(self) -> bool | None:
        return self._reading()[1]

    def _reading(self) -> tuple[int | None, bool | None]:
        now = self._clock()
        if self._read_at is None or now - self._read_at >= self.every_s:
            self._read_at = now
            try:
                self._value = self._read()
            except (OSError, ValueError) as e:
                if not self._complained:
                    log.warning("battery level unreadable (%s): not shown", e)
                    self._complained = True
                self._value = (None, None)
        return self._value

    def _read(self) -> tuple[int | None, bool | None]:
        if self.source == "none":
            return (None, None)
        if self.source == "auto":
            if not self.root.is_dir():
                return (None, None)
            for supply in sorted(self.root.iterdir()):
                if _read_text(supply / "type") == "Battery" and (supply / "capacity").exists():
                    return _supply_reading(supply)
            return (None, None)
        path = Path(self.source)
        if path.is_dir():
            return _supply_reading(path)
        if not path.exists():
            return (None, None)
        return (_percent(path.read_text(encoding="utf-8")), None)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return None


def _percent(text: str) -> int:
    value = float(text.strip().rstrip("%").strip())
    if not 0 <= value <= 100:
        raise ValueError(f"battery level {value} is not a percentage")
    return round(value)


def _supply_reading(supply: Path) -> tuple[int | None, bool | None]:
    capacity = _read_text(supply / "capacity")
    if capacity is None:
        return (None, None)
    status = _read_text(supply / "status")
    charging = None if status is None else status in ("Charging", "Full")
    return (_percent(capacity), charging)

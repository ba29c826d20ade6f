"""The handheld controller's vocabulary: the parts it is given (as Protocols), its phases, the
events it tells its listeners, and the `[handheld]` settings it reads.

No behaviour lives here; a part that raises is the controller's to catch (it logs and goes on:
a battery gauge or a trigger that fails never stops the checks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from sentinel.screens import Screen
from sentinel.vehicle import AddResult, Check, VehicleSession, VehicleVerdict

if TYPE_CHECKING:
    from sentinel.config import HandheldConfig


class BatteryGauge(Protocol):
    """The battery's charge (percent) and whether it is charging; None where unknown
    (hardware.battery.Battery reads it from /sys; the kiosk passes one)."""

    def level(self) -> int | None: ...

    def charging(self) -> bool | None: ...


class VehicleOutbox(Protocol):
    """Where a finished vehicle's record goes (sentinel.outbox.Outbox): `add` makes it durable or
    raises; `spill` keeps it in memory when the disk refuses it (False: not kept either)."""

    def add(self, record: Any) -> Any: ...

    def spill(self, record: Any) -> bool: ...


class HandheldTrigger(Protocol):
    """The handheld's trigger (hardware.inputs.TriggerButton): `presses` counts every press since
    start, `armed` is true while it is held or shortly after."""

    presses: int

    def armed(self) -> bool: ...


class ScreenSink(Protocol):
    """The real display the controller draws on: `show` a screen, `preview` a camera frame."""

    def show(self, screen: Screen) -> None: ...

    def preview(self, frame: Any) -> None: ...


class NoBattery:
    """No battery known: nothing is shown."""

    def level(self) -> int | None:
        return None

    def charging(self) -> bool | None:
        return None




class Phase(StrEnum):
    IDLE = "idle"  # no vehicle: Start; the camera off unless the trigger is armed
    OPEN = "open"  # a vehicle open: checks are added to it
    PLATE = "plate"  # the plate keypad over an open vehicle (checks are still added)
    SUMMARY = "summary"  # the last vehicle's verdict, for summary_s (Back reopens it meanwhile)


@dataclass(frozen=True)
class VehicleEvent:
    """What the controller did, for the demo's lines and for tests."""

    kind: str  # started | check | plate | finished | cancelled | reopened
    session: VehicleSession
    add: AddResult | None = None
    check: Check | None = None
    verdict: VehicleVerdict | None = None
    record_id: str | None = None
    durable: bool = False
    finish_s: float = 0.0  # finishing: the record's commit and the verdict screen, seconds


class Settings:
    """The `[handheld]` section's values (defaults when built without a config)."""

    def __init__(self, config: HandheldConfig | None):
        from sentinel.config import HandheldConfig

        c = config or HandheldConfig(enabled=True)
        self.trigger_starts_vehicle = c.trigger_starts_vehicle
        self.plate = c.plate
        self.max_occupants = c.max_occupants
        self.vehicle_timeout_s = c.vehicle_timeout_s
        self.summary_s = c.summary_s
        self.camera_linger_s = c.camera_linger_s


class HandheldDisplay:
    """The display the Pipeline is given on a handheld: its screens go to the controller, which
    shows the vehicle screens on the real display (`inner`); camera frames go straight there.
    The pipeline uses nothing else of a display (`pipeline.Display`)."""

    def __init__(self, on_screen: Callable[[Screen], None], inner: ScreenSink):
        self._on_screen = on_screen  # the controller's
        self.inner = inner

    def show(self, screen: Screen) -> None:
        self._on_screen(screen)

    def preview(self, frame: Any) -> None:
        self.inner.preview(frame)

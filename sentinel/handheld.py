"""The handheld unit at a drive-through checkpoint: vehicle checks on top of the kiosk pipeline.

The pipeline stays what it is on a pillar (one person at a time: decode, verify, record, screen);
this controller sits beside it and groups its checks into vehicles:

- **start** a vehicle by touch (Start, Next vehicle) or the trigger; optionally type the **plate**
  on the keypad; the **driver and every passenger** show their codes in turn, each check is made,
  recorded and shown by the pipeline as usual, and the controller adds it to the vehicle by the
  rules in `sentinel.vehicle` (same person twice: flagged, not counted twice; a failed person
  re-scanned: the latest result counts);
- **finish** shows the vehicle's verdict and commits one `vehicle_session` record (plate,
  occupants, every check's record id and credential hash, the verdict) to the same outbox as the
  check records: delivered by the same uploader, offline or not.

Seams, so that it is wired by hand in tests and by `build_kiosk` on a handheld:

- `controller.display`: give this to the Pipeline as its display. The pipeline's screens come
  through it; while a vehicle is open they become the vehicle screen (the people checked so far,
  the latest check as a card), and the controller's own screens go to the real display.
- `controller.on_outcome` (or `controller.chain(other)`): the pipeline's `on_outcome`.
- `controller.gate_camera(source)`: the camera runs only while a vehicle is open or the trigger
  is armed (`hardware.camera.gated.GatedSource`).
- `controller.press(button_id)`: a touch on one of its screens (the pygame display calls it).

Threads: outcomes arrive on the kiosk loop, touches on the display's thread, trigger presses and
time-outs on the controller's ticker; one lock orders them, and nothing under it blocks for
long (the outbox commit of a finished vehicle is the longest, a few ms).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sentinel.policy import VerdictKind
from sentinel.screens import Button, Icon, KeypadView, OccupantRow, Screen, ScreenKind, VehicleView
from sentinel.vehicle import (
    AddKind,
    AddResult,
    AttemptRole,
    Check,
    PlateEntry,
    VehicleSession,
    VehicleVerdict,
    new_id,
    seat_label,
    vehicle_reason_text,
)

if TYPE_CHECKING:
    from sentinel.config import HandheldConfig, SentinelConfig
    from sentinel.contract import VehicleSessionIn

log = logging.getLogger("sentinel.handheld")

#: (zh-CN, en) of the vehicle screens' words
TEXT: dict[str, tuple[str, str]] = {
    "vehicle": ("车辆核验", "Vehicle check"),
    "vehicle_plate": ("车辆 {plate}", "Vehicle {plate}"),
    "start_hint_trigger": ("点击开始，或按扳机", "Tap Start, or press the trigger"),
    "start_hint": ("点击开始核验下一辆车", "Tap Start for the next vehicle"),
    "camera_off": ("摄像头已关闭，省电中", "Camera off to save the battery"),
    "last_vehicle": ("上一辆：{what}", "Last vehicle: {what}"),
    "start": ("开始核验", "Start"),
    "next": ("下一辆", "Next vehicle"),
    "finish": ("完成", "Finish"),
    "cancel": ("取消", "Cancel"),
    "plate": ("车牌", "Plate"),
    "no_plate": ("车牌未录入", "No plate entered"),
    "show_code": ("请出示健康码", "Show your health code"),
    "next_person": ("请下一位出示健康码", "Next person: show your code"),
    "rescan_armed": ("重扫{seat}", "Re-scan {seat}"),
    "rescan_armed_hint": ("请出示刷新后的健康码", "Show the refreshed code"),
    "checked_n": ("已核验 {n} 人", "{n} checked"),
    "counts": ("{n}人 · 未通过{f}人", "{n} checked, {f} failed"),
    "counts_all": ("{n}人 · 全部通过", "{n} checked, all passed"),
    "more": ("↑ 还有{n}人", "↑ {n} more"),
    "newest": ("↓ 回到最新", "↓ back to the newest"),
    "more_passed": ("另有{n}人通过", "{n} more passed"),  # the summary: who is not listed all passed
    "more_listed": ("另有{n}人未列出", "{n} more not listed"),
    "chip": ("重扫", "Re-scan"),
    "chip_armed": ("待重扫", "Waiting"),
    "driver_first": ("请驾驶员出示健康码", "Driver first: show the code"),
    "then_passengers": ("然后乘客依次出示，不必下车", "then each passenger in turn, nobody gets out"),
    "duplicate_title": ("重复出示", "Shown twice"),
    "duplicate_message": ("与{seat}为同一人或同一凭证，不重复计数", "Same as {seat}: not counted twice"),
    "flag_duplicate": ("重复出示", "Shown twice"),
    "flag_duplicate_n": ("重复出示{n}次", "Shown {n} more times"),
    "flag_rescanned": ("已重扫", "Re-scanned"),
    "flag_offline": ("离线判定", "Offline"),
    "vehicle_full": ("已达{n}人上限，未计入本车", "Vehicle full ({n}): not added"),
    "seat_check": ("{seat}", "{seat}"),
    "seat_rescan": ("{seat} 重扫", "{seat}: re-scan"),
    "plate_title": ("录入车牌", "Enter the plate"),
    "plate_label": ("车牌号", "Plate"),
    "plate_empty": ("请选择省份简称", "Choose the province"),
    "plate_letter": ("请输入发牌机关字母", "Now the issuing letter"),
    "plate_short": ("车牌未输完整", "Plate not complete"),
    "plate_ok": ("格式正确，请点确定", "Valid plate: tap OK"),
    "plate_bad": ("不是有效的车牌", "Not a valid plate"),
    "page_characters": ("ABC 123", "ABC 123"),
    "page_provinces": ("省份", "Province"),
    "back": ("删除", "Delete"),
    "ok": ("确定", "OK"),
    "skip": ("跳过", "Skip"),
    "summary_pass": ("全车通行", "Vehicle may pass"),
    "summary_deny": ("禁止通行", "Vehicle refused"),
    "summary_manual": ("请人工核验", "Staff will check"),
}


def text(key: str, language: str, **params: Any) -> str:
    zh, en = TEXT[key]
    return (zh if language == "zh-CN" else en).format(**params)


_SUMMARY_KEY = {VerdictKind.PASS: "summary_pass", VerdictKind.DENY: "summary_deny", VerdictKind.MANUAL_CHECK: "summary_manual"}
_VERDICT_ICON = {VerdictKind.PASS: Icon.PASS, VerdictKind.DENY: Icon.DENY, VerdictKind.MANUAL_CHECK: Icon.MANUAL}
_VERDICT_SCREEN = {VerdictKind.PASS: ScreenKind.PASS, VerdictKind.DENY: ScreenKind.DENY, VerdictKind.MANUAL_CHECK: ScreenKind.MANUAL_CHECK}
#: pipeline screens that end in an outcome: held back until it says which occupant they are
_RESULT_KINDS = {ScreenKind.PASS, ScreenKind.DENY, ScreenKind.MANUAL_CHECK, ScreenKind.UNKNOWN_CODE}


# --- battery ----------------------------------------------------------------------------------------

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


# --- the controller ----------------------------------------------------------------------------------


class Phase(StrEnum):
    IDLE = "idle"  # no vehicle: Start; the camera off unless the trigger is armed
    OPEN = "open"  # a vehicle open: checks are added to it
    PLATE = "plate"  # the plate keypad over an open vehicle (checks are still added)
    SUMMARY = "summary"  # the last vehicle's verdict, for summary_s


@dataclass(frozen=True)
class VehicleEvent:
    """What the controller did, for the demo's lines and for tests."""

    kind: str  # started | check | plate | finished | cancelled
    session: VehicleSession
    add: AddResult | None = None
    check: Check | None = None
    verdict: VehicleVerdict | None = None
    record_id: str | None = None
    durable: bool = False
    finish_s: float = 0.0  # finishing: the record's commit and the verdict screen, seconds


class _Settings:
    """The `[handheld]` section's values (defaults when built without a config)."""

    def __init__(self, config: "HandheldConfig | None"):
        from sentinel.config import HandheldConfig

        c = config or HandheldConfig(enabled=True)
        self.trigger_starts_vehicle = c.trigger_starts_vehicle
        self.plate = c.plate
        self.max_occupants = c.max_occupants
        self.vehicle_timeout_s = c.vehicle_timeout_s
        self.summary_s = c.summary_s
        self.camera_linger_s = c.camera_linger_s
        self.battery = c.battery


class HandheldController:
    def __init__(
        self,
        *,
        outbox: Any,
        device_id: str,
        site_id: str,
        display: Any,
        config: "HandheldConfig | None" = None,
        language: str = "zh-CN",
        trigger: Any = None,
        battery: Battery | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_event: Callable[[VehicleEvent], None] | None = None,
        ticker: bool = True,
    ):
        self.settings = _Settings(config)
        self._outbox = outbox
        self.device_id = device_id
        self.site_id = site_id
        self._inner = display
        self.language = language
        self.trigger = trigger
        self.battery = battery if battery is not None else Battery(self.settings.battery)
        self._clock = clock
        self._wall = wall
        self._listeners: list[Callable[[VehicleEvent], None]] = [on_event] if on_event else []
        self._lock = threading.RLock()
        self.display = HandheldDisplay(self, display)

        self.phase = Phase.IDLE
        self.session: VehicleSession | None = None
        self.last: VehicleSession | None = None  # the last finished vehicle
        self.last_verdict: VehicleVerdict | None = None
        self.plate_entry: PlateEntry | None = None
        self._pages_back = 0  # the open vehicle's list of people, turned back this many pages
        self._pipeline_screen: Screen = Screen.prompt(ScreenKind.IDLE, language)
        self._pending_result: Screen | None = None  # a verdict screen waiting for its outcome
        self._card: Screen | None = None
        self._finish_pending = False
        self._finish_asked_at = 0.0
        self._last_activity = clock()
        self._summary_until = 0.0
        self._presses_seen = getattr(trigger, "presses", 0) if trigger is not None else 0
        self.sessions_recorded = 0

        if hasattr(display, "connect"):
            try:
                display.connect(on_button=self.press)
            except TypeError:  # a display without touch buttons: the trigger and time-outs still work
                log.info("display %s takes no buttons", type(display).__name__)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        with self._lock:
            self._render()
        if ticker:
            self._thread = threading.Thread(target=self._tick_loop, name="handheld", daemon=True)
            self._thread.start()

    @classmethod
    def from_config(cls, config: "SentinelConfig", *, outbox: Any, display: Any, trigger: Any = None, **kw: Any) -> "HandheldController":
        return cls(
            outbox=outbox,
            device_id=config.device.id,
            site_id=config.device.site_id,
            display=display,
            config=config.handheld,
            language=config.device.language,
            trigger=trigger,
            **kw,
        )

    # --- wiring -------------------------------------------------------------------------------------

    def subscribe(self, listener: Callable[[VehicleEvent], None]) -> None:
        self._listeners.append(listener)

    def chain(self, other: Callable[[Any], None] | None) -> Callable[[Any], None]:
        """An `on_outcome` for the Pipeline: this controller first, then `other` (the demo's lines)."""

        def both(outcome: Any) -> None:
            try:
                self.on_outcome(outcome)
            except Exception:  # the vehicle's bookkeeping must never stop the kiosk loop
                log.exception("handheld controller failed on an outcome")
            if other is not None:
                other(outcome)

        return both

    def gate_camera(self, source: Any) -> Any:
        from hardware.camera.gated import GatedSource

        return GatedSource(source, self.scanning_active, linger_s=self.settings.camera_linger_s)

    def battery_level(self) -> int | None:
        return self.battery.level()

    def status_fields(self) -> dict[str, Any]:
        """For the status bar: the battery, where there is one."""
        return {"battery": self.battery.level(), "charging": self.battery.charging()}

    def scanning_active(self) -> bool:
        """The camera and decoder run: a vehicle is open, or the trigger is held or armed."""
        if self.phase in (Phase.OPEN, Phase.PLATE):
            return True
        trigger = self.trigger
        if trigger is None:
            return False
        try:
            return bool(trigger.armed())
        except Exception:
            log.exception("trigger state unreadable")
            return False

    def close(self) -> None:
        """Stop the ticker; a vehicle still open with people in it is recorded (closed_by
        shutdown), so that switching the handheld off never loses a vehicle."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(2.0)
        with self._lock:
            if self.session is not None and self.session.occupants:
                log.warning("vehicle %s still open at shutdown: recorded as it is", self.session.id)
                self._finish("shutdown")

    # --- the pipeline's side ------------------------------------------------------------------------------

    def _on_pipeline_screen(self, screen: Screen) -> None:
        with self._lock:
            self._pipeline_screen = screen
            if self.phase in (Phase.OPEN, Phase.PLATE):
                if screen.kind in _RESULT_KINDS:
                    self._pending_result = screen  # drawn with its outcome, a moment later
                    return
                self._card = self._prompt_card() if screen.kind == ScreenKind.IDLE else screen
                cue = screen.kind if screen.kind in (ScreenKind.CHECKING, ScreenKind.FAULT) else None
                self._render(cue)
                return
            if self.phase == Phase.SUMMARY and screen.kind == ScreenKind.IDLE:
                return  # the pipeline's idle does not cut the vehicle's verdict short
            if screen.kind == ScreenKind.IDLE:
                self.phase = Phase.IDLE
                self._render()
                return
            # A check outside any vehicle (the trigger without a vehicle): the pipeline's own screen.
            self.phase = Phase.IDLE
            self._show(screen)

    def on_outcome(self, outcome: Any) -> None:
        with self._lock:
            result_screen, self._pending_result = self._pending_result, None
            session = self.session
            if session is None or self.phase not in (Phase.OPEN, Phase.PLATE):
                if result_screen is not None:
                    self._show(result_screen)
                return
            check = self._check(outcome)
            add = session.add(check)
            self._last_activity = self._clock()
            self._card = self._result_card(add, check, result_screen)
            self._pages_back = 0  # a new check: the list shows the newest people again
            cue = ScreenKind.MANUAL_CHECK if add.kind == AddKind.DUPLICATE else (result_screen.kind if result_screen else None)
            log.info("vehicle %s: check %s → %s (seat %s)", session.id[-6:], check.verdict.kind.value, add.kind.value,
                     add.occupant.seat if add.occupant else "-")
            if self._finish_pending:
                self._emit(VehicleEvent("check", session, add=add, check=check))
                if self.session is session:
                    self._finish("finish")
            else:
                self._render(cue)
                self._emit(VehicleEvent("check", session, add=add, check=check))

    def _check(self, outcome: Any) -> Check:
        return Check(
            record_id=outcome.record_id,
            credential_kind=outcome.credential_kind,
            credential_hash=outcome.credential_hash,
            status=outcome.status,
            verdict=outcome.verdict,
            offline=outcome.offline,
            name_masked=outcome.person or "",
            id_masked=outcome.id_masked,
            at=self._wall(),
            latency_s=outcome.latency_s,
        )

    # --- staff ----------------------------------------------------------------------------------------------

    def press(self, button: str) -> None:
        """A touch on a button of the handheld's screens (any thread)."""
        with self._lock:
            self._last_activity = self._clock()
            if button in ("start", "next"):
                if self.phase in (Phase.IDLE, Phase.SUMMARY):
                    self.start()
            elif button == "finish":
                if self.session is None or self.session.rescan_seat is None:  # the button is off meanwhile
                    self.finish()
            elif button == "cancel":
                self.cancel()
            elif button == "plate":
                self.open_plate()
            elif button.startswith("key:"):
                self.plate_key(button[4:])
            elif button in ("rows:older", "rows:newest"):  # the list of people, paged (ui/vehicle.py)
                if self.session is not None and self.phase == Phase.OPEN:
                    self._pages_back = self._pages_back + 1 if button == "rows:older" else 0
                    self._render()
            elif button.startswith("rescan:"):
                if self.session is not None and self.phase == Phase.OPEN:
                    try:
                        seat = int(button[7:])
                    except ValueError:
                        return
                    if self.session.arm_rescan(seat):
                        self._card = self._prompt_card() if self._pipeline_screen.kind == ScreenKind.IDLE else self._card
                        self._render()
            else:
                log.debug("unknown button %r", button)

    def start(self) -> VehicleSession:
        with self._lock:
            if self.session is not None:
                return self.session
            self.session = VehicleSession(self._wall(), max_occupants=self.settings.max_occupants)
            self.phase = Phase.PLATE if self.settings.plate == "ask" else Phase.OPEN
            self.plate_entry = PlateEntry() if self.phase == Phase.PLATE else None
            self._card = self._prompt_card()
            self._finish_pending = False
            self._last_activity = self._clock()
            log.info("vehicle %s started", self.session.id)
            self._emit(VehicleEvent("started", self.session))
            self._render()
            return self.session

    def open_plate(self) -> None:
        with self._lock:
            if self.session is None or self.phase != Phase.OPEN or self.settings.plate == "off":
                return
            self.plate_entry = PlateEntry(self.session.plate or "")
            self.phase = Phase.PLATE
            self._render()

    def plate_key(self, key: str) -> None:
        with self._lock:
            entry, session = self.plate_entry, self.session
            if entry is None or session is None or self.phase != Phase.PLATE:
                return
            if key == "ok":
                if not entry.valid:
                    return
                session.set_plate(entry.text)
                self._close_plate()
                self._emit(VehicleEvent("plate", session))
                return
            if key == "skip":
                self._close_plate()
                return
            entry.press(key)
            self._render()

    def enter_plate(self, plate: str | None) -> None:
        """Set the plate without the keypad (a script; a plate reader); raises ValueError if invalid."""
        with self._lock:
            if self.session is None:
                raise ValueError("no vehicle open")
            self.session.set_plate(plate)
            if self.phase == Phase.PLATE:
                self._close_plate()
            else:
                self._render()
            self._emit(VehicleEvent("plate", self.session))

    def _close_plate(self) -> None:
        self.plate_entry = None
        self.phase = Phase.OPEN
        self._render()

    def arm_rescan(self, seat: int | None) -> bool:
        with self._lock:
            if self.session is None:
                return False
            ok = self.session.arm_rescan(seat)
            self._render()
            return ok

    @property
    def checking(self) -> bool:
        """The pipeline is deciding a check (its result is not in yet)."""
        return self._pipeline_screen.kind == ScreenKind.CHECKING or self._pending_result is not None

    def finish(self) -> None:
        """Finish the open vehicle: at once, or as soon as the check in flight is decided."""
        with self._lock:
            if self.session is None:
                return
            if self.checking:
                self._finish_pending = True
                self._finish_asked_at = self._clock()
                return
            self._finish("finish")

    def cancel(self) -> None:
        """Drop the open vehicle; only while nobody was checked in it (otherwise: Finish)."""
        with self._lock:
            session = self.session
            if session is None or session.occupants:
                return
            self._cancel()

    def _cancel(self) -> None:
        session = self.session
        assert session is not None
        session.finish(self._wall(), "cancelled")
        self.session = None
        self.plate_entry = None
        self._finish_pending = False
        self.phase = Phase.IDLE
        log.info("vehicle %s cancelled (nobody checked)", session.id)
        self._emit(VehicleEvent("cancelled", session))
        self._render()

    def _finish(self, closed_by: str) -> None:
        session = self.session
        assert session is not None
        self._finish_pending = False
        if not session.occupants:
            self._cancel()
            return
        started = time.perf_counter()
        verdict = session.finish(self._wall(), closed_by)
        try:
            record = session_record(session, self.device_id, self.site_id)
        except ValueError:  # a bug: the vehicle is still shown and its check records are kept
            log.exception("vehicle %s: could not make its record", session.id)
            record_id, durable = None, False
        else:
            record_id, durable = self._commit(record)
        self.sessions_recorded += 1
        self.session = None
        self.plate_entry = None
        self.last, self.last_verdict = session, verdict
        self.phase = Phase.SUMMARY
        self._summary_until = self._clock() + self.settings.summary_s
        log.info("vehicle %s finished (%s): %s %s, %d occupants, record %s%s", session.id, closed_by, verdict.kind.value,
                 verdict.reason, len(session.occupants), record_id, "" if durable else " (NOT durable)")
        self._render(_VERDICT_SCREEN[verdict.kind])
        self._emit(VehicleEvent("finished", session, verdict=verdict, record_id=record_id, durable=durable,
                                finish_s=time.perf_counter() - started))

    def _commit(self, record: "VehicleSessionIn") -> tuple[str | None, bool]:
        """The vehicle's record into the outbox, durable; held in memory if the disk refuses it."""
        try:
            self._outbox.add(record)
            return record.id, True
        except Exception as e:
            log.error("could not commit the vehicle record %s: %s", record.id, e)
        spill = getattr(self._outbox, "spill", None)
        try:
            if spill is not None and spill(record):
                return record.id, False
        except Exception:
            log.exception("could not keep the vehicle record in memory either")
        log.critical("vehicle record %s LOST", record.id)
        return None, False

    # --- time ---------------------------------------------------------------------------------------------

    def tick(self) -> None:
        """Trigger presses, the summary's end, a forgotten vehicle, a finish waiting too long."""
        with self._lock:
            now = self._clock()
            trigger = self.trigger
            if trigger is not None:
                presses = getattr(trigger, "presses", 0)
                if presses != self._presses_seen:
                    self._presses_seen = presses
                    self._last_activity = now
                    if self.phase in (Phase.IDLE, Phase.SUMMARY) and self.settings.trigger_starts_vehicle:
                        self.start()
            if self.phase == Phase.SUMMARY and now >= self._summary_until:
                self.phase = Phase.IDLE
                self._render()
            if self.session is not None:
                if self._finish_pending and (not self.checking or now - self._finish_asked_at > 10.0):
                    self._finish("finish")
                elif now - self._last_activity >= self.settings.vehicle_timeout_s and not self.checking:
                    log.warning("vehicle %s left open for %.0f s: finished by itself", self.session.id, now - self._last_activity)
                    self._finish("timeout")

    def _tick_loop(self) -> None:
        while not self._stop.wait(0.1):
            try:
                self.tick()
            except Exception:
                log.exception("handheld tick failed")

    # --- screens ---------------------------------------------------------------------------------------------

    def _emit(self, event: VehicleEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("vehicle event listener failed")

    def _show(self, screen: Screen) -> None:
        try:
            self._inner.show(screen)
        except Exception:  # a display fault must not stop checks
            log.exception("display failed")

    def _render(self, cue: ScreenKind | None = None) -> None:
        self._show(self.screen(cue))

    def screen(self, cue: ScreenKind | None = None) -> Screen:
        """The screen for the current state (pure given the state; tests and samples call it)."""
        lang = self.language
        if self.phase == Phase.SUMMARY and self.last is not None and self.last_verdict is not None:
            return summary_screen(self.last, self.last_verdict, lang, cue=cue)
        if self.phase == Phase.PLATE and self.session is not None and self.plate_entry is not None:
            return plate_screen(self.plate_entry, lang, has_plate=self.session.plate is not None, cue=cue)
        if self.phase == Phase.OPEN and self.session is not None:
            return session_screen(self.session, lang, self._card, cue=cue, plate_button=self.settings.plate != "off",
                                  pages_back=self._pages_back)
        return idle_screen(lang, self.last, self.last_verdict, trigger=self.trigger is not None)

    def _prompt_card(self) -> Screen:
        session = self.session
        lang = self.language
        hint = ""
        if session is not None and session.rescan_seat is not None:
            message = text("rescan_armed", lang, seat=seat_label(session.rescan_seat, lang))
            hint = text("rescan_armed_hint", lang)
        elif session is not None and session.occupants:
            message = text("next_person", lang)
        else:
            message = text("show_code", lang)
        return Screen(ScreenKind.IDLE, message, hint=hint, language=lang)

    def _result_card(self, add: AddResult, check: Check, result_screen: Screen | None) -> Screen:
        lang = self.language
        base = result_screen or Screen.result(check.verdict, _bare_status(check), lang, check.offline)
        occupant = add.occupant
        if add.kind == AddKind.DUPLICATE and occupant is not None:
            return Screen(
                ScreenKind.MANUAL_CHECK,
                text("duplicate_message", lang, seat=seat_label(occupant.seat, lang)),
                person=base.person,
                title=text("duplicate_title", lang),
                time=base.time,
                language=lang,
            )
        if add.kind == AddKind.RESCAN and occupant is not None:
            return replace(base, hint=text("seat_rescan", lang, seat=seat_label(occupant.seat, lang)))
        if add.kind == AddKind.NEW and occupant is not None:
            return replace(base, hint=seat_label(occupant.seat, lang))
        if add.kind == AddKind.IGNORED and check.credential_kind is not None and self.session is not None:
            return replace(base, hint=text("vehicle_full", lang, n=self.session.max_occupants))
        return base


def _bare_status(check: Check):
    from sentinel.health import HealthStatus, Person, Status

    try:
        status = Status(check.status) if check.status else Status.VERIFY_FAILED
    except ValueError:
        status = Status.VERIFY_FAILED
    person = Person(name_masked=check.name_masked) if check.name_masked else None
    return HealthStatus(status=status, person=person if status.is_colour else None)


class HandheldDisplay:
    """The display the Pipeline is given on a handheld: its screens go to the controller, which
    shows the vehicle screens on the real display; frames and everything else pass through."""

    def __init__(self, controller: HandheldController, inner: Any):
        self._controller = controller
        self.inner = inner

    def show(self, screen: Screen) -> None:
        self._controller._on_pipeline_screen(screen)

    def preview(self, frame: Any) -> None:
        self.inner.preview(frame)

    def __getattr__(self, name: str) -> Any:  # connect, close, current… of the real display
        return getattr(self.inner, name)


# --- screens (pure) ---------------------------------------------------------------------------------------


def _row(occupant, lang: str, armed: bool) -> OccupantRow:
    flags = []
    if occupant.duplicates:
        flags.append(text("flag_duplicate", lang) if occupant.duplicates == 1 else text("flag_duplicate_n", lang, n=occupant.duplicates))
    if occupant.rescanned:
        flags.append(text("flag_rescanned", lang))
    if occupant.offline and not occupant.verdict.reason.startswith("offline"):  # "offline_allowed" says it already
        flags.append(text("flag_offline", lang))
    return OccupantRow(
        seat=occupant.seat,
        label=seat_label(occupant.seat, lang),
        person=occupant.name_masked,
        verdict=occupant.verdict.kind.value,
        text=occupant.verdict.text(lang),
        flags=tuple(flags),
        button="" if occupant.passed else f"rescan:{occupant.seat}",
        armed=armed,
        chip="" if occupant.passed else text("chip_armed" if armed else "chip", lang),
    )


def _rows(session: VehicleSession, lang: str) -> tuple[OccupantRow, ...]:
    return tuple(_row(o, lang, session.rescan_seat == o.seat) for o in session.occupants)


def _counts(session: VehicleSession, lang: str) -> str:
    c = session.counts()
    if not c["occupants"]:
        return ""
    failed = c["occupants"] - c["passed"]
    return text("counts", lang, n=c["occupants"], f=failed) if failed else text("counts_all", lang, n=c["occupants"])


def _plate_hint(session: VehicleSession, lang: str) -> str:
    return "" if session.plate else text("no_plate", lang)


def session_screen(session: VehicleSession, lang: str, card: Screen | None, *, cue: ScreenKind | None = None, plate_button: bool = True,
                   pages_back: int = 0) -> Screen:
    title = text("vehicle_plate", lang, plate=session.plate) if session.plate else text("vehicle", lang)
    buttons = []
    if plate_button:
        buttons.append(Button("plate", text("plate", lang)))
    if session.occupants:
        # a re-scan is pending: finishing now would judge the car on the failed check (tap the
        # armed row again to cancel the re-scan, then finish)
        buttons.append(Button("finish", text("finish", lang), primary=True, enabled=session.rescan_seat is None))
    else:
        buttons.append(Button("cancel", text("cancel", lang)))
    view = VehicleView(
        plate=session.plate or "",
        plate_hint=_plate_hint(session, lang),
        rows=_rows(session, lang),
        more=TEXT["more"][0 if lang == "zh-CN" else 1],
        newest=TEXT["newest"][0 if lang == "zh-CN" else 1],
        pages_back=pages_back,
        counts=_counts(session, lang),
        check=card,
        buttons=tuple(buttons),
        camera_on=True,
        cue=cue,
    )
    if session.occupants:
        message, hint = text("checked_n", lang, n=len(session.occupants)), ""
    else:
        message, hint = text("driver_first", lang), text("then_passengers", lang)
    return Screen(ScreenKind.VEHICLE, message, title=title, hint=hint, language=lang, vehicle=view)


def plate_screen(entry: PlateEntry, lang: str, *, has_plate: bool = False, cue: ScreenKind | None = None) -> Screen:
    """The keypad; a check made meanwhile is heard (its cue), and listed when the keypad closes."""
    problem = entry.problem
    if problem is None:
        message = text("plate_ok", lang)
    elif problem == "empty":
        message = text("plate_empty", lang)
    elif len(entry.text) == 1:
        message = text("plate_letter", lang)
    elif problem == "short":
        message = text("plate_short", lang)
    else:
        message = text("plate_bad", lang)
    keys = tuple(Button(f"key:{ch}", ch, enabled=entry.allowed(ch)) for ch in entry.keys())
    page_label = text("page_characters", lang) if entry.page == "province" else text("page_provinces", lang)
    actions = (
        Button("key:page", page_label),
        Button("key:back", text("back", lang), enabled=bool(entry.text)),
        Button("key:ok", text("ok", lang), enabled=entry.valid, primary=True),
        Button("key:skip", text("cancel", lang) if has_plate else text("skip", lang)),
    )
    keypad = KeypadView(label=text("plate_label", lang), text=entry.text, valid=entry.valid, message=message, keys=keys, actions=actions)
    return Screen(ScreenKind.PLATE, entry.text or message, title=text("plate_title", lang), hint=message, language=lang,
                  vehicle=VehicleView(keypad=keypad, camera_on=True, cue=cue))


def summary_screen(
    session: VehicleSession, verdict: VehicleVerdict, lang: str, *, cue: ScreenKind | None = None, tz: "tzinfo | None" = None
) -> Screen:
    title = text(_SUMMARY_KEY[verdict.kind], lang)
    message = vehicle_reason_text(verdict, lang)
    view = VehicleView(
        plate=session.plate or "",
        plate_hint=_plate_hint(session, lang),
        rows=tuple(replace(r, button="") for r in _rows(session, lang)),
        # the summary lists who failed first; this says who did not fit ({n} filled in when drawn)
        more=TEXT["more_listed"][0 if lang == "zh-CN" else 1],
        more_passed=TEXT["more_passed"][0 if lang == "zh-CN" else 1],
        counts=_counts(session, lang),
        buttons=(Button("next", text("next", lang), primary=True),),
        cue=cue,
    )
    when = f"{session.finished_at.astimezone(tz):%H:%M:%S}" if session.finished_at else ""
    return Screen(ScreenKind.VEHICLE_SUMMARY, message, title=title, icon=_VERDICT_ICON[verdict.kind], offline=session.offline,
                  time=when, language=lang, vehicle=view)


def idle_screen(lang: str, last: VehicleSession | None = None, last_verdict: VehicleVerdict | None = None, *, trigger: bool = False) -> Screen:
    counts = ""
    if last is not None and last_verdict is not None:
        what = " ".join(x for x in (last.plate or "", text(_SUMMARY_KEY[last_verdict.kind], lang)) if x)
        counts = text("last_vehicle", lang, what=what)
    view = VehicleView(counts=counts, buttons=(Button("start", text("start", lang), primary=True),))
    return Screen(
        ScreenKind.VEHICLE_IDLE,
        text("start_hint_trigger" if trigger else "start_hint", lang),
        title=text("vehicle", lang),
        hint=text("camera_off", lang),
        language=lang,
        vehicle=view,
    )


# --- the record ----------------------------------------------------------------------------------------------


def session_record(session: VehicleSession, device_id: str, site_id: str, *, record_id: str | None = None) -> "VehicleSessionIn":
    """The vehicle as the outbox keeps it and the service stores it (`contract.VehicleSessionIn`).
    Attempts without a credential hash (a pipeline that did not say it) are left out, logged."""
    from sentinel.contract import Mode, VehicleAttempt, VehicleOccupant, VehicleSessionIn

    verdict = session.verdict()
    occupants = []
    for occupant in session.occupants:
        attempts = []
        for attempt in occupant.attempts:
            c = attempt.check
            if not c.credential_hash or not c.credential_kind:
                log.error("vehicle %s seat %d: a check without a credential hash is left out of the record", session.id, occupant.seat)
                continue
            attempts.append(
                VehicleAttempt(
                    record_id=c.record_id,
                    role=attempt.role.value,
                    credential_kind=c.credential_kind,
                    credential_hash=c.credential_hash,
                    verdict=c.verdict.kind,
                    reason=c.verdict.reason,
                    mode=Mode.OFFLINE if c.offline else Mode.ONLINE,
                )
            )
        if not attempts:
            continue
        latest = occupant.latest
        counted = [a for a in attempts if a.role != AttemptRole.DUPLICATE.value]
        occupants.append(
            VehicleOccupant(
                seat=occupant.seat,
                verdict=latest.verdict.kind,
                reason=latest.verdict.reason,
                record_id=latest.record_id,
                credential_hash=(counted or attempts)[-1].credential_hash,
                duplicate=occupant.duplicates > 0,
                rescanned=occupant.rescanned,
                attempts=attempts[-20:],
            )
        )
    finished = session.finished_at or datetime.now(UTC)
    c = session.counts()
    return VehicleSessionIn(
        kind="vehicle_session",
        id=record_id or new_id(),
        created_at=finished,
        device_id=device_id,
        site_id=site_id,
        session_id=session.id,
        started_at=session.started_at,
        finished_at=finished,
        closed_by=session.closed_by if session.closed_by in ("timeout", "shutdown") else "finish",
        plate=session.plate,
        verdict=verdict.kind,
        reason=verdict.reason,
        mode=Mode.OFFLINE if session.offline else Mode.ONLINE,
        occupants=occupants,
        extra={"duration_s": round((finished - session.started_at).total_seconds(), 3), "rescans": c["rescans"], "duplicates": c["duplicates"]},
    )

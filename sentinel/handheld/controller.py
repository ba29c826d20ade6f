"""The handheld controller: groups the pipeline's checks into vehicles, owns the vehicle's
state and its ticker thread, and gives the pipeline a display (`HandheldDisplay`) whose screens
become the vehicle screen while a vehicle is open. Why and how: `sentinel/handheld/__init__.py`.

One state machine (the vehicle, the plate keypad, the summary) whose transitions all run under
one lock; its parts and events (`parts`), cards (`cards`), screens and record live beside it. A
part that raises (display, trigger, outbox, a listener) is logged and the vehicle goes on; a
vehicle record the disk refuses is kept in memory (`Outbox.spill`); lost only if that fails too (logged).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sentinel.handheld.cards import prompt_card, result_card
from sentinel.handheld.parts import BatteryGauge, HandheldDisplay, HandheldTrigger, NoBattery, Phase, ScreenSink, Settings, VehicleEvent, VehicleOutbox
from sentinel.handheld.record import session_record
from sentinel.handheld.screens import _VERDICT_SCREEN, idle_screen, plate_screen, session_screen, summary_screen
from sentinel.screens import Screen, ScreenKind
from sentinel.vehicle import AddKind, Check, PlateEntry, VehicleSession, VehicleVerdict

if TYPE_CHECKING:
    from sentinel.config import HandheldConfig, SentinelConfig
    from sentinel.contract import VehicleSessionIn
    from sentinel.ports import CheckOutcome


log = logging.getLogger("sentinel.handheld")


#: pipeline screens that end in an outcome: held back until it says which occupant they are
_RESULT_KINDS = {ScreenKind.PASS, ScreenKind.DENY, ScreenKind.MANUAL_CHECK, ScreenKind.UNKNOWN_CODE}


class HandheldController:
    def __init__(
        self,
        *,
        outbox: VehicleOutbox,
        device_id: str,
        site_id: str,
        display: ScreenSink,
        config: HandheldConfig | None = None,
        language: str = "zh-CN",
        trigger: HandheldTrigger | None = None,
        battery: BatteryGauge | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_event: Callable[[VehicleEvent], None] | None = None,
        ticker: bool = True,
    ):
        self.settings = Settings(config)
        self._outbox = outbox
        self.device_id = device_id
        self.site_id = site_id
        self._inner = display
        self.language = language
        self.trigger = trigger
        self.battery: BatteryGauge = battery if battery is not None else NoBattery()
        self._clock = clock
        self._wall = wall
        self._listeners: list[Callable[[VehicleEvent], None]] = [on_event] if on_event else []
        self._lock = threading.RLock()
        self.display = HandheldDisplay(self._on_pipeline_screen, display)

        self.phase = Phase.IDLE
        self.session: VehicleSession | None = None
        self.last: VehicleSession | None = None  # the last finished vehicle
        self.last_verdict: VehicleVerdict | None = None
        self._last_record_id: str | None = None  # the last finished vehicle's record, for a reopened one to replace
        self._replaces: str | None = None  # the open vehicle was reopened: the record its next one replaces
        self.plate_entry: PlateEntry | None = None
        self._pages_back = 0  # the open vehicle's list of people, turned back this many pages
        self._pipeline_screen: Screen = Screen.prompt(ScreenKind.IDLE, language)
        self._awaiting_outcome = False  # a verdict shown in a vehicle whose outcome (it carries the screen) is due
        self._card: Screen | None = None
        self._finish_pending = False
        self._finish_asked_at = 0.0
        self._last_activity = clock()
        self._summary_until = 0.0
        self._presses_seen = trigger.presses if trigger is not None else 0
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
    def from_config(cls, config: SentinelConfig, *, outbox: VehicleOutbox, display: ScreenSink, trigger: HandheldTrigger | None = None,
                    **kw: Any) -> HandheldController:
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

    def gate_camera(self, source: Any, gated: Callable[..., Any]) -> Any:
        """`source`, running only while `scanning_active` (and `camera_linger_s` after): `gated` is
        the wrapper the kiosk passes (hardware.camera.gated.GatedSource; the core imports no hardware)."""
        return gated(source, self.scanning_active, linger_s=self.settings.camera_linger_s)

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
                    self._awaiting_outcome = True  # drawn from its outcome (CheckOutcome.screen), a moment later
                    return
                self._card = prompt_card(self.session, self.language) if screen.kind == ScreenKind.IDLE else screen
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

    def on_outcome(self, outcome: CheckOutcome) -> None:
        """The presenter of one check: the pipeline's outcome, with the verdict screen it carries,
        becomes the vehicle's card (or, the vehicle gone meanwhile, the screen as it is)."""
        with self._lock:
            result_screen = outcome.screen
            was_awaiting, self._awaiting_outcome = self._awaiting_outcome, False
            session = self.session
            if session is None or self.phase not in (Phase.OPEN, Phase.PLATE):
                if was_awaiting and result_screen is not None:
                    self._show(result_screen)
                return
            check = self._check(outcome)
            add = session.add(check)
            self._last_activity = self._clock()
            self._card = result_card(add, check, result_screen, self.language, self.session)
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

    def _check(self, outcome: CheckOutcome) -> Check:
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
            elif button == "back":  # the summary's Back: the car is still there, staff go back to it
                self.reopen()
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
                        self._card = prompt_card(self.session, self.language) if self._pipeline_screen.kind == ScreenKind.IDLE else self._card
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
            self._card = prompt_card(self.session, self.language)
            self._finish_pending = False
            self._last_activity = self._clock()
            log.info("vehicle %s started", self.session.id)
            self._emit(VehicleEvent("started", self.session))
            self._render()
            return self.session

    def reopen(self) -> VehicleSession | None:
        """Back from the summary to the vehicle just finished (a passenger missed, a refreshed code
        to re-scan): it is open again as it was, same session id, its people and their checks. Its
        record was committed at Finish (durable, as every vehicle's is) and stays; the next Finish
        commits the vehicle as it is then, a new record naming the one it replaces
        (`extra.replaces`). Only while the summary is up: once it is gone the car has driven on."""
        with self._lock:
            session = self.last
            if self.phase != Phase.SUMMARY or self.session is not None or session is None or session.closed_by == "shutdown":
                return None
            session.finished_at = None  # open again (sentinel.vehicle: `open` is "not finished")
            session.closed_by = None
            self.session = session
            self._replaces = self._last_record_id
            self.phase = Phase.OPEN
            self._card = prompt_card(self.session, self.language)
            self._pages_back = 0
            self._finish_pending = False
            self._last_activity = self._clock()
            log.info("vehicle %s reopened from its summary (record %s to be replaced)", session.id, self._replaces)
            self._emit(VehicleEvent("reopened", session))
            self._render()
            return session

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
        return self._pipeline_screen.kind == ScreenKind.CHECKING or self._awaiting_outcome

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
        self._replaces = None
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
            record = session_record(session, self.device_id, self.site_id, replaces=self._replaces)
        except ValueError:  # a bug: the vehicle is still shown and its check records are kept
            log.exception("vehicle %s: could not make its record", session.id)
            record_id, durable = None, False
        else:
            record_id, durable = self._commit(record)
        self.sessions_recorded += 1
        self._last_record_id, self._replaces = record_id, None
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

    def _commit(self, record: VehicleSessionIn) -> tuple[str | None, bool]:
        """The vehicle's record into the outbox, durable; held in memory if the disk refuses it."""
        try:
            self._outbox.add(record)
            return record.id, True
        except Exception as e:
            log.error("could not commit the vehicle record %s: %s", record.id, e)
        try:
            if self._outbox.spill(record):
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
                presses = trigger.presses
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
            return summary_screen(self.last, self.last_verdict, lang, cue=cue, back=self.last.closed_by != "shutdown")
        if self.phase == Phase.PLATE and self.session is not None and self.plate_entry is not None:
            return plate_screen(self.plate_entry, lang, has_plate=self.session.plate is not None, cue=cue)
        if self.phase == Phase.OPEN and self.session is not None:
            return session_screen(self.session, lang, self._card, cue=cue, plate_button=self.settings.plate != "off",
                                  pages_back=self._pages_back)
        return idle_screen(lang, self.last, self.last_verdict, trigger=self.trigger is not None)


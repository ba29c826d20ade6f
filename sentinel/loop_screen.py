"""What the kiosk's screen shows around the checks: idle, a verdict for `result_s`, a fault, the
request to hold a code closer. The pipeline (`sentinel.pipeline`) decides the checks; this keeps its
`State` and the screen in step, on the frame loop's thread only.

**Faults** are shown only instead of the idle screen, never over a verdict or a check in flight:
`camera` (no frame for `camera_timeout_s`; it outranks the rest, and frames arriving again end it),
anything the kiosk's `faults()` probe names (asked at most every `fault_poll_s`), and `gate` after a
pulse raised until a later pulse works. The screen goes back to idle when the probe clears.

**A code seen but not read** (`sentinel.decoding.Scan.unreadable`): after `hint_after_frames` frames
in a row, `HOLD_CLOSER` for `hint_s` after the last such frame, only instead of idle or a non-camera
fault, never while paused. A request, not an outcome: no check, no record, no gate.

Failure: a display that raises is logged and skipped (checks and the gate go on); a fault probe that
raises counts as no fault this time and is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from enum import StrEnum

from sentinel.decoding import Scan
from sentinel.frames import Frame
from sentinel.ports import Display
from sentinel.screens import Screen, ScreenKind

log = logging.getLogger("sentinel.pipeline")


class State(StrEnum):
    IDLE = "idle"
    CHECKING = "checking"
    RESULT = "result"
    FAULT = "fault"


@dataclass(eq=False)
class LoopScreen:
    """The loop's state and its screen. `language` and `result_s` are asked each time (a config
    reload changes them between checks)."""

    display: Display
    _: KW_ONLY
    clock: Callable[[], float]
    language: Callable[[], str]
    result_s: Callable[[], float]
    camera_timeout_s: float
    faults: Callable[[], str | None] | None
    fault_poll_s: float
    hint_after_frames: int
    hint_s: float
    state: State = field(default=State.IDLE, init=False)
    fault: str | None = field(default=None, init=False)  # the part on the fault screen while state is FAULT
    shown_kind: ScreenKind | None = field(default=None, init=False)
    gate_failed: bool = field(default=False, init=False)  # the last pulse raised: the gate fault until one works

    def __post_init__(self) -> None:
        self.hint_after_frames = max(1, self.hint_after_frames)
        self._probed: str | None = None  # what `faults()` said last (besides the camera)
        self._next_fault_poll = self.clock()
        self._result_until = 0.0
        self._last_frame_at = self.clock()
        self._unreadable_frames = 0  # frames in a row with a code located but none read
        self.show(Screen.prompt(ScreenKind.IDLE, self.language()))

    # --- frames --------------------------------------------------------------------------------

    def no_frame(self, now: float, paused: bool) -> None:
        """The camera gave nothing in time; `paused`: off on purpose, which is no fault."""
        if paused:
            self._last_frame_at = now
            if self.state == State.FAULT and self.fault == "camera":
                self.to_idle()
        if self.fault != "camera" and now - self._last_frame_at > self.camera_timeout_s:
            if self.state != State.CHECKING:
                log.warning("no frame from the camera for %.1f s", now - self._last_frame_at)
                self.to_fault("camera")
        self.expire_result(now)

    def frame(self, frame: Frame, now: float) -> None:
        self._last_frame_at = now
        try:
            self.display.preview(frame)
        except Exception:
            log.exception("display preview failed")
        if self.state == State.FAULT and self.fault == "camera":
            log.info("camera delivers frames again")
            self.to_idle()
        self.expire_result(now)

    def note_unreadable(self, scan: Scan, now: float, paused: bool) -> None:
        """Ask for the phone closer / brighter after `hint_after_frames` frames in a row with a
        code located but none read; keep asking while it lasts (module docstring)."""
        if scan.codes or not scan.unreadable:
            self._unreadable_frames = 0
            return
        self._unreadable_frames += 1
        if self._unreadable_frames < self.hint_after_frames or paused:
            return
        if self.state == State.RESULT and self.shown_kind == ScreenKind.HOLD_CLOSER:
            self._result_until = now + self.hint_s  # still in view and still unread: the request stays
        elif self.state == State.IDLE or (self.state == State.FAULT and self.fault != "camera"):
            log.info("a code in view could not be read (%d frames): asking for it closer / brighter", self._unreadable_frames)
            self.show(Screen.prompt(ScreenKind.HOLD_CLOSER, self.language()))
            self.state = State.RESULT  # like a verdict's screen: goes back to idle (or the fault) by itself
            self._result_until = now + self.hint_s

    def ready_for_new(self) -> bool:
        """Nothing in flight and no camera fault: a face may start a check."""
        return self.state in (State.IDLE, State.RESULT) or (self.state == State.FAULT and self.fault != "camera")

    # --- faults --------------------------------------------------------------------------------

    def poll_faults(self, now: float) -> None:
        """Ask the fault probe (at most every fault_poll_s) and show or clear its fault while idle."""
        if self.faults is None and not self.gate_failed and self._probed is None:
            return
        if now < self._next_fault_poll:
            return
        self._next_fault_poll = now + self.fault_poll_s
        part: str | None = "gate" if self.gate_failed else None
        if part is None and self.faults is not None:
            try:
                part = self.faults() or None
            except Exception:
                log.exception("fault probe failed")
                part = None
        if part != self._probed:
            if part:
                log.warning("fault: %s", part)
            else:
                log.info("fault %s cleared", self._probed)
        self._probed = part
        if self.state == State.IDLE and part:
            self.to_fault(part)
        elif self.state == State.FAULT and self.fault != "camera" and part != self.fault:
            self.to_idle()

    def gate_pulsed(self, ok: bool) -> None:
        """A pulse worked (the gate fault ends) or raised (the gate fault once the verdict has gone)."""
        self.gate_failed = not ok
        if not ok:
            self._next_fault_poll = self.clock()

    # --- transitions ---------------------------------------------------------------------------

    def expire_result(self, now: float) -> None:
        if self.state == State.RESULT and now >= self._result_until:
            self.to_idle()

    def to_result(self, now: float) -> None:
        self.state = State.RESULT
        self._result_until = now + self.result_s()

    def to_idle(self) -> None:
        """Idle, or the fault screen when the last probe named a fault (no idle flash between)."""
        if self._probed:
            self.to_fault(self._probed)
            return
        self.state = State.IDLE
        self.fault = None
        self.show(Screen.prompt(ScreenKind.IDLE, self.language()))

    def to_fault(self, part: str) -> None:
        if self.state == State.FAULT and self.fault == part:
            return
        self.state = State.FAULT
        self.fault = part
        self.show(Screen.fault(part, self.language()))

    def show(self, screen: Screen) -> None:
        self.shown_kind = screen.kind
        try:
            self.display.show(screen)
        except Exception:  # a display fault must not stop checks or leave the gate state unknown
            log.exception("display failed")

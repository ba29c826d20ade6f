"""The kiosk loop: frame → codes → credential → verifier → verdict → record, gate and screen.

This is the one place that knows the order. It is an explicit state machine driven one frame at
a time by `step`, with the clock passed in, so debounce windows, deadlines and result timeouts
are tested without sleeping. The verifier runs on a worker thread: frames keep flowing (and the
preview keeps moving) while a check is in flight, and a service that never answers costs exactly
the deadline, after which the site's offline policy decides.

Once the answer is in (or the deadline passed), a check is settled in a fixed order, so that the
record and the gate can never disagree:

1. **Decide and build** the verdict, the record and the screen (and the screen a failed commit
   would need). Everything that can raise happens here, before anything is committed. If any of it
   raises (a bug, an answer the code cannot handle, e.g. a date without a time zone), the check
   becomes a staff check: status `verify_failed`, verdict `manual_check`, reason `verify_failed`,
   recorded like any other check. Never a pass, never a crash of the frame loop.
2. **Commit** the record to the outbox (an fsync; 200 ms or more on a tired SD card). A commit that
   fails turns a pass into `manual_check` / `record_failed` and the record is kept in memory.
   The commit does not wake the uploader (`Outbox.add(..., wake=False)`).
3. **Pulse the gate**, only for a pass whose record is durable, and only then
4. **show** the verdict, **wake the uploader** (`Outbox.wake`, with the check's latency) and tell
   `on_outcome`. The uploader's thread, woken earlier, competed with the relay for the CPU and the
   outbox's lock (issue 18: with gpiozero's blink thread, the 0.9 ms the relay step cost over the
   raw floor).

**Latency** (`CheckOutcome.latency_s`, the record's `extra.latency_ms`) is what the person at the
gate feels: from the frame hand-over (the start of the `step` that saw the code, or the payload
offered by a scanner) to the relay energised, or to the verdict shown when the gate stays shut
(not a pass, a pass whose record is not durable, paused, a pulse that raised). The record was
committed before the relay moved, so this value reaches it through `Outbox.wake` (kept in memory
and added when the record is handed to the uploader; a record uploaded after a restart goes
without it). The same value is on the `verdict` log line.

Steps 1 and 2 run on the `writer` executor (one dedicated thread in the kiosk), off the frame loop,
so frames keep reaching the preview while a record is being committed; the screen still says
"checking" and no second check starts until the commit returned. Steps 3 and 4 run on the frame
loop. With an inline executor (tests) all four happen within the `step` that resolved the check.
A process killed between 2 and 3 leaves a durable record of a verdict the gate never acted on;
the reverse (a gate opened without a record) cannot happen.

**A pass whose gate did not let the person through** is corrected afterwards, never by rewriting
the record (it may be uploaded already): an *amendment* (`RecordMaker.amendment(record_id,
passed=False, reason=…)`) goes into the same outbox and is delivered like every record. Reasons:
`gate_not_turned` (a gate with a door or turnstile sensor reported no turn within its pass window,
or the next pass came first: `hardware.inputs.GateMonitor`; the answer arrives on the sensor's own
thread, never on the frame loop), `gate_fault` (the pulse raised), `gate_paused` (below).

**Faults** are shown only instead of the idle screen, never over a verdict or a check in flight:

- `camera`: no frame for `camera_timeout_s` (the pipeline sees it itself); it outranks the rest,
  and frames arriving again end it;
- anything `faults()` names (the kiosk passes a probe: `gate` when the gate reports a fault,
  `network` when the service has been out of reach for a while; sentinel/kiosk.py,
  sentinel/heartbeat.py), and `gate` after a pulse raised until a later pulse works. Asked at most
  every `fault_poll_s`; the screen goes back to idle when the probe clears. Codes shown while such a
  fault screen is up are still checked (the offline policy decides without the network) and their
  verdict is shown; the fault screen comes back after it.

**Paused** (`pause(reason)` / `resume()`, the technician menu): no new check starts (codes and
faces seen meanwhile are ignored and not debounced, so the same code counts after `resume`), the
relay is closed at once and stays closed, and frames keep reaching the preview. A check already in
flight finishes, is recorded and shown as decided, but a pass gets no gate pulse: its record gets
the amendment `gate_paused` (did not pass), so record and gate still agree.

**A code seen but not read** (the decoder located a QR symbol it could not decode: too small in
the frame, blurred, a dim or glaring phone screen; `sentinel.decoding.Scan.unreadable`): after
`hint_after_frames` frames in a row with such a symbol and no code read, the screen asks for the
phone closer and its screen brighter (`ScreenKind.HOLD_CLOSER`, over the camera view), for
`hint_s` after the last such frame, then goes back to idle (or the fault screen) by itself. It is a
request, not an outcome: no check, no record, no gate, no verdict sound. It is shown only instead of
the idle or a fault screen (not the camera's), never over a check in flight, a verdict or the
one-at-a-time request, and not while paused; a code read meanwhile is checked at once. A decoder
without `scan` (pyzbar or WeChat alone) cannot tell, and the kiosk then never asks.

**Trigger** (a handheld's `hardware.inputs.TriggerButton`, optional): each press lets a code seen
just before count as new again (the debounce window starts over: a passenger shows the same phone
on purpose), and a code read disarms it (one press, one check).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import CancelledError, Executor, Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from sentinel.config import PolicyConfig
from sentinel.credentials import Credential, CredentialRules, Debouncer, Rejection
from sentinel.decoding import Scan
from sentinel.faces.matcher import FaceObservation, ObservationKind
from sentinel.frames import Frame
from sentinel.health import HealthStatus, Status
from sentinel.outbox import Outbox
from sentinel.policy import Verdict, VerdictKind, decide
from sentinel.records import Record, RecordMaker
from sentinel.screens import Screen, ScreenKind
from sentinel.status_cache import StatusCache
from sentinel.verifier import Verifier

log = logging.getLogger("sentinel.pipeline")

#: the reason of a check the device could not decide or show (a bug, an answer it cannot handle):
#: the same staff check as an answer it does not understand
CHECK_FAILED = "verify_failed"


class State(StrEnum):
    IDLE = "idle"
    CHECKING = "checking"
    RESULT = "result"
    FAULT = "fault"


class FrameSourceLike(Protocol):
    def read(self, timeout: float) -> Frame | None: ...


class DecoderLike(Protocol):
    """`decode`, and optionally `scan` (-> `sentinel.decoding.Scan`: also the codes located but not
    read). zxing-cpp and the cascade `make_decoder` builds from two or more backends have `scan`;
    pyzbar or WeChat alone (a config may name one backend) do not, so the pipeline looks once, when
    it is built, and without `scan` never asks for a code closer."""

    def decode(self, grey): ...  # -> list of objects with .text and .raw


class FaceMatcherLike(Protocol):
    def observe(self, frame: Frame, qr_in_view: bool = False) -> FaceObservation | None: ...


class PassWatchLike(Protocol):
    turned: bool | None

    def add_callback(self, callback: Callable[["PassWatchLike"], None]) -> None:
        """Called once with this watch when the door sensor has answered (turned or not)."""


class Gate(Protocol):
    def pulse(self) -> PassWatchLike | None:
        """Open for the configured time, without blocking; closes by itself. A gate with a door
        sensor returns the watch of this pass (hardware.inputs.PassWatch), others None."""

    def close(self) -> None:
        """Close now (every exit path calls this)."""


class TriggerLike(Protocol):
    def take_press(self) -> bool:
        """True once per press since the last call."""

    def disarm(self) -> None:
        """A code was read: stop looking until the next press."""


class ScannerLike(Protocol):
    def drain(self) -> list:
        """Payloads read since the last call (objects with .text and .raw), oldest first."""


class Display(Protocol):
    def show(self, screen: Screen) -> None:
        """Switch to this screen; must return at once (drawing happens elsewhere)."""

    def preview(self, frame: Frame) -> None:
        """The newest camera frame, for the live preview; must return at once."""


@dataclass(frozen=True)
class CheckOutcome:
    """What one check ended in; the demo prints these, tests assert on them."""

    credential_kind: str | None  # None when the payload was rejected on the device
    status: str | None
    verdict: Verdict
    offline: bool
    latency_s: float  # from the frame that showed the code to the relay energised (or the verdict shown): module docstring
    record_id: str | None  # None when no record was made, or it could not even be kept in memory
    person: str = ""
    durable: bool = False  # the record was committed to the outbox (not merely held in memory)
    credential_hash: str | None = None  # the record's keyed hash of the credential: the same code seen again (handheld vehicles)
    id_masked: str = ""  # masked ID as the service returned it: with `person`, the same person across credential kinds


@dataclass
class _InFlight:
    credential: Credential
    future: Future
    seen_at: float
    deadline: float
    scanned_at: datetime
    #: a reason that caps a pass at a staff check (a face not confirmed live, a site that has every
    #: face match checked by staff: sentinel/faces/matcher.py); None for codes
    staff_check: str | None = None


@dataclass(frozen=True)
class _Decision:
    """Step 1 of settling a check: everything that could raise is already done."""

    verdict: Verdict
    status: HealthStatus  # as shown and recorded (a cached status when the offline policy used one)
    offline: bool
    record: Record | None  # None only when not even the staff-check record could be made
    screen: Screen
    failed_screen: Screen  # what to show instead when the commit fails (a pass becomes record_failed)
    credential_hash: str | None


@dataclass(frozen=True)
class _Settled:
    """Steps 1 and 2 done: what the frame loop acts on (gate, screen, outcome)."""

    verdict: Verdict
    status: HealthStatus
    offline: bool
    screen: Screen
    record_id: str | None
    durable: bool
    credential_hash: str | None


@dataclass
class _Committing:
    check: _InFlight
    future: Future  # -> _Settled
    resolved_at: float  # when the answer (or the deadline) was taken: the verdict is no earlier


class Pipeline:
    def __init__(
        self,
        *,
        decoder: DecoderLike,
        rules: CredentialRules,
        verifier: Verifier,
        policy: PolicyConfig,
        records: RecordMaker,
        outbox: Outbox,
        gate: Gate,
        display: Display,
        language: str = "zh-CN",
        debounce_s: float = 5.0,
        deadline_s: float = 1.5,
        result_s: float = 3.0,
        camera_timeout_s: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        executor: Executor | None = None,
        writer: Executor | None = None,
        status_cache: StatusCache | None = None,
        on_outcome: Callable[[CheckOutcome], None] | None = None,
        faces: FaceMatcherLike | None = None,
        scanner: ScannerLike | None = None,
        faults: Callable[[], str | None] | None = None,
        fault_poll_s: float = 1.0,
        trigger: TriggerLike | None = None,
        hint_after_frames: int = 3,
        hint_s: float = 2.0,
    ):
        self._decoder = decoder
        scan = getattr(decoder, "scan", None)  # optional: DecoderLike
        self._scan: Callable[..., Scan] | None = scan if callable(scan) else None
        self._hint_after_frames = max(1, hint_after_frames)
        self._hint_s = hint_s
        self._unreadable_frames = 0  # frames in a row with a code located but none read
        self._rules = rules
        self._verifier = verifier
        self._policy = policy
        self._records = records
        self._outbox = outbox
        self._gate = gate
        self._display = display
        self._language = language
        self._debouncer = Debouncer(debounce_s)
        self._deadline_s = deadline_s
        self._result_s = result_s
        self._camera_timeout_s = camera_timeout_s
        self._clock = clock
        self._wall = wall
        # Several workers: a verifier thread stuck past its deadline must not delay the next person.
        self._executor = executor or ThreadPoolExecutor(max_workers=4, thread_name_prefix="verify")
        # Deciding and committing (an fsync) off the frame loop. One thread of its own, so that a
        # commit never queues behind verifier threads stuck past their deadline; a caller that
        # passes `executor` (tests: inline) gets it for both unless it passes `writer` too.
        self._own_writer = writer is None and executor is None
        self._writer = writer or executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="commit")
        # The cache (on disk in the kiosk) is kept only where the `cached` offline policy reads it.
        self._cache = status_cache if status_cache is not None else StatusCache(ttl_s=policy.cached_ttl_min * 60)
        self._on_outcome = on_outcome or (lambda outcome: None)
        self._faces = faces
        self._scanner = scanner
        self._shown_kind: ScreenKind | None = None
        self._faults = faults
        self._fault_poll_s = fault_poll_s
        self._next_fault_poll = clock()
        self._trigger = trigger
        self._debounce_s = debounce_s
        # pause/resume come from another thread (the technician menu): this lock orders them with
        # the gate pulse, so that no pulse can start after `pause` returned
        self._gate_lock = threading.Lock()
        self._paused: str | None = None
        self._gate_failed = False  # the last pulse raised: the gate fault until one works
        self._probed: str | None = None  # what `faults()` said last (besides the camera)
        self.fault: str | None = None  # the part on the fault screen while state is FAULT
        self.last_check_at: datetime | None = None  # wall clock of the last verdict (heartbeat)
        # the latest amendments put in the outbox, (record id, reason), for the technician and tests
        self.amendments: deque[tuple[str, str]] = deque(maxlen=100)

        self.state = State.IDLE
        self.frames_seen = 0
        self._inflight: _InFlight | None = None
        self._committing: _Committing | None = None
        self._result_until = 0.0
        self._last_frame_at = clock()
        self._show(Screen.prompt(ScreenKind.IDLE, language))

    # --- one loop iteration ------------------------------------------------------------------

    def step(self, frame: Frame | None, *, paused: bool = False) -> None:
        """Advance by one camera read: `frame` is None when the camera gave nothing in time.
        `paused`: the camera is off on purpose (a handheld between vehicles), which is no fault."""
        now = self._clock()
        self._resolve_check(now)
        self._take_trigger_press()
        self._poll_faults(now)
        if frame is None:
            if paused:
                self._last_frame_at = now
                if self.state == State.FAULT and self.fault == "camera":
                    self._to_idle()
            self._check_camera(now)
            self._expire_result(now)
            return
        self.frames_seen += 1
        self._last_frame_at = now
        self._preview(frame)
        if self.state == State.FAULT and self.fault == "camera":
            log.info("camera delivers frames again")
            self._to_idle()
        self._expire_result(now)
        try:
            scan = self._read_codes(frame.grey)
        except Exception:  # a decoder bug must not take the kiosk down
            log.exception("decoder failed on frame %d", frame.sequence)
            return
        codes = scan.codes
        for code in codes:
            if self._on_payload(code.text, getattr(code, "raw", None), now):
                break
        self._note_unreadable(scan, now)
        # Faces only while no code is in view and no check is in flight: codes come first.
        if self._faces is not None and not codes and self._ready_for_faces():
            self._on_face(frame, now)

    def run(
        self,
        source: FrameSourceLike,
        *,
        stop: threading.Event | None = None,
        duration_s: float | None = None,
        until_finished: bool = False,
    ) -> None:
        """Drive the loop from a frame source until stopped; the gate is closed on every exit path."""
        stop = stop or threading.Event()
        started = self._clock()
        read_failing = False
        try:
            while not stop.is_set():
                # While a check is in flight, its answer is shown the moment it arrives, and
                # frames are still taken at least every 30 ms.
                self.wait_for_check(0.03)
                timeout = 0.03 if self.state == State.CHECKING else 0.25
                paused = False
                try:
                    frame = source.read(timeout)
                    read_failing = False
                    paused = frame is None and bool(getattr(source, "paused", False))
                except Exception as e:
                    if not read_failing:
                        log.error("camera read failed: %s", e)
                    read_failing = True
                    frame = None
                    stop.wait(timeout)
                self.step(frame, paused=paused)
                if self._scanner is not None:
                    for item in self._scanner.drain():  # read on the scanner's thread, checked on this one
                        self.offer_payload(item.text, item.raw)
                if duration_s is not None and self._clock() - started >= duration_s:
                    break
                if until_finished and getattr(source, "finished", False) and self.state != State.CHECKING:
                    break
        finally:
            self._gate.close()

    def offer_payload(self, text: str, raw: bytes | None = None) -> None:
        """A payload from a source other than the camera (an external scanner): same rules, same checks."""
        now = self._clock()
        self._resolve_check(now)
        self._on_payload(text, raw, now)

    def wait_for_check(self, timeout: float) -> None:
        """Wait up to `timeout` (in all) for the in-flight check's answer (or its deadline), then
        for its record's commit, and act on it. Both in one wait: a commit left for the next
        call would wait for the next camera frame first (a frame interval, 33 ms at 30 fps, on
        every check: measured by bench/e2e.py)."""
        started = time.monotonic()  # the waits are real time, whatever the pipeline's clock
        check = self._inflight
        if check is not None:
            remaining = check.deadline - self._clock()
            futures_wait([check.future], timeout=max(0.0, min(timeout, remaining)))
            self._resolve_check(self._clock())
            if self._inflight is not None:
                return
        committing = self._committing
        if committing is not None:
            futures_wait([committing.future], timeout=max(0.0, timeout - (time.monotonic() - started)))
            self._resolve_check(self._clock())

    # --- pause (the technician menu), faults, the trigger ---------------------------------------------

    def pause(self, reason: str = "paused") -> None:
        """No new checks until `resume`; the relay closed now (module docstring). Any thread."""
        with self._gate_lock:
            self._paused = reason or "paused"
            try:
                self._gate.close()
            except Exception:
                log.exception("could not close the gate on pause")
        log.info("checks paused (%s)", reason)

    def resume(self) -> None:
        """Checks start again. Any thread."""
        with self._gate_lock:
            was, self._paused = self._paused, None
        if was is not None:
            log.info("checks resumed")

    @property
    def records(self) -> RecordMaker:
        """The RecordMaker of this pipeline's records (audit events and amendments use it too)."""
        return self._records

    def reconfigure(self, *, policy: PolicyConfig | None = None, language: str | None = None, result_s: float | None = None) -> None:
        """Swap what a config reload may change while running; the next check uses it (any thread:
        each is one reference, replaced whole)."""
        if policy is not None:
            self._policy = policy
        if language is not None:
            self._language = language
        if result_s is not None:
            self._result_s = result_s

    @property
    def paused(self) -> str | None:
        """The reason given to `pause`, or None while checking."""
        return self._paused

    def _take_trigger_press(self) -> None:
        trigger = self._trigger
        if trigger is None:
            return
        try:
            pressed = trigger.take_press()
        except Exception:
            log.exception("trigger unreadable")
            return
        if pressed:  # a press is a wish to check what is in front of the camera, even if just seen
            self._debouncer = Debouncer(self._debounce_s)

    def _disarm_trigger(self) -> None:
        if self._trigger is not None:
            try:
                self._trigger.disarm()
            except Exception:
                log.exception("trigger unreadable")

    def _read_codes(self, grey) -> Scan:
        if self._scan is not None:
            return self._scan(grey)
        return Scan(codes=list(self._decoder.decode(grey)), unread=0)

    def _note_unreadable(self, scan: Scan, now: float) -> None:
        """Ask for the phone closer / brighter after `hint_after_frames` frames in a row with a
        code located but none read; keep asking while it lasts (module docstring)."""
        if scan.codes or not scan.unreadable:
            self._unreadable_frames = 0
            return
        self._unreadable_frames += 1
        if self._unreadable_frames < self._hint_after_frames or self._paused:
            return
        if self.state == State.RESULT and self._shown_kind == ScreenKind.HOLD_CLOSER:
            self._result_until = now + self._hint_s  # still in view and still unread: the request stays
        elif self.state == State.IDLE or (self.state == State.FAULT and self.fault != "camera"):
            log.info("a code in view could not be read (%d frames): asking for it closer / brighter", self._unreadable_frames)
            self._show(Screen.prompt(ScreenKind.HOLD_CLOSER, self._language))
            self.state = State.RESULT  # like a verdict's screen: goes back to idle (or the fault) by itself
            self._result_until = now + self._hint_s

    def _ready_for_faces(self) -> bool:
        if self._paused:
            return False
        return self.state in (State.IDLE, State.RESULT) or (self.state == State.FAULT and self.fault != "camera")

    def _poll_faults(self, now: float) -> None:
        """Ask the fault probe (at most every fault_poll_s) and show or clear its fault while idle."""
        if self._faults is None and not self._gate_failed and self._probed is None:
            return
        if now < self._next_fault_poll:
            return
        self._next_fault_poll = now + self._fault_poll_s
        part: str | None = "gate" if self._gate_failed else None
        if part is None and self._faults is not None:
            try:
                part = self._faults() or None
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
            self._to_fault(part)
        elif self.state == State.FAULT and self.fault != "camera" and part != self.fault:
            self._to_idle()

    def close(self, commit_timeout_s: float = 10.0) -> None:
        """Close the gate and stop the workers. A record being committed is let finish first (its
        verdict is not acted on any more), so that the outbox is not closed under it."""
        self._gate.close()
        committing = self._committing
        if committing is not None:
            futures_wait([committing.future], timeout=commit_timeout_s)
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._own_writer:
            self._writer.shutdown(wait=False)

    # --- transitions -----------------------------------------------------------------------

    def _on_payload(self, text: str, raw: bytes | None, now: float) -> bool:
        """Returns True when the payload started something (so the rest of the frame is ignored)."""
        if self._paused:  # not debounced either: the same code counts once checks resume
            return False
        result = self._rules.classify(text, raw)
        if not self._debouncer.is_new(result.key, now):
            return False
        if self.state == State.CHECKING:
            # One person at a time: let this code count as new once the current check is done.
            self._debouncer.forget(result.key)
            return False
        if isinstance(result, Rejection):
            self._reject(result, now)
        else:
            self._start_check(result, now)
        return True

    def _on_face(self, frame: Frame, now: float) -> None:
        try:
            seen = self._faces.observe(frame, qr_in_view=False)  # None: not due (rate limit)
        except Exception:  # the matcher logs its own faults; a bug must not stop QR checks
            log.exception("face matcher failed on frame %d", frame.sequence)
            return
        if seen is None:
            return
        if seen.kind is ObservationKind.SEVERAL:
            # One person at a time. The prompt never covers a verdict, and goes after result_s.
            if self.state in (State.IDLE, State.FAULT) or self._shown_kind == ScreenKind.ONE_AT_A_TIME:
                self._show(Screen.prompt(ScreenKind.ONE_AT_A_TIME, self._language))
                self._to_result(now)
            return
        # a live match; or a match that staff must confirm (not live, or the site's choice)
        credential = seen.credential or seen.staff_credential
        if credential is None or not self._debouncer.is_new(credential.key, now):
            return
        self._start_check(credential, now, staff_check=seen.staff_check or None)

    def _reject(self, rejection: Rejection, now: float) -> None:
        log.info("payload rejected on the device: %s (%s)", rejection.reason, rejection.message)
        self._disarm_trigger()
        verdict = Verdict(VerdictKind.DENY, "unrecognised")
        self._show(Screen.unknown_code(verdict, self._language))
        self._to_result(now)
        self._on_outcome(CheckOutcome(None, None, verdict, False, self._clock() - now, None))

    def _start_check(self, credential: Credential, now: float, staff_check: str | None = None) -> None:
        log.debug("checking %r", credential)  # the verdict line says the rest, after the relay
        self._disarm_trigger()
        self.state = State.CHECKING
        self._show(Screen.prompt(ScreenKind.CHECKING, self._language))
        future = self._executor.submit(self._timed_verify, credential)
        self._inflight = _InFlight(credential, future, now, now + self._deadline_s, self._wall(), staff_check)
        self._resolve_check(self._clock())  # an inline executor may have answered already

    def _timed_verify(self, credential: Credential) -> tuple[HealthStatus, float]:
        try:
            status = self._verifier.verify(credential, self._deadline_s)
        except Exception as e:  # the contract says verifiers don't raise; a bug must not kill the loop
            log.exception("verifier raised")
            status = HealthStatus.unreachable(Status.VERIFY_FAILED, f"verifier error: {type(e).__name__}")
        return status, self._clock()

    def _resolve_check(self, now: float) -> None:
        check = self._inflight
        if check is not None:
            if check.future.done():
                status, answered_at = check.future.result()
                if answered_at > check.deadline:  # an answer after the deadline is a timeout, not a verdict
                    status = HealthStatus.unreachable(Status.TIMEOUT, "answer came after the deadline")
                    now = max(now, check.deadline)
            elif now >= check.deadline:
                check.future.cancel()
                status = HealthStatus.unreachable(Status.TIMEOUT, f"no answer within {self._deadline_s:.1f} s")
            else:
                return
            self._inflight = None
            self._begin_commit(check, status, now)
        committing = self._committing
        if committing is not None and committing.future.done():
            self._committing = None
            self._act(committing, max(now, committing.resolved_at))

    # --- settling a check: decide and build, commit, pulse, show (see the module docstring) ------

    def _begin_commit(self, check: _InFlight, status: HealthStatus, now: float) -> None:
        wall_now = self._wall()
        try:
            future = self._writer.submit(self._settle, check, status, wall_now)
        except Exception as e:  # e.g. the writer was shut down: nothing committed, nobody passes
            log.error("could not hand the check to the writer: %s", e)
            future = Future()
            future.set_exception(e)
        self._committing = _Committing(check, future, now)

    def _settle(self, check: _InFlight, status: HealthStatus, wall_now: datetime) -> _Settled:
        """Steps 1 and 2, on the writer. Does not raise."""
        offline = status.status.is_unreachable
        try:
            decision = self._decide(check, status, offline, wall_now)
        except Exception as e:
            log.exception("could not decide or show the verdict: staff will check")
            decision = self._staff_check(check, offline, wall_now, e)
        return self._commit(decision)

    def _decide(self, check: _InFlight, status: HealthStatus, offline: bool, wall_now: datetime) -> _Decision:
        credential_hash = self._records.credential_hash(check.credential)
        use_cache = self._policy.offline == "cached"
        cached = self._cache.get(credential_hash, wall_now) if offline and use_cache else None
        verdict = decide(status, self._policy, wall_now, cached)
        if check.staff_check and verdict.kind is VerdictKind.PASS:
            verdict = Verdict(VerdictKind.MANUAL_CHECK, check.staff_check)
        shown = status
        if offline and cached is not None and use_cache:
            # the cached colour, and why the service was not asked (the record keeps the reason)
            shown = cached.status.model_copy(update={"detail": f"cached; {status.detail}", "status_detail": status.status_detail})
        if verdict.kind == VerdictKind.PASS:
            # Past the outbox's cap records are still kept, but nobody passes unseen: staff check.
            at_cap = self._outbox_at_cap()
            if at_cap:
                verdict = Verdict(VerdictKind.MANUAL_CHECK, at_cap)
        record = self._records.make(check.credential, shown, verdict, offline, check.scanned_at)
        screen = Screen.result(verdict, shown, self._language, offline, now=wall_now)
        failed_screen = screen
        if verdict.kind == VerdictKind.PASS:
            failed_screen = Screen.result(
                Verdict(VerdictKind.MANUAL_CHECK, "record_failed"), shown, self._language, offline, now=wall_now
            )
        if status.status.is_colour and use_cache:
            try:  # best effort: a lost cache entry costs an offline verdict later, not this one
                self._cache.put(credential_hash, status, wall_now)
            except Exception:
                log.exception("could not cache the status")
        return _Decision(verdict, shown, offline, record, screen, failed_screen, credential_hash)

    def _staff_check(self, check: _InFlight, offline: bool, wall_now: datetime, error: BaseException) -> _Decision:
        status = HealthStatus.unreachable(Status.VERIFY_FAILED, f"device error: {type(error).__name__}")
        verdict = Verdict(VerdictKind.MANUAL_CHECK, CHECK_FAILED)
        try:
            credential_hash: str | None = self._records.credential_hash(check.credential)
        except Exception:
            credential_hash = None
        try:
            record: Record | None = self._records.make(check.credential, status, verdict, offline, check.scanned_at)
        except Exception:
            log.exception("could not even make the staff-check record")
            record = None
        screen = self._staff_screen(verdict, status, offline, wall_now)
        return _Decision(verdict, status, offline, record, screen, screen, credential_hash)

    def _staff_screen(self, verdict: Verdict, status: HealthStatus, offline: bool, wall_now: datetime) -> Screen:
        """A staff-check screen that is built whatever else is broken."""
        try:
            return Screen.result(verdict, status, self._language, offline, now=wall_now)
        except Exception:  # e.g. no text for the reason: the generic "device fault, call staff"
            try:
                return Screen.fault("check", self._language)
            except Exception:
                return Screen(ScreenKind.MANUAL_CHECK, "", language=self._language)

    def _commit(self, decision: _Decision) -> _Settled:
        """Step 2: the record durable before the gate may move. Does not raise."""
        verdict, screen, record = decision.verdict, decision.screen, decision.record
        durable = False
        record_id: str | None = None
        if record is not None:
            try:
                self._outbox.add(record, wake=False)  # durable before the gate moves; the uploader waits for the relay
                durable = True
                record_id = record.id
            except Exception as e:
                log.error("could not commit the check record: %s", e)
                if verdict.kind == VerdictKind.PASS:
                    verdict = Verdict(VerdictKind.MANUAL_CHECK, "record_failed")
                    screen = decision.failed_screen
                # The record says what really happened (no gate); kept in memory until the disk
                # takes it again or the uploader delivers it from there.
                try:
                    record = record.model_copy(update={"verdict": verdict.kind, "reason": verdict.reason})
                    record_id = record.id if self._spill(record) else None
                except Exception:
                    log.exception("could not keep the record in memory either")
        return _Settled(verdict, decision.status, decision.offline, screen, record_id, durable, decision.credential_hash)

    def _act(self, committing: _Committing, now: float) -> None:
        """Steps 3 and 4, on the frame loop: pulse the gate (a durable pass only), then show."""
        check = committing.check
        try:
            settled: _Settled = committing.future.result()
        except (Exception, CancelledError) as e:  # the writer died under it: whether it committed is unknown
            log.critical("settling the check failed (%s): staff will check", e)
            status = HealthStatus.unreachable(Status.VERIFY_FAILED, f"device error: {type(e).__name__}")
            verdict = Verdict(VerdictKind.MANUAL_CHECK, CHECK_FAILED)
            screen = self._staff_screen(verdict, status, False, self._wall())
            settled = _Settled(verdict, status, False, screen, None, False, None)
        verdict, status, screen = settled.verdict, settled.status, settled.screen
        relay_at: float | None = None
        if verdict.kind == VerdictKind.PASS and settled.durable:
            screen, relay_at = self._open_gate(settled.record_id, screen)
        self._show(screen)
        felt_s = (relay_at if relay_at is not None else self._clock()) - check.seen_at
        self.last_check_at = self._wall()
        self._to_result(now)
        if settled.durable and settled.record_id is not None:
            try:  # the record is committed; the uploader's turn comes after the relay and the screen
                self._outbox.wake(settled.record_id, latency_ms=round(felt_s * 1000, 1))
            except Exception:
                log.exception("could not wake the uploader")
        person = status.person.name_masked if status.person else ""
        id_masked = status.person.id_masked if status.person else ""
        log.info(
            "verdict %s (%s) status %s%s in %.1f ms",
            verdict.kind, verdict.reason, status.status, " offline" if settled.offline else "", felt_s * 1000,
        )
        try:
            self._on_outcome(
                CheckOutcome(
                    check.credential.kind.value, status.status.value, verdict, settled.offline, felt_s,
                    settled.record_id, person, settled.durable, credential_hash=settled.credential_hash, id_masked=id_masked,
                )
            )
        except Exception:
            log.exception("outcome listener failed")

    def _open_gate(self, record_id: str | None, screen: Screen) -> tuple[Screen, float | None]:
        """Step 3 for a durable pass: pulse, unless paused; watch the sensor's answer. Returns the
        screen to show (the gate fault when the pulse raised) and when the relay was energised
        (None when it was not)."""
        watch = None
        relay_at: float | None = None
        with self._gate_lock:
            paused = self._paused
            if paused is None:
                try:
                    watch = self._gate.pulse()
                    relay_at = self._clock()
                    self._gate_failed = False
                except Exception:  # the person is told to use the staffed lane; the record is amended
                    log.exception("gate pulse failed")
                    self._gate_failed = True
                    self._next_fault_poll = self._clock()  # the gate fault screen once the verdict has gone
                    self._amend(record_id, "gate_fault")
                    return Screen.fault("gate", self._language), None
        if paused is not None:
            log.warning("a pass settled while checks are paused (%s): no gate pulse, recorded as not passed", paused)
            self._amend(record_id, "gate_paused")
            return screen, None
        if watch is not None and record_id is not None:  # a gate with a door sensor (hardware.inputs.PassWatch)
            # answered on the sensor's thread (a turn) or its timer (the window passed), never here
            watch.add_callback(lambda w, rid=record_id: self._after_pass(rid, w))
        return screen, relay_at

    def _after_pass(self, record_id: str, watch) -> None:
        if watch.turned:
            return
        log.warning("pass %s: the gate did not turn (%s): recorded as not passed", record_id, getattr(watch, "reason", ""))
        self._amend(record_id, "gate_not_turned")

    def _amend(self, record_id: str | None, reason: str) -> None:
        """Record that a pass did not let the person through (module docstring). Does not raise."""
        if record_id is None:
            return
        try:
            amendment = self._records.amendment(record_id, passed=False, reason=reason, at=self._wall())
        except Exception:
            log.exception("could not make the amendment of %s (%s)", record_id, reason)
            return
        try:
            self._outbox.add(amendment)
        except Exception as e:
            log.error("could not commit the amendment of %s (%s): %s", record_id, reason, e)
            if not self._spill(amendment):
                return
        self.amendments.append((record_id, reason))

    def _outbox_at_cap(self) -> str | None:
        try:
            return self._outbox.health().at_cap
        except Exception:
            log.exception("outbox health failed")
            return None

    def _spill(self, record) -> bool:
        try:
            return bool(self._outbox.spill(record))
        except Exception:
            log.exception("could not keep the record in memory either")
            return False

    def _check_camera(self, now: float) -> None:
        if self.fault != "camera" and now - self._last_frame_at > self._camera_timeout_s:
            if self.state != State.CHECKING:
                log.warning("no frame from the camera for %.1f s", now - self._last_frame_at)
                self._to_fault("camera")

    def _expire_result(self, now: float) -> None:
        if self.state == State.RESULT and now >= self._result_until:
            self._to_idle()

    def _to_result(self, now: float) -> None:
        self.state = State.RESULT
        self._result_until = now + self._result_s

    def _to_idle(self) -> None:
        """Idle, or the fault screen when the last probe named a fault (no idle flash between)."""
        if self._probed:
            self._to_fault(self._probed)
            return
        self.state = State.IDLE
        self.fault = None
        self._show(Screen.prompt(ScreenKind.IDLE, self._language))

    def _to_fault(self, part: str) -> None:
        if self.state == State.FAULT and self.fault == part:
            return
        self.state = State.FAULT
        self.fault = part
        self._show(Screen.fault(part, self._language))

    def _preview(self, frame: Frame) -> None:
        try:
            self._display.preview(frame)
        except Exception:
            log.exception("display preview failed")

    def _show(self, screen: Screen) -> None:
        self._shown_kind = screen.kind
        try:
            self._display.show(screen)
        except Exception:  # a display fault must not stop checks or leave the gate state unknown
            log.exception("display failed")

"""The kiosk loop: frame → codes → credential → verifier → verdict → record, gate and screen.

This is the one place that knows the order. It is an explicit state machine driven one frame at
a time by `step`, with the clock passed in, so debounce windows, deadlines and result timeouts
are tested without sleeping. The verifier runs on a worker thread: frames keep flowing (and the
preview keeps moving) while a check is in flight, and a service that never answers costs exactly
the deadline, after which the site's offline policy decides.

Once the answer is in (or the deadline passed), a check is settled in a fixed order, so that the
record and the gate can never disagree:

1. **Decide and build** the verdict, the record and the screen; anything that raises makes the
   check a staff check (`verify_failed`), recorded like any other. Never a pass, never a crash.
2. **Commit** the record to the outbox (an fsync); a failed commit turns a pass into
   `manual_check` / `record_failed` and the record is kept in memory. (Both: `sentinel/settling.py`.)
3. **Pulse the gate**, only for a pass whose record is durable, and only then
4. **show** the verdict, **wake the uploader** (`Outbox.wake`, with the check's latency) and tell
   `on_outcome` (woken before the relay, the uploader competed with it for the CPU: issue 18).

**Latency** (`CheckOutcome.latency_s`, `sentinel/ports.py`) runs from the frame hand-over to the
relay energised, or to the verdict shown when the gate stays shut.

Steps 1 and 2 run off the frame loop, so frames keep reaching the preview while a record is being
committed; the screen still says "checking" and no second check starts until the commit returned.
They run on the verifier's worker that got the answer, right after it (no hand-over back to the
frame loop and on to another thread), or, for a check whose deadline passed first, on the `writer`
executor (one dedicated thread in the kiosk, so that a timeout's commit never queues behind
verifier threads stuck past their deadline). `InFlight.claim` decides which, once: an answer that
loses to the deadline is dropped. Steps 3 and 4 run on the frame loop. With an inline executor
(tests) all four happen within the `step` that resolved the check.
A process killed between 2 and 3 leaves a durable record of a verdict the gate never acted on;
the reverse (a gate opened without a record) cannot happen.

**A pass whose gate did not let the person through** is corrected afterwards by an *amendment*
(`gate_not_turned`, `gate_fault`, `gate_paused`; `sentinel/settling.py`), never by rewriting the
record. A door sensor's answer arrives on the sensor's own thread, never on the frame loop.

**Faults** (`camera`, what the kiosk's `faults()` probe names, `gate` after a pulse raised) are shown
only instead of the idle screen, never over a verdict or a check in flight
(`sentinel/loop_screen.py`); codes shown meanwhile are still checked and their verdict shown.

**Paused** (`pause(reason)` / `resume()`, the technician menu): no new check starts (codes and
faces seen meanwhile are ignored and not debounced, so the same code counts after `resume`), the
relay is closed at once and stays closed, and frames keep reaching the preview. A check already in
flight finishes, is recorded and shown as decided, but a pass gets no gate pulse: its record gets
the amendment `gate_paused` (did not pass), so record and gate still agree.

**A code seen but not read** (`sentinel.decoding.Scan.unreadable`): after `hint_after_frames`
frames in a row the screen asks for the phone closer and brighter (`sentinel/loop_screen.py`); a
request, not an outcome. A decoder without `scan` (pyzbar or WeChat alone) cannot tell, and the
kiosk then never asks. Before that, where the frame offers the camera's full resolution
(`Frame.detail`: the Pi camera's main stream), each such symbol's region is decoded again there
(sentinel/decoding/detail.py): a code too small for the 640-px grey plane is often readable at
twice the pixels, and the person never sees the hint.

**Trigger** (a handheld's `hardware.inputs.TriggerButton`, optional): each press lets a code seen
just before count as new again (the debounce window starts over: a passenger shows the same phone
on purpose), and a code read disarms it (one press, one check).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from datetime import UTC, datetime

from sentinel.config import PolicyConfig
from sentinel.credentials import Credential, CredentialRules, Debouncer, Rejection
from sentinel.decoding import Scan
from sentinel.decoding.detail import scan_with_detail
from sentinel.faces.matcher import ObservationKind
from sentinel.frames import Frame
from sentinel.handover import Handover
from sentinel.health import HealthStatus, Status
from sentinel.loop_screen import LoopScreen, State
from sentinel.policy import Verdict, VerdictKind
from sentinel.ports import CheckOutcome, DecoderLike, Display, FaceMatcherLike, FrameSourceLike, Gate, OutboxLike, ScannerLike, TriggerLike
from sentinel.records import RecordMaker
from sentinel.screens import Screen, ScreenKind
from sentinel.settling import Committing, InFlight, Settled, Settler, failed_settling
from sentinel.status_cache import StatusCache
from sentinel.verifier import Verifier

log = logging.getLogger("sentinel.pipeline")


class Pipeline:
    """The kiosk loop (module docstring); `step` and `offer_payload` on the frame loop's thread,
    `pause` / `resume` / `reconfigure` from any thread."""

    def __init__(
        self,
        *,
        decoder: DecoderLike,
        rules: CredentialRules,
        verifier: Verifier,
        policy: PolicyConfig,
        records: RecordMaker,
        outbox: OutboxLike,
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
        self._detail_failed = False  # logged once: reading a frame's full-resolution stream failed
        self._rules = rules
        self._verifier = verifier
        self._policy = policy
        self._records = records
        self._outbox = outbox
        self._gate = gate
        self._language = language
        self._debouncer = Debouncer(debounce_s)
        self._deadline_s = deadline_s
        self._result_s = result_s
        self._clock = clock
        self._wall = wall
        # Several workers: a verifier thread stuck past its deadline must not delay the next person.
        self._executor = executor or ThreadPoolExecutor(max_workers=4, thread_name_prefix="verify")
        # Deciding and committing (an fsync) a check whose deadline passed: off the frame loop, on a
        # thread of its own, so that it never queues behind verifier threads stuck past their
        # deadline (an answer is settled on its own worker: module docstring); a caller that
        # passes `executor` (tests: inline) gets it for both unless it passes `writer` too.
        self._own_writer = writer is None and executor is None
        self._writer = writer or executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="commit")
        # The cache (on disk in the kiosk) is kept only where the `cached` offline policy reads it.
        self._cache = status_cache if status_cache is not None else StatusCache(ttl_s=policy.cached_ttl_min * 60)
        self._settler = Settler(records, outbox, self._cache, wall)
        # the latest amendments put in the outbox, (record id, reason), for the technician and tests
        self.amendments = self._settler.amendments
        self._on_outcome = on_outcome or (lambda outcome: None)
        self._faces = faces
        self._scanner = scanner
        self._trigger = trigger
        self._debounce_s = debounce_s
        # pause/resume come from another thread (the technician menu): this lock orders them with
        # the gate pulse, so that no pulse can start after `pause` returned
        self._gate_lock = threading.Lock()
        self._paused: str | None = None
        self.last_check_at: datetime | None = None  # wall clock of the last verdict (heartbeat)

        self.frames_seen = 0
        self._inflight: InFlight | None = None
        self._committing: Committing | None = None
        self._screen = LoopScreen(
            display, clock=clock, language=lambda: self._language, result_s=lambda: self._result_s,
            camera_timeout_s=camera_timeout_s, faults=faults, fault_poll_s=fault_poll_s,
            hint_after_frames=hint_after_frames, hint_s=hint_s,
        )  # fmt: skip

    @property
    def state(self) -> State:
        return self._screen.state

    @property
    def fault(self) -> str | None:
        """The part on the fault screen while state is FAULT."""
        return self._screen.fault

    # --- one loop iteration ------------------------------------------------------------------

    def step(self, frame: Frame | None, *, paused: bool = False) -> None:
        """Advance by one camera read: `frame` is None when the camera gave nothing in time.
        `paused`: the camera is off on purpose (a handheld between vehicles), which is no fault."""
        now = self._clock()
        self._resolve_check(now)
        self._take_trigger_press()
        self._screen.poll_faults(now)
        if frame is None:
            self._screen.no_frame(now, paused)
            return
        self.frames_seen += 1
        self._screen.frame(frame, now)
        try:
            scan = self._read_codes(frame)
        except Exception:  # a decoder bug must not take the kiosk down
            log.exception("decoder failed on frame %d", frame.sequence)
            return
        codes = scan.codes
        for code in codes:
            if self._on_payload(code.text, getattr(code, "raw", None), now):
                break
        self._screen.note_unreadable(scan, now, self._paused is not None)
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
                    paused = frame is None and source.paused
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
                if until_finished and source.finished and self.state != State.CHECKING:
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
            if remaining <= 0 and check.claim.locked():  # past the deadline, the worker is committing its answer
                remaining = timeout
            check.handover.wait(min(timeout, remaining))
            self._resolve_check(self._clock())
            if self._inflight is not None:
                return
        committing = self._committing
        if committing is not None:
            committing.handover.wait(timeout - (time.monotonic() - started))
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
        try:
            pressed = self._trigger is not None and self._trigger.take_press()
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

    def _read_codes(self, frame: Frame) -> Scan:
        grey = frame.grey
        scan = self._scan(grey) if self._scan is not None else Scan(codes=list(self._decoder.decode(grey)), unread=0)
        try:  # symbols located but not read, read again from the camera's full resolution
            return scan_with_detail(self._decoder, scan, frame.detail, grey.shape)
        except Exception:  # a fault in the larger stream must not lose what the grey plane gave
            if not self._detail_failed:
                log.exception("reading a code from the camera's full-resolution stream failed (frame %d)", frame.sequence)
                self._detail_failed = True
            return scan

    def _ready_for_faces(self) -> bool:
        if self._paused:
            return False
        return self._screen.ready_for_new()

    def close(self, commit_timeout_s: float = 10.0) -> None:
        """Close the gate and stop the workers. A record being committed is let finish first (its
        verdict is not acted on any more), so that the outbox is not closed under it."""
        self._gate.close()
        check, self._inflight = self._inflight, None
        if check is not None and not check.claim.acquire(blocking=False):  # its worker is committing it
            check.handover.wait(commit_timeout_s)
        committing = self._committing
        if committing is not None:
            committing.handover.wait(commit_timeout_s)
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
            if self.state in (State.IDLE, State.FAULT) or self._screen.shown_kind == ScreenKind.ONE_AT_A_TIME:
                self._screen.show(Screen.prompt(ScreenKind.ONE_AT_A_TIME, self._language))
                self._screen.to_result(now)
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
        screen = Screen.unknown_code(verdict, self._language)
        self._screen.show(screen)
        self._screen.to_result(now)
        self._on_outcome(CheckOutcome(None, None, verdict, False, self._clock() - now, None, screen=screen))

    def _start_check(self, credential: Credential, now: float, staff_check: str | None = None) -> None:
        log.debug("checking %r", credential)  # the verdict line says the rest, after the relay
        self._disarm_trigger()
        self._screen.state = State.CHECKING
        self._screen.show(Screen.prompt(ScreenKind.CHECKING, self._language))
        check = InFlight(credential, now, now + self._deadline_s, self._wall(), staff_check)
        check.handover = Handover(self._verify_and_settle, check)
        self._inflight = check
        self._hand(self._executor, check.handover)
        self._resolve_check(self._clock())  # an inline executor may have answered already

    def _verify_and_settle(self, check: InFlight) -> Settled | None:
        """On the verifier's worker: ask, then settle the check here (decide, build, commit), unless
        the frame loop took it at its deadline (then None: the answer is dropped). Settling where
        the answer arrived spares a check two thread hand-overs (back to the frame loop, on to the
        writer: 0.2 ms of the pipeline's 1.1 ms over the raw floor, issue 18)."""
        if check.claim.locked():  # the deadline took the check while it waited for a free worker: do not ask
            return None
        status, answered_at = self._timed_verify(check.credential)
        if not check.claim.acquire(blocking=False):
            return None
        if answered_at > check.deadline:  # an answer after the deadline is a timeout, not a verdict
            status = HealthStatus.unreachable(Status.TIMEOUT, "answer came after the deadline")
        return self._settler.settle(check, status, self._wall(), self._policy, self._language)

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
            if check.handover.done():  # answered and settled on the worker (or it raised: `_act`)
                self._inflight = None
                self._committing = Committing(check, check.handover, now)
            elif now >= check.deadline and check.claim.acquire(blocking=False):
                self._inflight = None
                self._begin_commit(check, HealthStatus.unreachable(Status.TIMEOUT, f"no answer within {self._deadline_s:.1f} s"), now)
            else:  # still asking; or the answer came in time and the worker is committing it
                return
        committing = self._committing
        if committing is not None and committing.handover.done():
            self._committing = None
            self._act(committing, max(now, committing.resolved_at))

    # --- settling a check: decide and build, commit, pulse, show (see the module docstring) ------

    def _begin_commit(self, check: InFlight, status: HealthStatus, now: float) -> None:
        handover = Handover(self._settler.settle, check, status, self._wall(), self._policy, self._language)
        self._committing = Committing(check, handover, now)
        self._hand(self._writer, handover)

    @staticmethod
    def _hand(executor: Executor, handover: Handover) -> None:
        try:
            executor.submit(handover.run)
        except Exception as e:  # e.g. shut down: nothing asked or committed, nobody passes (`_act`)
            log.error("could not hand the check over to a worker: %s", e)
            handover.fail(e)

    def _act(self, committing: Committing, now: float) -> None:
        """Steps 3 and 4, on the frame loop: pulse the gate (a durable pass only), then show."""
        check = committing.check
        try:
            settled: Settled = committing.handover.result()
        except Exception as e:  # a worker died under it, or none would take it: whether it committed is unknown
            log.critical("settling the check failed (%s): staff will check", e)
            settled = failed_settling(e, self._wall(), self._language)
        verdict, status, screen = settled.verdict, settled.status, settled.screen
        relay_at: float | None = None
        if verdict.kind == VerdictKind.PASS and settled.durable:
            screen, relay_at = self._open_gate(settled.record_id, screen)
        self._screen.show(screen)
        felt_s = (relay_at if relay_at is not None else self._clock()) - check.seen_at
        self.last_check_at = self._wall()
        self._screen.to_result(now)
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
                    screen=screen,
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
                    self._screen.gate_pulsed(ok=True)
                except Exception:  # the person is told to use the staffed lane; the record is amended
                    log.exception("gate pulse failed")
                    self._screen.gate_pulsed(ok=False)  # the gate fault screen once the verdict has gone
                    self._settler.amend(record_id, "gate_fault")
                    return Screen.fault("gate", self._language), None
        if paused is not None:
            log.warning("a pass settled while checks are paused (%s): no gate pulse, recorded as not passed", paused)
            self._settler.amend(record_id, "gate_paused")
            return screen, None
        if watch is not None and record_id is not None:  # a gate with a door sensor (hardware.inputs.PassWatch)
            # answered on the sensor's thread (a turn) or its timer (the window passed), never here
            watch.add_callback(lambda w, rid=record_id: self._settler.after_pass(rid, w))
        return screen, relay_at

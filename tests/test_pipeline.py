"""The kiosk loop end to end on real QR frames: verdicts, records, gate, screen, deadlines."""

from __future__ import annotations

import sqlite3
import threading
import time
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from hardware.gate import FakeGate
from sentinel.config import CredentialConfig, PolicyConfig
from sentinel.credentials import CredentialRules
from sentinel.decoding import make_decoder
from sentinel.demo_data import DEMO_UNKNOWN_PAYLOAD, demo_person
from sentinel.health import HealthStatus, Nat, NatResult, Person, Status
from sentinel.outbox import Outbox
from sentinel.pipeline import Pipeline, State
from sentinel.records import RecordMaker
from sentinel.screens import ScreenKind
from sentinel.verifier import TableVerifier
from tests.helpers import PATIENCE_S, FakeClock, InlineExecutor, qr_frame, wait_until
from ui.console import ConsoleDisplay

WALL = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
GREEN, YELLOW, RED = demo_person("green"), demo_person("yellow"), demo_person("red")


def answer(colour: str, name: str = "王*明") -> HealthStatus:
    return HealthStatus(
        status=Status(colour),
        person=Person(name_masked=name, id_masked="1101**********002X"),
        nat=Nat(result=NatResult.NEGATIVE, sampled_at=WALL - timedelta(hours=10)),
    )


ANSWERS = {
    ("health_code", GREEN.token): answer("green"),
    ("health_code", YELLOW.token): answer("yellow", "李*"),
    ("health_code", RED.token): answer("red", "张*"),
}


class Kiosk:
    """A pipeline with real decoder, rules, outbox and records, and test-controlled time."""

    def __init__(self, tmp_path, *, verifier=None, policy=None, clock=None, executor="inline", outbox=None, gate=None, **kw):
        """`gate(kiosk)` makes the gate once clock, display and outbox exist (default: a FakeGate)."""
        self.clock = clock or FakeClock()
        self.verifier = verifier or TableVerifier(ANSWERS)
        self.display = ConsoleDisplay()
        self.outbox = outbox or Outbox(tmp_path / "outbox.sqlite3", wall=lambda: WALL)
        self.gate = gate(self) if gate else FakeGate(pulse_s=1.0, clock=self.clock)
        self.outcomes = []
        self.seq = 0
        self.pipeline = Pipeline(
            decoder=make_decoder(["zxing-cpp", "pyzbar"]),
            rules=CredentialRules(CredentialConfig()),
            verifier=self.verifier,
            policy=policy or PolicyConfig(),
            records=RecordMaker("dev-1", "site-1", b"k" * 32),
            outbox=self.outbox,
            gate=self.gate,
            display=self.display,
            language="en",
            clock=self.clock,
            wall=lambda: WALL,
            executor=InlineExecutor() if executor == "inline" else executor,
            on_outcome=self.outcomes.append,
            **kw,
        )

    def show(self, payload, frames=1, dt=0.1):
        for _ in range(frames):
            self.seq += 1
            self.pipeline.step(qr_frame(payload, self.seq))
            self.clock.advance(dt)

    @property
    def verdicts(self):
        return [(o.verdict.kind.value, o.verdict.reason) for o in self.outcomes]

    def records(self):
        return [(r["verdict"], r["reason"], r["status"]) for r in self.outbox.pending()]


def test_a_queue_of_people_gets_the_right_verdicts(tmp_path):
    k = Kiosk(tmp_path, result_s=1.0)
    for payload in (GREEN.payload, None, RED.payload, None, DEMO_UNKNOWN_PAYLOAD, None, YELLOW.payload, None):
        k.show(payload, frames=10)
    assert k.verdicts == [("pass", "ok"), ("deny", "red_code"), ("deny", "unrecognised"), ("manual_check", "yellow_code")]
    assert len(k.gate.pulses) == 1  # only the green person opened the gate
    # every person checked became a record; the unknown code was refused on the device, unrecorded
    rows = k.outbox.pending()
    assert [(r["status"], r["verdict"], r["mode"]) for r in rows] == [
        ("green", "pass", "online"), ("red", "deny", "online"), ("yellow", "manual_check", "online")]
    assert rows[0]["person"]["name_masked"] == "王*明"
    assert len(k.verifier.calls) == 3  # the unknown payload never reached the verifier


def test_a_code_held_up_for_seconds_is_one_check(tmp_path):
    k = Kiosk(tmp_path)
    k.show(GREEN.payload, frames=60, dt=0.1)  # 6 s in front of the camera, debounce 5 s
    assert len(k.verifier.calls) == 1
    assert len(k.outbox.pending()) == 1


def test_the_same_person_returning_later_is_a_new_check(tmp_path):
    k = Kiosk(tmp_path)
    k.show(GREEN.payload, frames=3)
    k.show(None, frames=60)  # 6 s away
    k.show(GREEN.payload, frames=3)
    assert len(k.verifier.calls) == 2


def test_raw_token_never_reaches_the_outbox_file(tmp_path):
    k = Kiosk(tmp_path)
    k.show(GREEN.payload, frames=3)
    k.outbox.close()
    for path in tmp_path.iterdir():
        assert GREEN.token.encode() not in path.read_bytes(), path
    body = sqlite3.connect(tmp_path / "outbox.sqlite3").execute("SELECT body FROM records").fetchone()[0]
    assert GREEN.token not in body and len(__import__("json").loads(body)["credential_hash"]) == 64


def test_result_screen_returns_to_idle(tmp_path):
    k = Kiosk(tmp_path, result_s=2.0)
    k.show(GREEN.payload, frames=1)
    assert k.display.shown[-1].kind == ScreenKind.PASS
    assert k.display.shown[-1].person == "王*明"
    k.show(None, frames=25)
    assert k.pipeline.state == State.IDLE
    assert k.display.shown[-1].kind == ScreenKind.IDLE


def test_next_person_does_not_wait_for_the_previous_result_to_fade(tmp_path):
    k = Kiosk(tmp_path, result_s=3.0)
    k.show(GREEN.payload, frames=2)
    k.show(RED.payload, frames=2)  # shown while the green screen is still up
    assert k.verdicts == [("pass", "ok"), ("deny", "red_code")]


def test_late_answer_is_a_timeout_and_the_offline_policy_decides(tmp_path):
    clock = FakeClock()
    slow = TableVerifier(ANSWERS, latency_s=3.0, sleep=clock.advance)  # answers after 3 s on the fake clock
    k = Kiosk(tmp_path, verifier=slow, clock=clock, deadline_s=1.5, policy=PolicyConfig(offline="deny"))
    k.show(GREEN.payload)
    assert k.verdicts == [("deny", "offline_denied")]
    (row,) = k.outbox.pending()
    assert (row["status"], row["mode"]) == ("timeout", "offline")
    assert k.gate.pulses == []
    assert k.display.shown[-1].offline


def test_offline_allow_and_flag_opens_and_flags(tmp_path):
    clock = FakeClock()
    slow = TableVerifier(ANSWERS, latency_s=3.0, sleep=clock.advance)
    k = Kiosk(tmp_path, verifier=slow, clock=clock, policy=PolicyConfig(offline="allow_and_flag"))
    k.show(RED.payload)
    assert k.verdicts == [("pass", "offline_allowed")]
    assert len(k.gate.pulses) == 1
    assert k.outbox.pending()[0]["mode"] == "offline"


def test_offline_cached_uses_the_status_seen_earlier(tmp_path):
    clock = FakeClock()
    verifier = TableVerifier(ANSWERS, sleep=clock.advance)
    k = Kiosk(tmp_path, verifier=verifier, clock=clock, policy=PolicyConfig(offline="cached"))
    k.show(GREEN.payload)  # online: green, remembered
    k.show(None, frames=60)
    verifier.latency_s = 3.0  # the network is now too slow
    k.show(GREEN.payload)
    k.show(None, frames=60)
    k.show(YELLOW.payload)  # never seen online: nothing cached
    assert k.verdicts == [("pass", "ok"), ("pass", "ok"), ("deny", "offline_no_cache")]
    assert [r["mode"] for r in k.outbox.pending()] == ["online", "offline", "offline"]


def test_verdict_at_the_deadline_while_the_service_hangs_and_frames_keep_flowing(tmp_path):
    """A real worker thread whose verifier never answers, and the pipeline's clock injected: the
    check costs the deadline exactly, no more, and frames keep being taken meanwhile."""
    hung = TableVerifier(ANSWERS)
    hung.hold.clear()
    clock = FakeClock()
    k = Kiosk(tmp_path, verifier=hung, clock=clock, executor=None, deadline_s=0.5)
    try:
        k.pipeline.step(qr_frame(GREEN.payload, 1))
        assert k.pipeline.state == State.CHECKING
        for seq in range(2, 6):  # 0.4 s of frames while the service says nothing
            clock.advance(0.1)
            k.pipeline.step(qr_frame(None, seq))
        assert k.pipeline.state == State.CHECKING and not k.outcomes
        assert k.pipeline.frames_seen == 5  # the loop kept taking frames during the check
        clock.t = 1000.0 + 0.5  # the deadline
        frames = iter(range(6, 10_000))

        def one_more_frame():
            k.pipeline.step(qr_frame(None, next(frames)))
            return k.outcomes

        wait_until(one_more_frame, what="the verdict at the deadline")
        assert k.verdicts == [("deny", "offline_denied")]
        assert len(hung.calls) == 1
    finally:
        hung.hold.set()
        k.pipeline.close()


def wait_for_verdict(k: Kiosk, what: str = "the verdict") -> None:
    """Let the frame loop wait for the check on the pipeline's real threads until it is acted on."""
    wait_until(lambda: k.pipeline.wait_for_check(0.05) or k.outcomes, what=what)


class HeldOutbox(Outbox):
    """A commit that hangs until released (a tired SD card), and says when one has started."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.committing = threading.Event()
        self.release = threading.Event()

    def add(self, record, **kwargs):
        self.committing.set()
        self.release.wait()
        super().add(record, **kwargs)


class NeverRuns(Executor):
    """A writer that takes work and never does it."""

    def submit(self, fn, /, *args, **kwargs):
        return Future()


def test_an_answer_is_committed_by_the_worker_that_got_it_not_queued_for_the_writer(tmp_path):
    """The answer's record is committed where the answer arrived, with no hand-over back to the
    frame loop and on to the writer (issue 18): with a writer that never runs, the check still ends."""
    k = Kiosk(tmp_path, executor=None, writer=NeverRuns(), clock=time.monotonic, deadline_s=60)
    try:
        k.pipeline.step(qr_frame(GREEN.payload, 1))
        wait_for_verdict(k)
        assert k.verdicts == [("pass", "ok")] and len(k.gate.pulses) == 1
        assert [(r["status"], r["verdict"]) for r in k.outbox.pending()] == [("green", "pass")]
    finally:
        k.pipeline.close()


def test_an_answer_in_time_whose_commit_outlasts_the_deadline_is_that_answer_recorded_once(tmp_path):
    """The worker took the check with an answer in time; the deadline passing during its slow commit
    does not make the frame loop settle it again as a timeout."""
    clock = FakeClock()
    outbox = HeldOutbox(tmp_path / "o.sqlite3", wall=lambda: WALL)
    k = Kiosk(tmp_path, outbox=outbox, clock=clock, executor=None, deadline_s=0.5, policy=PolicyConfig(offline="deny"))
    try:
        k.pipeline.step(qr_frame(GREEN.payload, 1))
        assert outbox.committing.wait(PATIENCE_S)  # answered at once, the record on its way to disk
        for seq in range(2, 12):  # a second of frames past the deadline while the disk is slow
            clock.advance(0.1)
            k.pipeline.step(qr_frame(None, seq))
        assert k.pipeline.state == State.CHECKING and not k.outcomes
        outbox.release.set()
        wait_for_verdict(k)
        assert k.verdicts == [("pass", "ok")] and len(k.gate.pulses) == 1
        assert [(r["status"], r["mode"]) for r in outbox.pending()] == [("green", "online")]
    finally:
        outbox.release.set()
        k.pipeline.close()


def test_an_answer_after_the_frame_loop_gave_up_on_it_is_dropped(tmp_path):
    """The deadline took the check (a timeout, recorded); the answer that comes later adds nothing."""
    hung = TableVerifier(ANSWERS)
    hung.hold.clear()
    clock = FakeClock()
    workers = ThreadPoolExecutor(max_workers=2)
    k = Kiosk(tmp_path, verifier=hung, clock=clock, executor=workers, deadline_s=0.5, policy=PolicyConfig(offline="deny"))
    try:
        k.pipeline.step(qr_frame(GREEN.payload, 1))
        clock.advance(0.5)
        k.pipeline.step(qr_frame(None, 2))
        wait_for_verdict(k, "the verdict at the deadline")
        hung.hold.set()
        workers.shutdown(wait=True)  # the late answer has come and gone
        assert k.verdicts == [("deny", "offline_denied")] and k.gate.pulses == []
        assert [(r["status"], r["mode"]) for r in k.outbox.pending()] == [("timeout", "offline")]
    finally:
        hung.hold.set()
        k.pipeline.close()


def test_a_check_no_worker_will_take_is_a_staff_check_and_the_loop_goes_on(tmp_path):
    refusing = ThreadPoolExecutor(max_workers=1)
    refusing.shutdown()
    k = Kiosk(tmp_path, executor=refusing)
    k.show(GREEN.payload)
    assert k.verdicts == [("manual_check", "verify_failed")] and k.gate.pulses == []
    assert k.display.shown[-1].kind == ScreenKind.MANUAL_CHECK
    k.show(None, frames=40)  # the verdict goes, the kiosk is ready for the next person
    assert k.pipeline.state == State.IDLE


def test_closing_lets_the_record_a_worker_is_committing_reach_the_disk(tmp_path):
    outbox = HeldOutbox(tmp_path / "o.sqlite3", wall=lambda: WALL)
    k = Kiosk(tmp_path, outbox=outbox, executor=None, clock=time.monotonic, deadline_s=60)
    k.pipeline.step(qr_frame(GREEN.payload, 1))
    assert outbox.committing.wait(PATIENCE_S)
    closing = threading.Thread(target=k.pipeline.close)
    closing.start()
    closing.join(0.2)
    assert closing.is_alive()  # waiting for the commit, so that the outbox is not closed under it
    outbox.release.set()
    closing.join(PATIENCE_S)
    assert not closing.is_alive()
    assert [(r["status"], r["verdict"]) for r in outbox.pending()] == [("green", "pass")]
    assert k.gate.pulses == []  # a verdict settled while closing is not acted on


def test_one_person_at_a_time_the_second_code_waits(tmp_path):
    hung = TableVerifier(ANSWERS)
    hung.hold.clear()
    k = Kiosk(tmp_path, verifier=hung, clock=time.monotonic, executor=None, deadline_s=5)
    k.pipeline.step(qr_frame(GREEN.payload, 1))
    k.pipeline.step(qr_frame(RED.payload, 2))  # someone else pushes in
    assert len(hung.calls) == 1
    hung.hold.set()
    deadline = time.monotonic() + 3
    while not k.outcomes and time.monotonic() < deadline:
        k.pipeline.step(qr_frame(None, 3))
        time.sleep(0.01)
    k.pipeline.step(qr_frame(RED.payload, 4))  # now it is their turn
    deadline = time.monotonic() + 3
    while len(k.outcomes) < 2 and time.monotonic() < deadline:
        k.pipeline.step(qr_frame(None, 5))
        time.sleep(0.01)
    assert k.verdicts == [("pass", "ok"), ("deny", "red_code")]


class BrokenOutbox(Outbox):
    def add(self, record, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")


def test_no_gate_without_a_committed_record(tmp_path):
    k = Kiosk(tmp_path, outbox=BrokenOutbox(tmp_path / "o.sqlite3"))
    k.show(GREEN.payload)
    assert k.verdicts == [("manual_check", "record_failed")]
    assert k.gate.pulses == []
    shown = k.display.shown[-1]  # staff check, with the person's masked name for the guard
    assert (shown.kind, shown.reason, shown.person) == (ScreenKind.MANUAL_CHECK, "record_failed", "王*明")


def test_camera_silence_shows_a_fault_and_recovers(tmp_path):
    k = Kiosk(tmp_path, camera_timeout_s=2.0)
    k.show(None, frames=1)
    for _ in range(30):
        k.pipeline.step(None)
        k.clock.advance(0.1)
    assert k.pipeline.state == State.FAULT
    assert k.display.shown[-1].kind == ScreenKind.FAULT
    k.show(GREEN.payload)
    assert k.verdicts == [("pass", "ok")]


def test_a_verifier_that_raises_is_verify_failed_not_a_crash(tmp_path):
    class Exploding(TableVerifier):
        def verify(self, credential, timeout_s):
            raise RuntimeError("bug")

    k = Kiosk(tmp_path, verifier=Exploding({}))
    k.show(GREEN.payload)
    assert k.verdicts == [("manual_check", "verify_failed")]  # a staff check, never the offline policy
    assert k.outbox.pending()[0]["status"] == "verify_failed"


class ExplodingSource:
    def __init__(self, frames):
        self.frames = list(frames)

    def read(self, timeout):
        if self.frames:
            return self.frames.pop(0)
        raise KeyboardInterrupt  # Ctrl-C / SIGINT in the middle of the loop


def test_gate_is_closed_on_every_exit_path(tmp_path):
    k = Kiosk(tmp_path)
    source = ExplodingSource([qr_frame(GREEN.payload, 1)])
    with pytest.raises(KeyboardInterrupt):
        k.pipeline.run(source)
    assert len(k.gate.pulses) == 1
    assert not k.gate.is_open


def test_run_stops_at_the_end_of_a_finite_source(tmp_path):
    class Finite:
        finished = False

        def __init__(self):
            self.frames = [qr_frame(GREEN.payload, i) for i in range(3)]

        def read(self, timeout):
            if self.frames:
                return self.frames.pop(0)
            self.finished = True
            return None

    k = Kiosk(tmp_path, clock=time.monotonic)
    stop = threading.Event()
    k.pipeline.run(Finite(), stop=stop, until_finished=True)
    assert k.verdicts == [("pass", "ok")]


"""Settling a check: decide and build, commit, pulse, show, in that order, and never a crash.

Record and gate must never disagree: a verdict the code cannot finish (a bug, an answer it cannot
show) becomes a recorded staff check, not a pass record without a gate pulse and a dead frame
loop. The commit (an fsync, slow on a tired SD card) runs off the frame loop, so the preview keeps
moving while it runs, and the gate still waits for it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from hardware.gate import FakeGate
from sentinel import settling as pipeline_module  # deciding and committing live in sentinel.settling
from sentinel.config import CredentialConfig, PolicyConfig
from sentinel.credentials import CredentialRules
from sentinel.decoding import make_decoder
from sentinel.demo_data import demo_person
from sentinel.health import HealthStatus, Nat, NatResult, Person, Status
from sentinel.outbox import Outbox
from sentinel.pipeline import Pipeline, State
from sentinel.policy import VerdictKind
from sentinel.records import RecordMaker
from sentinel.screens import ScreenKind
from sentinel.verifier import TableVerifier
from tests.helpers import qr_frame
from tests.test_pipeline import Kiosk as PipelineKiosk
from ui.console import ConsoleDisplay

WALL = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
GREEN, RED = demo_person("green"), demo_person("red")


def green(name: str = "王*明") -> HealthStatus:
    return HealthStatus(
        status=Status.GREEN,
        person=Person(name_masked=name, id_masked="1101**********002X"),
        nat=Nat(result=NatResult.NEGATIVE, sampled_at=WALL - timedelta(hours=10)),
    )


def naive_nat_green() -> HealthStatus:
    """A green answer whose NAT time has no time zone: built without validation, as a verifier
    with a bug (or an older model) could hand it over; comparing it with the clock raises."""
    nat = Nat.model_construct(result=NatResult.NEGATIVE, sampled_at=datetime(2026, 11, 25, 1, 0))
    return HealthStatus.model_construct(
        status=Status.GREEN, person=Person(name_masked="李*", id_masked="1101**********003X"), nat=nat,
        antigen=None, vaccination=None, checked_at=None, detail="",
    )


class RecordingGate(FakeGate):
    """Remembers, at each pulse, what the outbox held and what the screen showed."""

    def __init__(self, outbox: Outbox, display: ConsoleDisplay, clock):
        super().__init__(pulse_s=1.0, clock=clock)
        self.outbox = outbox
        self.display = display
        self.seen_at_pulse: list[tuple[list[tuple[str, str]], ScreenKind | None]] = []

    def pulse(self) -> None:
        rows = [(r["verdict"], r["status"]) for r in self.outbox.pending()]
        shown = self.display.shown[-1].kind if self.display.shown else None
        self.seen_at_pulse.append((rows, shown))
        super().pulse()


class Kiosk(PipelineKiosk):
    """One `step` at a time, inline executor: everything happens synchronously; the gate notes
    what was committed and shown at each pulse."""

    def __init__(self, tmp_path, answers, *, policy=None):
        super().__init__(
            tmp_path, verifier=TableVerifier(answers), policy=policy, result_s=1.0,
            gate=lambda k: RecordingGate(k.outbox, k.display, k.clock),
        )


# --- item 1: record and gate never disagree ------------------------------------------------------


def test_an_answer_the_screen_cannot_show_is_a_recorded_staff_check_not_a_pass(tmp_path):
    # The site does not look at NAT times, so the policy passes this person; showing the NAT age
    # then raises. Before: a pass record was committed and the frame loop crashed before the gate.
    k = Kiosk(tmp_path, {("health_code", GREEN.token): naive_nat_green(), ("health_code", RED.token): green()},
              policy=PolicyConfig(nat_window_h="none"))
    k.show(GREEN.payload, frames=3)  # must not raise
    assert k.verdicts == [("manual_check", "verify_failed")]
    assert k.records() == [("manual_check", "verify_failed", "verify_failed")]
    assert k.gate.pulses == []
    assert k.display.shown[-1].kind in (ScreenKind.MANUAL_CHECK, ScreenKind.FAULT)
    assert k.outcomes[0].durable and k.outcomes[0].record_id == k.outbox.pending()[0]["id"]
    # the loop keeps running: the next person is checked as usual
    k.show(None, frames=15)
    k.show(RED.payload, frames=2)
    assert k.verdicts[-1] == ("pass", "ok") and len(k.gate.pulses) == 1


def test_a_policy_that_raises_is_a_recorded_staff_check(tmp_path, monkeypatch):
    def broken_decide(*args, **kwargs):
        raise ZeroDivisionError("policy bug")

    monkeypatch.setattr(pipeline_module, "decide", broken_decide)
    k = Kiosk(tmp_path, {("health_code", GREEN.token): green()})
    k.show(GREEN.payload, frames=2)
    assert k.verdicts == [("manual_check", "verify_failed")]
    assert k.records() == [("manual_check", "verify_failed", "verify_failed")]
    assert k.gate.pulses == [] and k.pipeline.state == State.RESULT


def test_a_screen_builder_that_always_raises_still_records_a_staff_check(tmp_path, monkeypatch):
    def broken_result(*args, **kwargs):
        raise KeyError("no text for this reason")

    monkeypatch.setattr(pipeline_module.Screen, "result", staticmethod(broken_result))
    k = Kiosk(tmp_path, {("health_code", GREEN.token): green()})
    k.show(GREEN.payload, frames=2)
    assert k.verdicts == [("manual_check", "verify_failed")]
    assert k.records() == [("manual_check", "verify_failed", "verify_failed")]
    assert k.gate.pulses == []
    assert k.display.shown[-1].kind == ScreenKind.FAULT  # the generic "device fault: call staff"


def test_a_gate_that_raises_does_not_stop_the_loop(tmp_path):
    k = Kiosk(tmp_path, {("health_code", GREEN.token): green(), ("health_code", RED.token): green("张*")})

    def broken_pulse():
        raise OSError("relay driver gone")

    k.gate.pulse = broken_pulse
    k.show(GREEN.payload, frames=2)
    assert k.verdicts == [("pass", "ok")]
    assert k.display.shown[-1].kind == ScreenKind.FAULT and k.display.shown[-1].failed_part == "gate"
    k.show(None, frames=15)
    k.show(RED.payload, frames=2)
    assert len(k.verdicts) == 2


def test_commit_then_pulse_then_show(tmp_path):
    k = Kiosk(tmp_path, {("health_code", GREEN.token): green()})
    k.show(GREEN.payload, frames=2)
    assert k.verdicts == [("pass", "ok")]
    # at the pulse the pass record was already in the outbox, and the verdict not yet on screen
    assert k.gate.seen_at_pulse == [([("pass", "green")], ScreenKind.CHECKING)]
    assert k.display.shown[-1].kind == ScreenKind.PASS


# --- item 2: the commit runs off the frame loop ---------------------------------------------------


class SlowOutbox(Outbox):
    """An SD card on a bad day: every commit takes `delay_s` (before the real, durable write)."""

    def __init__(self, *args, delay_s: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.delay_s = delay_s
        self.commits: list[tuple[float, float]] = []  # (started, returned), time.monotonic

    def add(self, record, **kwargs) -> None:
        started = time.monotonic()
        time.sleep(self.delay_s)
        super().add(record, **kwargs)
        self.commits.append((started, time.monotonic()))


class TimedDisplay(ConsoleDisplay):
    def __init__(self):
        super().__init__()
        self.previews: list[float] = []
        self.shows: list[tuple[float, ScreenKind]] = []

    def preview(self, frame) -> None:
        self.previews.append(time.monotonic())
        super().preview(frame)

    def show(self, screen) -> None:
        self.shows.append((time.monotonic(), screen.kind))
        super().show(screen)


class TimedGate(FakeGate):
    def __init__(self):
        super().__init__(pulse_s=0.05)
        self.pulsed_at: list[float] = []

    def pulse(self) -> None:
        self.pulsed_at.append(time.monotonic())
        super().pulse()


class Camera:
    """A code in view for the first frames, then an empty scene; about 100 frames a second."""

    def __init__(self, payload: str, code_frames: int, total: int):
        self.payload, self.code_frames, self.total = payload, code_frames, total
        self.n = 0

    @property
    def finished(self) -> bool:
        return self.n >= self.total

    def read(self, timeout: float):
        time.sleep(min(timeout, 0.01))
        self.n += 1
        return qr_frame(self.payload if self.n <= self.code_frames else None, self.n)


def test_frames_keep_flowing_while_a_record_is_committed_and_the_gate_waits_for_it(tmp_path):
    outbox = SlowOutbox(tmp_path / "outbox.sqlite3", wall=lambda: WALL, delay_s=0.8)
    display, gate, outcomes = TimedDisplay(), TimedGate(), []
    pipeline = Pipeline(
        decoder=make_decoder(["zxing-cpp", "pyzbar"]),
        rules=CredentialRules(CredentialConfig()),
        verifier=TableVerifier({("health_code", GREEN.token): green()}),
        policy=PolicyConfig(),
        records=RecordMaker("dev-1", "site-1", b"k" * 32),
        outbox=outbox,
        gate=gate,
        display=display,
        language="en",
        deadline_s=30.0,  # a busy machine must not turn this into a timeout
        wall=lambda: WALL,  # real monotonic clock and real worker threads
        on_outcome=outcomes.append,
    )
    try:  # ends when the camera has shown its 300 frames and no check is in flight
        pipeline.run(Camera(GREEN.payload, code_frames=5, total=300), until_finished=True)
    finally:
        pipeline.close()
        outbox.close()
    assert [(o.verdict.kind, o.durable) for o in outcomes] == [(VerdictKind.PASS, True)]
    ((started, returned),) = outbox.commits
    during = [t for t in display.previews if started <= t <= returned]
    # the frame loop went on handing frames to the preview during the 0.8 s commit (about 20
    # expected; a few prove it was not blocked, with room for a busy machine)
    assert len(during) >= 4, f"{len(during)} previews during the commit"
    # and the verdict waited for the commit: the gate and the pass screen only after it returned
    assert gate.pulsed_at and gate.pulsed_at[0] >= returned
    pass_shown = [t for t, kind in display.shows if kind == ScreenKind.PASS]
    assert pass_shown and pass_shown[0] >= gate.pulsed_at[0]
    # until then the screen said "checking"
    assert [kind for t, kind in display.shows if started <= t < returned] in ([], [ScreenKind.CHECKING])

"""The pipeline one `step()` at a time: pause/resume (the technician menu), the gate and network
fault screens while idle (never over a verdict), amendments of passes the gate did not let through,
and the handheld trigger's press and disarm."""

from __future__ import annotations

from hardware.inputs import PassWatch
from sentinel.heartbeat import HeartbeatSender, ServiceContact
from sentinel.pipeline import State
from sentinel.screens import ScreenKind
from tests.helpers import FakeClock
from tests.test_pipeline import GREEN, RED, Kiosk


class Recording:
    """Wraps the FakeGate: counts closes; `fail` makes pulses raise; hands out PassWatches."""

    def __init__(self, gate):
        self.inner = gate
        self.closes = 0
        self.fail = False
        self.watches: list[PassWatch] = []

    def pulse(self):
        if self.fail:
            raise OSError("relay board gone")
        self.inner.pulse()
        self.watches.append(PassWatch(started_at=0.0, window_s=5.0))
        return self.watches[-1]

    def close(self):
        self.closes += 1
        self.inner.close()


def kiosk(tmp_path, **kw) -> Kiosk:
    k = Kiosk(tmp_path, result_s=1.0, **kw)
    k.gate = Recording(k.gate)
    k.pipeline._gate = k.gate
    return k


def kinds(k: Kiosk) -> list[str]:
    return [s.kind.value for s in k.display.shown]


def amendments(k: Kiosk) -> list[tuple[str, bool, str]]:
    return [(r["record_id"], r["passed"], r["reason"]) for r in k.outbox.pending() if r.get("kind") == "amendment"]


# --- pause / resume ---------------------------------------------------------------------------------


def test_paused_no_check_starts_the_relay_is_closed_and_frames_still_reach_the_preview(tmp_path):
    k = kiosk(tmp_path)
    previews = []
    k.display.preview = previews.append
    k.pipeline.pause("technician")
    assert k.gate.closes == 1 and k.pipeline.paused == "technician"
    k.show(GREEN.payload, frames=5)
    assert k.outcomes == [] and k.verifier.calls == [] and k.pipeline.state == State.IDLE
    assert len(previews) == 5  # the camera view keeps moving behind the menu
    k.pipeline.resume()
    k.show(GREEN.payload, frames=2)  # the same code, still in front of the camera: checked now
    assert k.verdicts == [("pass", "ok")] and len(k.gate.inner.pulses) == 1


def test_a_pass_in_flight_when_paused_is_recorded_without_a_pulse_and_amended(tmp_path):
    k = kiosk(tmp_path, executor=None)  # a real verifier thread: the check is in flight across steps
    k.show(GREEN.payload)
    assert k.pipeline.state == State.CHECKING
    k.pipeline.pause("technician")
    k.pipeline.wait_for_check(10.0)
    while k.pipeline.state == State.CHECKING:
        k.pipeline.wait_for_check(0.5)
    assert k.verdicts == [("pass", "ok")]
    assert k.gate.inner.pulses == []  # the relay stayed closed
    record_id = k.outcomes[0].record_id
    assert amendments(k) == [(record_id, False, "gate_paused")]


# --- faults while idle ------------------------------------------------------------------------------


def test_a_network_fault_shows_while_idle_never_over_a_verdict_and_clears(tmp_path):
    fault = {"part": None}
    k = kiosk(tmp_path, faults=lambda: fault["part"], fault_poll_s=0.5)
    k.show(None, frames=2)
    assert k.pipeline.state == State.IDLE
    fault["part"] = "network"
    k.show(None, frames=6)
    assert k.pipeline.state == State.FAULT and k.display.shown[-1].failed_part == "network"
    # a code shown meanwhile is still checked (the offline policy would decide without a network)
    k.show(RED.payload, frames=1)
    assert k.verdicts == [("deny", "red_code")] and k.display.shown[-1].kind == ScreenKind.DENY
    k.show(None, frames=5)  # 0.5 s: the verdict stays its result_s
    assert k.display.shown[-1].kind == ScreenKind.DENY
    k.show(None, frames=6)  # after it: straight back to the fault, no idle flash in between
    assert k.display.shown[-1].failed_part == "network" and kinds(k)[-2] == "deny"
    fault["part"] = None
    k.show(None, frames=6)
    assert k.pipeline.state == State.IDLE and k.display.shown[-1].kind == ScreenKind.IDLE


def test_a_camera_fault_outranks_a_network_fault_and_frames_bring_the_network_one_back(tmp_path):
    k = kiosk(tmp_path, faults=lambda: "network", fault_poll_s=0.1)
    k.show(None, frames=2)
    assert k.pipeline.fault == "network"
    for _ in range(40):  # 4 s without a frame
        k.pipeline.step(None)
        k.clock.advance(0.1)
    assert k.pipeline.fault == "camera" and k.display.shown[-1].failed_part == "camera"
    k.show(None, frames=1)  # a frame
    assert k.pipeline.fault == "network" and k.display.shown[-1].failed_part == "network"


def test_a_pulse_that_raises_shows_the_gate_fault_until_a_pulse_works_and_amends_the_pass(tmp_path):
    k = kiosk(tmp_path)
    k.gate.fail = True
    k.show(GREEN.payload)
    assert k.display.shown[-1].failed_part == "gate"
    assert amendments(k) == [(k.outcomes[0].record_id, False, "gate_fault")]
    k.show(None, frames=60)  # past the result and the debounce
    assert k.pipeline.state == State.FAULT and k.pipeline.fault == "gate"
    k.gate.fail = False
    k.show(GREEN.payload)  # the next pass (codes are checked on the fault screen) pulses fine
    k.show(None, frames=30)
    assert k.pipeline.state == State.IDLE and len(k.gate.inner.pulses) == 1


def test_a_pass_whose_gate_did_not_turn_is_amended_from_the_sensors_thread(tmp_path):
    k = kiosk(tmp_path)
    k.show(GREEN.payload)
    k.show(None, frames=60)
    k.show(GREEN.payload)
    first, second = (o.record_id for o in k.outcomes)
    assert amendments(k) == []
    k.gate.watches[0]._resolve(False, None, "window passed")  # what GateMonitor's timer does
    k.gate.watches[1]._resolve(True, 1.2, "turned")
    assert amendments(k) == [(first, False, "gate_not_turned")]
    assert second not in {a[0] for a in amendments(k)}


# --- the trigger ------------------------------------------------------------------------------------


class Trigger:
    def __init__(self):
        self.unread = 0
        self.disarmed = 0

    def take_press(self):
        pressed, self.unread = bool(self.unread), 0
        return pressed

    def disarm(self):
        self.disarmed += 1


def test_a_trigger_press_checks_the_same_code_again_and_a_read_disarms_it(tmp_path):
    trigger = Trigger()
    k = kiosk(tmp_path, trigger=trigger)
    k.show(GREEN.payload, frames=3)
    k.show(None, frames=12)
    k.show(GREEN.payload, frames=3)  # within the 5 s debounce: the same check
    assert len(k.verifier.calls) == 1 and trigger.disarmed == 1
    trigger.unread = 1  # the staff press the trigger: check this phone again on purpose
    k.show(GREEN.payload, frames=3)
    assert len(k.verifier.calls) == 2 and trigger.disarmed == 2


# --- the service's reachability and the heartbeat ----------------------------------------------------


def test_the_network_fault_needs_both_silence_and_failures_and_clears_at_the_first_contact():
    clock = FakeClock()
    c = ServiceContact(after_s=120, min_failures=3, clock=clock)
    clock.advance(600)
    assert not c.fault()  # a quiet kiosk: nothing failed
    c.failed(2)
    assert not c.fault()
    c.failed()
    assert c.fault()
    c.ok()
    assert not c.fault()
    c.failed(5)
    clock.advance(60)
    assert not c.fault()  # failing, but contact only a minute ago
    clock.advance(60)
    assert c.fault()


class FakeClient:
    def __init__(self):
        self.bodies = []
        self.fail = False

    def heartbeat(self, body, timeout_s=5.0):
        from datetime import UTC, datetime

        from sentinel.contract import HeartbeatAck

        if self.fail:
            from sentinel.client import ClientError

            raise ClientError("connection", "cannot reach the service")
        self.bodies.append(body)
        return HeartbeatAck(received_at=datetime(2026, 11, 25, 8, 0, 0, tzinfo=UTC))


def test_the_heartbeat_sends_the_clock_offset_of_the_previous_ack_and_fails_quietly():
    from datetime import UTC, datetime, timedelta

    from tests.helpers import WallClock

    wall = WallClock(datetime(2026, 11, 25, 8, 0, 30, tzinfo=UTC))  # 30 s ahead of the service
    client = FakeClient()
    contact = ServiceContact(clock=FakeClock())
    offsets = []
    hb = HeartbeatSender(client, lambda off: offsets.append(off) or {"offset": off}, wall=wall, contact=contact)
    assert hb.send_once() and offsets == [None]
    assert hb.clock_offset_s == 30.0
    wall.advance(60)
    client.fail = True
    assert not hb.send_once() and hb.failures == 1 and contact.failures == 1
    client.fail = False
    assert hb.send_once() and offsets[-1] == 30.0 and contact.failures == 0
    assert hb.clock_offset_s == timedelta(seconds=90).total_seconds()

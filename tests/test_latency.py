"""Relay first, and a latency that is what the person feels (issue 18).

- The record is durable before the relay moves, and the uploader is woken only after the relay is
  energised and the verdict shown: the uploader's first request finds the pin already high.
- `CheckOutcome.latency_s` and the uploaded record's `extra.latency_ms` run from the frame that
  showed the code to the relay energised (a pass), or to the verdict on screen (the gate stays
  shut), on the pipeline's clock: a fake clock here, moved by the verifier, the relay and the screen.
"""

from __future__ import annotations

import pytest

from hardware.gate import FakeGate, GpioGate
from sentinel.config import GpioGateConfig
from sentinel.outbox import Outbox
from sentinel.uploader import Uploader
from sentinel.verifier import TableVerifier
from tests.helpers import FakeClock, wait_until
from tests.test_pipeline import ANSWERS, GREEN, RED, WALL, Kiosk
from tests.test_uploader import Transport

VERIFY_S, RELAY_S, SCREEN_S = 0.3, 0.05, 0.2


class Events:
    def __init__(self):
        self.log: list[str] = []


def _rig(tmp_path, events: Events):
    """A kiosk on a fake clock whose verifier, relay and screen each take a known time."""

    class SlowRelay(FakeGate):
        def pulse(self):
            events.log.append(f"relay depth={outbox.health().depth}")  # the record is durable first
            k.clock.advance(RELAY_S)  # writing the pin takes this long
            super().pulse()

    outbox = Outbox(tmp_path / "o.sqlite3", wall=lambda: WALL)
    outbox.subscribe(lambda: events.log.append("wake"))
    clock = FakeClock()
    verifier = TableVerifier(ANSWERS, latency_s=VERIFY_S, sleep=clock.advance)
    k = Kiosk(tmp_path, outbox=outbox, clock=clock, verifier=verifier, gate=lambda kiosk: SlowRelay(pulse_s=1.0, clock=clock))
    real_show = k.display.show

    def slow_show(screen):
        events.log.append(f"show {screen.kind.value}")
        real_show(screen)
        k.clock.advance(SCREEN_S)

    k.display.show = slow_show
    return k


def test_the_relay_moves_before_the_uploader_is_woken(tmp_path):
    events = Events()
    k = _rig(tmp_path, events)
    events.log.clear()
    k.show(GREEN.payload)
    assert k.verdicts == [("pass", "ok")]
    assert events.log == ["show checking", "relay depth=1", "show pass", "wake"]


def test_latency_of_a_pass_runs_to_the_relay_and_reaches_the_record(tmp_path):
    events = Events()
    k = _rig(tmp_path, events)
    k.show(GREEN.payload)
    (outcome,) = k.outcomes
    # verify + relay; not the screen drawn after the relay, which the person does not wait for
    assert outcome.latency_s == pytest.approx(SCREEN_S + VERIFY_S + RELAY_S)  # "checking" shown first
    (row,) = k.outbox.pending()
    assert row["extra"]["latency_ms"] == pytest.approx(outcome.latency_s * 1000, abs=0.1)


def test_latency_of_a_deny_runs_to_the_verdict_on_screen(tmp_path):
    events = Events()
    k = _rig(tmp_path, events)
    k.show(RED.payload)
    (outcome,) = k.outcomes
    assert k.verdicts == [("deny", "red_code")] and k.gate.pulses == []
    assert outcome.latency_s == pytest.approx(SCREEN_S + VERIFY_S + SCREEN_S)  # checking, verify, red screen
    (row,) = k.outbox.pending()
    assert row["extra"]["latency_ms"] == pytest.approx(outcome.latency_s * 1000, abs=0.1)


def test_the_latency_is_not_on_disk_and_an_acknowledged_record_forgets_it(tmp_path):
    """Measured after the commit, so kept in memory and added on the way to the uploader."""
    k = Kiosk(tmp_path)
    k.show(GREEN.payload)
    (row,) = k.outbox.pending()
    assert "latency_ms" in row["extra"]
    reopened = Outbox(tmp_path / "outbox.sqlite3")  # what a restart would upload
    try:
        assert "latency_ms" not in reopened.pending()[0]["extra"]
    finally:
        reopened.close()
    assert k.outbox.acknowledge([row["id"]]) == 1 and k.outbox._notes == {}


def test_the_uploaders_first_request_finds_the_relay_energised(tmp_path, mock_factory):
    """Real uploader thread, real outbox, gpiozero mock pins, real time."""
    pin_at_upload: list[int] = []

    class Watching(Transport):
        def upload_records_detailed(self, records, timeout_s):
            pin_at_upload.append(mock_factory.pin(17).state)
            return super().upload_records_detailed(records, timeout_s)

    outbox = Outbox(tmp_path / "o.sqlite3", wall=lambda: WALL)
    transport = Watching()
    uploader = Uploader(outbox, transport, idle_s=60)  # only a wake-up makes it look before a minute
    gates = []

    def make_gate(kiosk):
        gates.append(GpioGate(GpioGateConfig(type="gpio", pin=17, pulse_s=10.0), pin_factory=mock_factory))
        return gates[0]

    uploader.start()
    try:
        wait_until(lambda: uploader.status().state == "idle", what="the uploader to go idle")
        k = Kiosk(tmp_path, outbox=outbox, gate=make_gate, executor=None)  # real verify and commit threads
        for _ in range(200):
            k.show(GREEN.payload, frames=1, dt=0.0)
            k.pipeline.wait_for_check(0.05)
            if k.outcomes:
                break
        assert k.verdicts == [("pass", "ok")]
        wait_until(lambda: transport.stored, what="the record to be delivered")
        assert pin_at_upload and pin_at_upload[0] == 1  # the relay was energised before the uploader looked
        (stored,) = transport.stored.values()
        assert stored["extra"]["latency_ms"] == pytest.approx(k.outcomes[0].latency_s * 1000, abs=0.1)
        k.pipeline.close()
    finally:
        uploader.stop()
        for gate in gates:
            gate.release()
        outbox.close()

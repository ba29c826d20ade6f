"""The handheld's vehicle checks on the real pipeline: replayed frames to the uploaded vehicle
record, the duplicate and re-scan rules through real checks, offline vehicles drained later,
the staff's buttons, the trigger, time-outs, the battery and the camera that sleeps."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
import requests

from hardware.battery import Battery
from hardware.camera.base import CameraError, FrameSource
from hardware.camera.gated import GatedSource
from hardware.camera.replay import ReplaySource
from hardware.gate import FakeGate
from sentinel.config import ASSETS, CredentialConfig, HandheldConfig, PolicyConfig
from sentinel.credentials import CredentialRules
from sentinel.decoding import make_decoder
from sentinel.demo_data import DEMO_UNKNOWN_PAYLOAD, demo_person
from sentinel.handheld import HandheldController, Phase
from sentinel.health import HealthStatus, Nat, NatResult, Person, Status
from sentinel.outbox import Outbox
from sentinel.pipeline import Pipeline
from sentinel.records import RecordMaker
from sentinel.screens import ScreenKind
from sentinel.verifier import TableVerifier
from tests.helpers import FakeClock, InlineExecutor, qr_frame
from ui.console import ConsoleDisplay

WALL = datetime.now(UTC).replace(microsecond=0)  # the outbox ages records by the real clock
GREEN, YELLOW, RED = demo_person("green"), demo_person("yellow"), demo_person("red")
#: the checkpoint's policy (config/handheld.toml): yellow refused, offline passes flagged
CHECKPOINT = PolicyConfig(allowed_colours=["green"], yellow="deny", nat_window_h=48, offline="allow_and_flag")
YELLOW_ID_NUMBER = "310101199001011234"  # 李华's ID card (valid check digit)


def answer(colour: str, name: str, id_masked: str) -> HealthStatus:
    return HealthStatus(
        status=Status(colour),
        person=Person(name_masked=name, id_masked=id_masked),
        nat=Nat(result=NatResult.NEGATIVE, sampled_at=WALL - timedelta(hours=10)),
    )


ANSWERS = {
    ("health_code", GREEN.token): answer("green", "王*明", "1101**********002X"),
    ("health_code", YELLOW.token): answer("yellow", "李*", "3101**********1234"),
    ("health_code", RED.token): answer("red", "张*", "4403**********0011"),
    ("id_number", YELLOW_ID_NUMBER): answer("green", "李*", "3101**********1234"),
}


class FakeTrigger:
    """What the controller reads of hardware.inputs.TriggerButton: a press count and `armed()`."""

    def __init__(self):
        self.presses = 0
        self.is_armed = False

    def press(self):
        self.presses += 1
        self.is_armed = True

    def armed(self) -> bool:
        return self.is_armed


class Rig:
    """A pipeline with real decoder, rules, records and outbox, the controller wired by hand (as
    build_kiosk does on a handheld), and test-controlled time."""

    def __init__(self, tmp_path, *, verifier=None, policy=CHECKPOINT, handheld=None, trigger=None, outbox=None, **kw):
        self.clock = FakeClock()
        self.display = ConsoleDisplay()
        self.outbox = outbox or Outbox(tmp_path / "outbox.sqlite3")
        self.verifier = verifier or TableVerifier(ANSWERS)
        self.events = []
        self.outcomes = []
        self.controller = HandheldController(
            outbox=self.outbox,
            device_id="demo-device",
            site_id="demo-site",
            display=self.display,
            config=handheld or HandheldConfig(enabled=True),
            language="en",
            trigger=trigger,
            battery=Battery("none"),
            clock=self.clock,
            wall=lambda: WALL + timedelta(seconds=self.clock.t - 1000.0),
            on_event=self.events.append,
            ticker=False,
        )
        self.pipeline = Pipeline(
            decoder=make_decoder(["zxing-cpp", "pyzbar"]),
            rules=CredentialRules(CredentialConfig()),
            verifier=self.verifier,
            policy=policy,
            records=RecordMaker("demo-device", "demo-site", b"k" * 32),
            outbox=self.outbox,
            gate=FakeGate(pulse_s=1.0, clock=self.clock),
            display=self.controller.display,
            language="en",
            clock=self.clock,
            wall=lambda: WALL + timedelta(seconds=self.clock.t - 1000.0),
            executor=InlineExecutor(),
            on_outcome=self.controller.chain(self.outcomes.append),
            result_s=1.0,
            **kw,
        )
        self.seq = 0

    def show(self, payload, frames=3, dt=0.1):
        for _ in range(frames):
            self.seq += 1
            self.pipeline.step(qr_frame(payload, self.seq))
            self.clock.advance(dt)
            self.controller.tick()

    def scan(self, payload):
        """One person at the window: shows `payload`, then steps away for longer than the debounce window."""
        self.show(payload)
        self.away()

    def away(self, seconds=6.0):
        """Nobody at the window for a while (longer than the debounce window)."""
        self.show(None, frames=int(seconds / 0.1))

    def adds(self):
        return [e.add.kind.value for e in self.events if e.kind == "check"]

    @property
    def vehicle_records(self):
        return [r for r in self.outbox.pending(1000) if r.get("kind") == "vehicle_session"]

    @property
    def check_records(self):
        return [r for r in self.outbox.pending(1000) if r.get("kind") != "vehicle_session"]


# --- end to end -------------------------------------------------------------------------------------


def _service_get(server, path, **params):
    from sentinel.service.seed import DEMO_DEVICE_TOKEN

    answer = requests.get(f"{server.url}{path}", params=params, headers={"Authorization": f"Bearer {DEMO_DEVICE_TOKEN}"}, timeout=10)
    answer.raise_for_status()
    return answer.json()


def test_a_vehicle_from_replayed_frames_to_the_uploaded_session_record(tmp_path):
    """The demo's scripted vehicle through the real decoder, the reference service (verify over
    HTTP), the outbox and the uploader: one vehicle record with its plate and occupants, linked to
    the five check records by id, and no token anywhere in it."""
    from sentinel.client import ServiceClient
    from sentinel.commands.demo import (
        DEMO_PLATE,
        DEMO_VEHICLE_REFRESHED,
        seed_vehicle_demo,
    )
    from sentinel.service.seed import DEMO_DEVICE_ID, DEMO_DEVICE_TOKEN, DEMO_SITE
    from sentinel.service.server import ReferenceServer
    from sentinel.uploader import Uploader

    with ReferenceServer(tmp_path / "svc.sqlite3", seed="demo") as server:
        seed_vehicle_demo(server.store, datetime.now(UTC))
        client = ServiceClient(server.url, DEMO_DEVICE_TOKEN, device_id=DEMO_DEVICE_ID, site_id=DEMO_SITE.id)
        rig = Rig(tmp_path, verifier=client)
        c = rig.controller
        source = GatedSource(
            ReplaySource(ASSETS / "vehicle_scenes", fps=10, frames_per_image=8, realtime=False), c.scanning_active,
            clock=rig.clock, sleep=lambda s: None,
        )
        source.start()
        c.press("start")
        c.press("plate")
        for ch in DEMO_PLATE:
            c.press(f"key:{ch}")
        c.press("key:ok")
        assert c.phase == Phase.OPEN and c.session.plate == DEMO_PLATE

        def staff(event):  # "your code has expired: refresh it", and a tap on her row
            if event.kind == "check" and event.check.verdict.reason == "expired_code":
                c.press(f"rescan:{event.add.occupant.seat}")

        c.subscribe(staff)
        while not source.finished:
            frame = source.read(0.0)
            rig.pipeline.step(frame, paused=source.paused)
            rig.clock.advance(0.1)
            c.tick()
        assert rig.adds() == ["new", "new", "rescan", "new", "duplicate"]
        c.finish()
        assert c.phase == Phase.SUMMARY and rig.display.shown[-1].kind == ScreenKind.VEHICLE_SUMMARY
        assert len(rig.vehicle_records) == 1 and len(rig.check_records) == 5

        result = Uploader(rig.outbox, client).drain(sleep=lambda s: None)
        assert result.complete and result.delivered == 6
        sessions = _service_get(server, "/v1/vehicle-sessions")["sessions"]
        checks = _service_get(server, "/v1/records")["records"]
        client.close()
    assert len(sessions) == 1 and len(checks) == 5  # a vehicle is never counted as a person
    v = sessions[0]
    assert (v["plate"], v["verdict"], v["reason"], v["mode"], v["closed_by"]) == ("沪A12345", "deny", "occupant_denied", "online", "finish")
    seats = {o["seat"]: o for o in v["occupants"]}
    assert sorted(seats) == [1, 2, 3]
    assert seats[1]["duplicate"] and [a["role"] for a in seats[1]["attempts"]] == ["first", "duplicate"]
    assert seats[2]["rescanned"] and [(a["role"], a["reason"]) for a in seats[2]["attempts"]] == [("first", "expired_code"), ("rescan", "ok")]
    assert (seats[2]["verdict"], seats[3]["verdict"], seats[3]["reason"]) == ("pass", "deny", "yellow_denied")
    by_id = {r["id"]: r for r in checks}
    for occupant in v["occupants"]:
        for attempt in occupant["attempts"]:
            assert by_id[attempt["record_id"]]["credential_hash"] == attempt["credential_hash"]
    assert by_id[seats[2]["record_id"]]["person"]["name_masked"] == "赵*"
    body = json.dumps(v, ensure_ascii=False)
    for token in (GREEN.token, YELLOW.token, DEMO_VEHICLE_REFRESHED.token):
        assert token not in body
    assert source.opens == 1  # the camera ran the whole vehicle, once


# --- the rules through real checks --------------------------------------------------------------------


def test_same_code_again_is_flagged_and_a_failed_person_rescanned_counts(tmp_path):
    rig = Rig(tmp_path)
    c = rig.controller
    c.press("start")
    rig.scan(GREEN.payload)  # driver
    rig.scan(RED.payload)  # passenger 1: red
    rig.scan(GREEN.payload)  # the driver's phone again, after the debounce window: a new check...
    assert rig.adds() == ["new", "new", "duplicate"]  # ...flagged on the driver, not a third person
    assert rig.display.shown[-1].vehicle.rows[0].flags == ("Shown twice",)
    rig.scan(RED.payload)  # the red code again: a re-scan of a failed person (still red)
    assert rig.adds()[-1] == "rescan" and len(c.session.occupants) == 2
    assert len(rig.check_records) == 4  # every check is its own record
    c.finish()
    v = rig.vehicle_records[0]
    assert (v["verdict"], v["reason"]) == ("deny", "occupant_denied")
    assert [len(o["attempts"]) for o in v["occupants"]] == [2, 2]


def test_an_id_card_after_a_yellow_code_is_the_same_person(tmp_path):
    """Same masked name and masked ID, another credential kind: a re-scan, the latest result counts."""
    rig = Rig(tmp_path)
    rig.controller.press("start")
    rig.scan(GREEN.payload)
    rig.scan(YELLOW.payload)
    rig.scan(YELLOW_ID_NUMBER)  # her ID card, read as an 18-digit number
    assert rig.adds() == ["new", "new", "rescan"]
    session = rig.controller.session
    assert session.occupant(2).passed and session.verdict().reason == "all_passed"


def test_a_duplicate_shows_its_own_card_and_sound_not_a_green_pass(tmp_path):
    rig = Rig(tmp_path)
    rig.controller.press("start")
    rig.scan(GREEN.payload)
    before = len(rig.display.shown)
    rig.show(GREEN.payload, frames=1)
    shown = rig.display.shown[before:]
    # the pipeline's green "please pass" is never drawn for the duplicate: the card says what it is
    assert all(s.kind == ScreenKind.VEHICLE for s in shown)
    card = shown[-1].vehicle.check
    assert (card.kind, card.title) == (ScreenKind.MANUAL_CHECK, "Shown twice")
    assert shown[-1].vehicle.cue == ScreenKind.MANUAL_CHECK


def test_unknown_codes_are_shown_but_not_counted(tmp_path):
    rig = Rig(tmp_path)
    rig.controller.press("start")
    rig.show(DEMO_UNKNOWN_PAYLOAD)
    assert rig.adds() == ["ignored"] and not rig.controller.session.occupants
    assert rig.display.shown[-1].vehicle.check.kind == ScreenKind.UNKNOWN_CODE


# --- offline ------------------------------------------------------------------------------------------


def test_an_offline_vehicle_is_recorded_and_drained_after_a_restart(tmp_path):
    """The service unreachable: the offline policy decides every check (allowed and flagged),
    the vehicle is recorded offline, survives a restart in the outbox, and is delivered later."""
    from sentinel.client import ServiceClient
    from sentinel.service.seed import DEMO_DEVICE_ID, DEMO_DEVICE_TOKEN, DEMO_SITE
    from sentinel.service.server import ReferenceServer
    from sentinel.uploader import Uploader

    down = TableVerifier({k: HealthStatus.unreachable(Status.TIMEOUT, "no network") for k in ANSWERS})
    rig = Rig(tmp_path, verifier=down)
    rig.controller.press("start")
    rig.controller.enter_plate("沪AD12345")
    for payload in (GREEN.payload, YELLOW.payload, RED.payload):
        rig.scan(payload)
    rig.controller.finish()
    assert [o.offline for o in rig.outcomes] == [True, True, True]
    rig.outbox.close()  # the handheld is switched off at the end of the shift

    outbox = Outbox(tmp_path / "outbox.sqlite3")
    assert outbox.health().depth == 4
    with ReferenceServer(tmp_path / "svc.sqlite3", seed="demo") as server:
        client = ServiceClient(server.url, DEMO_DEVICE_TOKEN, device_id=DEMO_DEVICE_ID, site_id=DEMO_SITE.id)
        result = Uploader(outbox, client).drain(sleep=lambda s: None)
        sessions = _service_get(server, "/v1/vehicle-sessions")["sessions"]
        checks = _service_get(server, "/v1/records")["records"]
        client.close()
    outbox.close()
    assert result.complete and result.delivered == 4
    assert len(checks) == 3 and all(r["mode"] == "offline" and r["reason"] == "offline_allowed" for r in checks)
    (v,) = sessions
    assert (v["plate"], v["mode"], v["verdict"], len(v["occupants"])) == ("沪AD12345", "offline", "pass", 3)


def test_a_vehicle_record_the_disk_refuses_is_held_in_memory(tmp_path):
    class Refusing:
        def __init__(self):
            self.spilled = []

        def add(self, record):
            raise OSError("disk full")

        def spill(self, record):
            self.spilled.append(record)
            return True

    outbox = Refusing()
    c = HandheldController(outbox=outbox, device_id="d", site_id="s", display=ConsoleDisplay(), language="en",
                           battery=Battery("none"), ticker=False)
    c.start()
    from tests.test_vehicle import check

    c.session.add(check("a"))
    c.finish()
    assert len(outbox.spilled) == 1 and c.phase == Phase.SUMMARY


# --- staff, trigger, time ---------------------------------------------------------------------------------


def test_buttons_plate_keypad_cancel_and_finish(tmp_path):
    rig = Rig(tmp_path, handheld=HandheldConfig(enabled=True, plate="ask", summary_s=2.0))
    c = rig.controller
    shown = rig.display.shown
    assert shown[-1].kind == ScreenKind.VEHICLE_IDLE
    c.press("start")
    assert c.phase == Phase.PLATE and shown[-1].kind == ScreenKind.PLATE  # plate = ask
    keys = {b.id: b.enabled for b in shown[-1].vehicle.keypad.keys}
    assert keys["key:沪"] and "key:A" not in keys  # the province page first
    c.press("key:沪")
    keys = {b.id: b.enabled for b in shown[-1].vehicle.keypad.keys}
    assert keys["key:A"] and not keys["key:1"] and "key:I" not in keys
    c.press("key:ok")  # not a plate yet: nothing happens
    assert c.phase == Phase.PLATE
    c.press("key:skip")
    assert c.phase == Phase.OPEN and c.session.plate is None
    c.press("cancel")  # nobody checked yet: the vehicle is dropped, no record
    assert c.phase == Phase.IDLE and c.session is None and rig.outbox.health().depth == 0
    assert [e.kind for e in rig.events] == ["started", "cancelled"]

    c.press("start")
    c.press("key:skip")
    rig.show(GREEN.payload)
    c.press("cancel")  # somebody was checked: Cancel is not offered, and does nothing
    assert c.session is not None
    buttons = [b.id for b in shown[-1].vehicle.buttons]
    assert buttons == ["plate", "finish"]
    c.press("finish")
    assert c.phase == Phase.SUMMARY and shown[-1].kind == ScreenKind.VEHICLE_SUMMARY
    assert shown[-1].title == "Vehicle may pass"
    rig.clock.advance(2.1)
    c.tick()
    assert c.phase == Phase.IDLE and shown[-1].kind == ScreenKind.VEHICLE_IDLE
    assert "Last vehicle" in shown[-1].vehicle.counts


def test_finish_waits_for_the_check_in_flight(tmp_path):
    verifier = TableVerifier(ANSWERS)
    rig = Rig(tmp_path, verifier=verifier)
    c = rig.controller
    c.press("start")
    rig.scan(GREEN.payload)
    # a check starts but its answer is not in: Finish waits for it, and it still counts
    rig.pipeline._executor = _Deferred()
    rig.show(YELLOW.payload, frames=1)
    assert c.checking
    c.press("finish")
    assert c.phase == Phase.OPEN and c.session is not None
    rig.pipeline._executor.release()
    rig.show(None, frames=1)
    assert c.phase == Phase.SUMMARY
    v = rig.vehicle_records[0]
    assert len(v["occupants"]) == 2 and v["verdict"] == "deny"


class _Deferred(InlineExecutor):
    """An executor whose answers come only when released (a slow service within the deadline)."""

    def __init__(self):
        self.jobs = []

    def submit(self, fn, /, *args, **kwargs):
        from concurrent.futures import Future

        future = Future()
        self.jobs.append((future, fn, args))
        return future

    def release(self):
        for future, fn, args in self.jobs:
            future.set_result(fn(*args))
        self.jobs = []


def test_trigger_starts_a_vehicle_and_arms_the_camera(tmp_path):
    trigger = FakeTrigger()
    rig = Rig(tmp_path, trigger=trigger)
    c = rig.controller
    assert not c.scanning_active()
    trigger.press()
    assert c.scanning_active()  # the camera turns on at the press, before the tick
    c.tick()
    assert c.phase == Phase.OPEN
    trigger.is_armed = False
    assert c.scanning_active()  # a vehicle open keeps it on
    rig.show(GREEN.payload)
    c.press("finish")
    assert not c.scanning_active()  # the verdict on screen: camera off
    trigger.press()  # the next car: the trigger ends the summary and starts it
    c.tick()
    assert c.phase == Phase.OPEN and len(rig.events) and rig.events[-1].kind == "started"


def test_without_a_vehicle_the_trigger_only_arms_one_check(tmp_path):
    trigger = FakeTrigger()
    rig = Rig(tmp_path, trigger=trigger, handheld=HandheldConfig(enabled=True, trigger_starts_vehicle=False))
    trigger.press()
    rig.controller.tick()
    assert rig.controller.phase == Phase.IDLE and rig.controller.scanning_active()
    rig.show(GREEN.payload)
    assert rig.display.shown[-1].kind == ScreenKind.PASS  # the pipeline's own screen: an ordinary check
    assert len(rig.check_records) == 1 and not rig.vehicle_records


def test_a_forgotten_vehicle_is_finished_by_itself(tmp_path):
    rig = Rig(tmp_path, handheld=HandheldConfig(enabled=True, vehicle_timeout_s=60))
    c = rig.controller
    c.press("start")
    rig.show(GREEN.payload)
    rig.clock.advance(59)
    c.tick()
    assert c.session is not None
    rig.clock.advance(2)
    c.tick()
    assert c.phase == Phase.SUMMARY
    assert rig.vehicle_records[0]["closed_by"] == "timeout"
    c.press("start")  # an empty one times out without a record
    rig.clock.advance(61)
    c.tick()
    assert c.session is None and len(rig.vehicle_records) == 1 and rig.events[-1].kind == "cancelled"


def test_a_vehicle_open_at_shutdown_is_recorded(tmp_path):
    rig = Rig(tmp_path)
    rig.controller.press("start")
    rig.show(GREEN.payload)
    rig.controller.close()
    assert rig.vehicle_records[0]["closed_by"] == "shutdown"
    empty = Rig(tmp_path / "2")
    empty.controller.press("start")
    empty.controller.close()
    assert not empty.vehicle_records


def test_ticker_thread_runs_and_stops(tmp_path):
    trigger = FakeTrigger()
    c = HandheldController(outbox=Outbox(tmp_path / "o.sqlite3"), device_id="d", site_id="s", display=ConsoleDisplay(),
                           trigger=trigger, battery=Battery("none"))
    started = threading.Event()
    c.subscribe(lambda e: started.set() if e.kind == "started" else None)
    trigger.press()
    assert started.wait(2.0)
    c.close()
    assert not c._thread.is_alive()


# --- the camera that sleeps ---------------------------------------------------------------------------------


class CountingSource(FrameSource):
    def __init__(self, fail_open: bool = False):
        self.started = 0
        self.closed = 0
        self.reads = 0
        self.fail_open = fail_open
        self.open = False

    @property
    def name(self):
        return "counting"

    def start(self):
        if self.fail_open:
            raise CameraError("no camera on /dev/video0")
        self.started += 1
        self.open = True

    def read(self, timeout):
        assert self.open
        self.reads += 1
        return qr_frame(None, self.reads)

    def close(self):
        self.closed += 1
        self.open = False


def test_gated_camera_runs_only_while_scanning_and_sleeps_after_linger():
    clock = FakeClock()
    wanted = [False]
    inner = CountingSource()
    source = GatedSource(inner, lambda: wanted[0], linger_s=3.0, clock=clock, sleep=lambda s: clock.advance(s))
    source.start()  # opened once at start: a missing camera is reported at once
    assert inner.started == 1 and source.is_open
    assert source.read(0.25) is None and source.paused and inner.reads == 0  # nothing to scan: no frames, no decoding
    clock.advance(3.0)
    source.read(0.25)
    assert not source.is_open and inner.closed == 1  # switched off after the linger
    wanted[0] = True
    assert source.read(0.25) is not None and not source.paused and inner.started == 2
    wanted[0] = False
    source.read(0.25)
    assert source.is_open  # still lingering
    wanted[0] = True
    source.read(0.25)
    assert inner.started == 2  # no reopen within the linger
    assert source.camera_on_s() > 0 and source.opens == 2
    source.close()
    assert inner.closed == 2


def test_gated_camera_that_will_not_open_is_a_fault_not_a_pause():
    clock = FakeClock()
    source = GatedSource(CountingSource(fail_open=True), lambda: True, open_at_start=False, clock=clock, sleep=lambda s: None)
    source.start()
    assert source.read(0.1) is None and not source.paused and not source.healthy
    assert "no camera" in source.last_error
    with pytest.raises(CameraError):
        GatedSource(CountingSource(fail_open=True), lambda: False).start()


def test_a_paused_camera_is_not_a_camera_fault(tmp_path):
    rig = Rig(tmp_path)
    for _ in range(100):  # 10 s without frames, on purpose
        rig.pipeline.step(None, paused=True)
        rig.clock.advance(0.1)
    assert rig.pipeline.state.value == "idle"
    for _ in range(40):  # but a camera that is wanted and silent still is
        rig.pipeline.step(None)
        rig.clock.advance(0.1)
    assert rig.pipeline.state.value == "fault"


def test_outcomes_carry_the_credential_hash(tmp_path):
    rig = Rig(tmp_path)
    rig.show(GREEN.payload)
    record = rig.check_records[0]
    assert rig.outcomes[0].credential_hash == record["credential_hash"]
    assert rig.outcomes[0].id_masked == "1101**********002X"


# --- battery -------------------------------------------------------------------------------------------------


def _supply(root, name, kind, capacity=None, status=None):
    d = root / name
    d.mkdir(parents=True)
    (d / "type").write_text(kind + "\n")
    if capacity is not None:
        (d / "capacity").write_text(f"{capacity}\n")
    if status is not None:
        (d / "status").write_text(status + "\n")
    return d


def test_battery_from_power_supply_and_nothing_where_there_is_none(tmp_path):
    root = tmp_path / "power_supply"
    assert Battery(root=root).level() is None  # no such folder (a Pi without a UPS HAT)
    _supply(root, "AC", "Mains")
    assert Battery(root=root).level() is None  # mains only: nothing to show
    _supply(root, "BAT0", "Battery", 76, "Discharging")
    b = Battery(root=root)
    assert (b.level(), b.charging()) == (76, False)
    _supply(root, "ups", "Battery", 100, "Full")
    assert Battery(str(root / "ups")).charging() is True
    assert Battery("none", root=root).level() is None
    level_file = tmp_path / "ups-level"
    level_file.write_text("42.6 %\n")
    assert Battery(str(level_file)).level() == 43
    level_file.write_text("garbage")
    assert Battery(str(level_file)).level() is None  # unreadable: not shown (logged once)
    assert Battery(str(tmp_path / "missing")).level() is None


def test_battery_is_read_at_most_every_so_often(tmp_path):
    root = tmp_path / "ps"
    bat = _supply(root, "BAT0", "Battery", 50)
    clock = FakeClock()
    b = Battery(root=root, every_s=20, clock=clock)
    assert b.level() == 50
    (bat / "capacity").write_text("49\n")
    assert b.level() == 50
    clock.advance(21)
    assert b.level() == 49


def test_controller_status_fields_and_events(tmp_path):
    root = tmp_path / "ps"
    _supply(root, "BAT0", "Battery", 64, "Charging")
    c = HandheldController(outbox=Outbox(tmp_path / "o.sqlite3"), device_id="d", site_id="s", display=ConsoleDisplay(),
                           battery=Battery(root=root), ticker=False)
    assert c.status_fields() == {"battery": 64, "charging": True}


# --- the kiosk and the demo ---------------------------------------------------------------------------------


def test_build_kiosk_wires_a_handheld(tmp_path):
    from sentinel.config import (
        DeviceConfig,
        HttpVerifierConfig,
        NoGateConfig,
        ReplayCameraConfig,
        SentinelConfig,
    )
    from sentinel.kiosk import build_kiosk

    token = tmp_path / "token"
    token.write_text("sdt_test")
    token.chmod(0o600)
    config = SentinelConfig(
        device=DeviceConfig(id="demo-device", site_id="demo-site", state_dir=tmp_path / "state"),
        camera=ReplayCameraConfig(path=ASSETS / "vehicle_scenes"),
        verifier=HttpVerifierConfig(url="http://127.0.0.1:9", token_file=token),
        gate=NoGateConfig(type="none"),
        handheld=HandheldConfig(enabled=True, battery="none"),
    )
    kiosk = build_kiosk(config)
    try:
        assert kiosk.handheld is not None and isinstance(kiosk.source, GatedSource)
        assert kiosk.status_fields()["battery"] is None
        assert kiosk.display.shown[-1].kind == ScreenKind.VEHICLE_IDLE
    finally:
        kiosk.close()


@pytest.mark.slow
def test_demo_profile_handheld_plays_the_scripted_vehicle():
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "sentinel", "demo", "--profile", "handheld", "--once", "--json", "--fps", "20"],
        capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    checks = [x for x in lines if x["event"] == "check"]
    assert [(c["seat"], c["add"], c["status"], c["verdict"]) for c in checks] == [
        (1, "new", "green", "pass"),
        (2, "new", "expired", "deny"),
        (2, "rescan", "green", "pass"),
        (3, "new", "yellow", "deny"),
        (1, "duplicate", "green", "pass"),
    ]
    (vehicle,) = [x for x in lines if x["event"] == "vehicle"]
    assert (vehicle["plate"], vehicle["verdict"], vehicle["occupants"], vehicle["rescans"], vehicle["duplicates"]) == (
        "沪A12345", "deny", 3, 1, 1)
    assert vehicle["durable"] and vehicle["device_ms"] < 5000


def test_vehicle_records_survive_salvage_and_export(tmp_path):
    """`sentinel outbox export` and the corrupt-file salvage read the outbox through
    `iter_file_rows`, which keeps only bodies that validate: a vehicle record must be one."""
    from sentinel.outbox import iter_file_rows

    rig = Rig(tmp_path)
    rig.controller.press("start")
    rig.show(GREEN.payload)
    rig.controller.finish()
    rig.outbox.close()
    kinds = [json.loads(body).get("kind", "check") for _id, _at, body in iter_file_rows(tmp_path / "outbox.sqlite3")]
    assert sorted(kinds) == ["check", "vehicle_session"]


def test_finish_is_off_while_a_re_scan_is_pending(tmp_path):
    """Staff tapped a failed passenger to re-scan them: 'Finish' would judge the car on the old
    check, so it is greyed out (and a tap on it does nothing) until the re-scan comes or the row
    is tapped again to cancel it."""
    rig = Rig(tmp_path)
    c = rig.controller
    c.press("start")
    rig.scan(GREEN.payload)  # driver
    rig.scan(RED.payload)  # passenger 1: red
    c.press("rescan:2")
    finish = next(b for b in rig.display.shown[-1].vehicle.buttons if b.id == "finish")
    assert not finish.enabled
    c.press("finish")
    assert c.session is not None and not rig.vehicle_records  # still open, nothing recorded
    c.press("rescan:2")  # tapped again: the re-scan is cancelled
    assert next(b for b in rig.display.shown[-1].vehicle.buttons if b.id == "finish").enabled
    c.press("finish")
    assert rig.vehicle_records and rig.vehicle_records[0]["verdict"] == "deny"


def test_the_list_of_people_pages_back_to_the_oldest_and_returns(tmp_path):
    """A minibus: the rows that do not fit are not lost; '↑ n more' turns the list back, and a
    new check brings it to the newest again."""
    from sentinel.handheld import session_screen

    rig = Rig(tmp_path)
    c = rig.controller
    c.press("start")
    rig.scan(GREEN.payload)
    assert c.screen().vehicle.pages_back == 0
    c.press("rows:older")
    assert rig.display.shown[-1].vehicle.pages_back == 1
    c.press("rows:newest")
    assert rig.display.shown[-1].vehicle.pages_back == 0
    c.press("rows:older")
    rig.scan(RED.payload)  # a new person: back to the newest
    assert c.screen().vehicle.pages_back == 0
    assert session_screen(c.session, "en", None, pages_back=2).vehicle.newest == "↓ back to the newest"

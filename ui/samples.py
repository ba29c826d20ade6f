"""Every screen the kiosk can show, with believable data: for `sentinel screens`, the README's
pictures and the tests. Pure (no pygame): the screens come from the same constructors the
pipeline uses, so a sample cannot show something the kiosk would not.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from sentinel.health import HealthStatus, Nat, NatResult, Person, Status, Vaccination
from sentinel.locale import PAIR, message, pair
from sentinel.policy import REASON_TEXT, Verdict, VerdictKind
from sentinel.screens import Screen, ScreenKind, StatusBar
from ui.pin import PinGate, hash_pin
from ui.technician import MenuView, TechnicianActions, TechnicianMenu

if TYPE_CHECKING:
    from sentinel.vehicle import Check

SHANGHAI = timezone(timedelta(hours=8))
#: a fixed moment, so that the pictures do not change from run to run
SAMPLE_NOW = datetime(2022, 4, 12, 14, 3, 22, tzinfo=SHANGHAI)
#: the samples' site and alarm in zh-CN and en (the tests look for them on the pictures)
SITE_NAME = dict(zip(PAIR, pair("sample.site_name")))
ALARM = dict(zip(PAIR, pair("sample.alarm")))


@dataclass(frozen=True)
class Sample:
    name: str
    screen: Screen
    status: StatusBar
    menu: MenuView | None = None


def _status(colour: Status, name: str, nat_hours: float | None, result: NatResult = NatResult.NEGATIVE) -> HealthStatus:
    return HealthStatus(
        status=colour,
        person=Person(name_masked=name, id_masked="3101**********1234"),
        nat=Nat(result=result, sampled_at=SAMPLE_NOW - timedelta(hours=nat_hours)) if nat_hours is not None else None,
        vaccination=Vaccination(doses=3),
        checked_at=SAMPLE_NOW,
    )


def _result(verdict: Verdict, status: HealthStatus, language: str, offline: bool = False, now: datetime = SAMPLE_NOW) -> Screen:
    return Screen.result(verdict, status, language, offline, now=now, tz=SHANGHAI)


def _done(value) -> Future:
    future: Future = Future()
    future.set_result(value)
    return future


def _network_rows(language: str) -> list[tuple[str, str]]:
    """The network panel as the running kiosk words it (sentinel.kiosk_technician), for a kiosk
    whose last heartbeat came back in 42 ms 12 s ago and whose last upload failed three hours ago."""
    from types import SimpleNamespace

    from sentinel.heartbeat import ServiceContact
    from sentinel.kiosk_technician import technician_actions

    now = datetime.now(timezone.utc)
    contact = ServiceContact(wall=lambda: now)
    contact.ok(0.042, at=now - timedelta(seconds=12))
    uploads = SimpleNamespace(
        state="idle", queue_depth=0, consecutive_failures=0, last_success_at=now - timedelta(seconds=40),
        last_error="timeout: no answer in 20 s", last_error_at=now - timedelta(hours=3), last_round_trip_s=0.08,
    )
    kiosk = SimpleNamespace(
        config=SimpleNamespace(device=SimpleNamespace(language=language), verifier=SimpleNamespace(url="https://hs.example.gov.cn/api")),
        contact=contact, uploader=SimpleNamespace(status=lambda: uploads), pipeline=None, source=None,
    )
    return technician_actions(kiosk).network_status()


def technician_views(language: str) -> dict[str, MenuView]:
    """The PIN pad after one wrong PIN, the menu showing the device status, and the network panel."""
    actions = TechnicianActions(
        device_status=lambda: [
            (message("technician.row.device", language), "sentinel-0042"),
            (message("technician.row.site", language), f"xh-mall-east · {message('sample.site_name', language)}"),
            (message("technician.row.version", language), "0.1.0"),
            (message("technician.row.camera", language), "picamera2 · 30 fps"),
            (message("technician.row.local_time", language), "2022-04-12 14:03:22 (UTC+08:00)"),
        ],
        network_status=lambda: _network_rows(language),
        gate_test=lambda: [],
        outbox_status=lambda: [],
        reload_config=lambda: [],
    )
    gate = PinGate(hash_pin("246800", iterations=1000, salt=b"sample-salt-0000"))
    menu = TechnicianMenu(gate, actions, lambda fn, *a: _done(fn(*a)), language=language, sound_test=lambda: [])
    menu.open()
    for key in ("digit:1", "digit:2", "digit:3", "digit:4", "ok"):
        menu.press(key)
    menu.poll()
    menu.press("digit:5")
    menu.press("digit:6")
    pin = menu.view()
    menu.press("back")
    menu.press("back")
    for key in ("digit:2", "digit:4", "digit:6", "digit:8", "digit:0", "digit:0", "ok"):  # the right PIN, 246800
        menu.press(key)
    menu.poll()
    menu.press("device")
    menu.poll()
    device = menu.view()
    menu.press("network")
    menu.poll()
    return {"technician_pin": pin, "technician_menu": device, "technician_network": menu.view()}


def samples(language: str, technician: bool = True) -> list[Sample]:
    site, alarm = message("sample.site_name", language), message("sample.alarm", language)
    online = StatusBar(site_name=site, online=True, outbox_depth=0, time=SAMPLE_NOW)
    offline = StatusBar(site_name=site, online=False, outbox_depth=37, time=SAMPLE_NOW)
    fault_bar = StatusBar(site_name=site, online=True, outbox_depth=3, alarm=alarm, time=SAMPLE_NOW)
    green = _status(Status.GREEN, "王*明", 20)
    nat_48 = (("h", 48),)
    out = [
        Sample("idle", Screen.prompt(ScreenKind.IDLE, language), online),
        Sample("idle_offline", Screen.prompt(ScreenKind.IDLE, language), offline),
        # people coming through: the display adds the queue's rule for a minute after a verdict
        Sample("idle_queue", replace(Screen.prompt(ScreenKind.IDLE, language), queue=message("screen.queue_hint", language)), online),
        Sample("checking", Screen.prompt(ScreenKind.CHECKING, language), online),
        Sample("pass", _result(Verdict(VerdictKind.PASS, "ok"), green, language), online),
        Sample(
            "pass_offline",
            _result(Verdict(VerdictKind.PASS, "offline_allowed"), HealthStatus.unreachable(Status.TIMEOUT, "deadline"), language, True),
            offline,
        ),
        Sample("deny_nat", _result(Verdict(VerdictKind.DENY, "nat_too_old", nat_48), _status(Status.GREEN, "陈*", 80), language), online),
        Sample("deny_red", _result(Verdict(VerdictKind.DENY, "red_code"), _status(Status.RED, "张*", 30), language), online),
        Sample("manual", _result(Verdict(VerdictKind.MANUAL_CHECK, "yellow_code"), _status(Status.YELLOW, "李*", 50), language), online),
        Sample("unknown", Screen.unknown_code(Verdict(VerdictKind.DENY, "unrecognised"), language), online),
        Sample("fault_camera", Screen.fault("camera", language), fault_bar),
        Sample("fault_network", Screen.fault("network", language), offline),
        Sample("fault_gate", Screen.fault("gate", language), online),
        Sample("fault_storage", Screen.fault("storage", language), online),
        Sample("one_at_a_time", Screen.prompt(ScreenKind.ONE_AT_A_TIME, language), online),
        # a code in view the decoder located but could not read: the request, over the camera view
        Sample("hold_closer", Screen.prompt(ScreenKind.HOLD_CLOSER, language), online),
        Sample("verify_failed", _result(Verdict(VerdictKind.MANUAL_CHECK, "verify_failed"), HealthStatus.unreachable(Status.VERIFY_FAILED, "tls", "tls"), language), online),
    ]
    if technician:
        idle = Screen.prompt(ScreenKind.IDLE, language)
        for name, view in technician_views(language).items():
            out.append(Sample(name, idle, online, view))
    return out


def stress_samples(language: str) -> list[Sample]:
    """Worst cases for the layout: every reason text, the longest name the service may send,
    a long site name and an alarm, a big outbox, an old NAT."""
    long_name = "欧阳*" + "娜" * 61 if language == "zh-CN" else "Maximilian-Alexander *" + "x" * 42
    long_site = "上海市徐汇区龙腾大道滨江商业广场东门北侧第三号入口（地下车库方向）" if language == "zh-CN" else (
        "Riverside Commercial Plaza, East Gate, North Side, Entrance No. 3 (towards the car park)"
    )
    bar = StatusBar(site_name=long_site, online=False, outbox_depth=123456, alarm=message("sample.alarm", language) * 3, time=SAMPLE_NOW)
    out = []
    for reason in REASON_TEXT:
        kind = VerdictKind.PASS if reason in ("ok", "offline_allowed") else VerdictKind.DENY
        params = (("h", 72), ("n", 3))
        screen = _result(Verdict(kind, reason, params), _status(Status.GREEN, long_name, 170), language, reason.startswith("offline"))
        out.append(Sample(f"reason_{reason}", screen, bar))
    out.append(Sample("long_unknown", Screen.unknown_code(Verdict(VerdictKind.DENY, "unrecognised"), language), bar))
    for fault in ("camera", "network", "gate", "storage", "something-else"):
        out.append(Sample(f"long_fault_{fault}", Screen.fault(fault, language), bar))
    out.append(Sample("long_idle", Screen.prompt(ScreenKind.IDLE, language), bar))
    out.append(Sample("long_checking", Screen.prompt(ScreenKind.CHECKING, language), bar))
    out.append(Sample("long_hold_closer", Screen.prompt(ScreenKind.HOLD_CLOSER, language), bar))
    return out


# --- the handheld's vehicle screens ------------------------------------------------------------------------

def _vehicle_check(seat_hash: str, status: HealthStatus, verdict: Verdict, offline: bool = False, record: int = 1) -> "Check":
    from sentinel.vehicle import Check

    person = status.person
    return Check(
        record_id=f"0190f0a0-0000-7000-8000-{record:012d}",
        credential_kind="health_code",
        credential_hash=seat_hash * 64,
        status=status.status.value,
        verdict=verdict,
        offline=offline,
        name_masked=person.name_masked if person else "",
        id_masked=person.id_masked if person else "",
        at=SAMPLE_NOW,
    )


def _vehicle(plate: str | None, checks: list, rescan_seat: int | None = None):
    from sentinel.vehicle import VehicleSession

    session = VehicleSession(SAMPLE_NOW - timedelta(seconds=14), session_id="0190f0a0-0000-7000-8000-000000000000")
    session.set_plate(plate)
    for check in checks:
        if isinstance(check, int):  # staff tapped this seat's row: its next check is a re-scan
            session.arm_rescan(check)
        else:
            session.add(check)
    if rescan_seat is not None:
        session.arm_rescan(rescan_seat)
    return session


def _people(language: str) -> dict:
    expired = HealthStatus(status=Status.EXPIRED, checked_at=SAMPLE_NOW)
    return {
        "driver": _vehicle_check("a", _status(Status.GREEN, "王*明", 20), Verdict(VerdictKind.PASS, "ok"), record=1),
        "p1_expired": _vehicle_check("b", expired, Verdict(VerdictKind.DENY, "expired_code"), record=2),
        "p1_fresh": _vehicle_check("c", _status(Status.GREEN, "赵*", 12), Verdict(VerdictKind.PASS, "ok"), record=3),
        "p2_yellow": _vehicle_check("d", _status(Status.YELLOW, "李*", 30), Verdict(VerdictKind.DENY, "yellow_denied"), record=4),
        "driver_again": _vehicle_check("a", _status(Status.GREEN, "王*明", 20), Verdict(VerdictKind.PASS, "ok"), record=5),
        "p2_offline": _vehicle_check("e", HealthStatus.unreachable(Status.TIMEOUT, "deadline"), Verdict(VerdictKind.PASS, "offline_allowed"),
                                     offline=True, record=6),
        "p3_green": _vehicle_check("f", _status(Status.GREEN, "陈*", 8), Verdict(VerdictKind.PASS, "ok"), record=7),
    }


def vehicle_samples(language: str) -> list[Sample]:
    """The handheld's screens (`sentinel screens --handheld`): Start, an open vehicle at each
    stage, the plate keypad, and the vehicle's verdict in its three colours."""
    from dataclasses import replace

    from sentinel.handheld import (
        idle_screen,
        plate_screen,
        session_screen,
        summary_screen,
    )
    from sentinel.vehicle import PlateEntry, seat_label

    checkpoint = message("sample.checkpoint", language)
    bar = StatusBar(site_name=checkpoint, online=True, outbox_depth=2, battery=76, time=SAMPLE_NOW)
    offline_bar = StatusBar(site_name=checkpoint, online=False, outbox_depth=41, battery=14, time=SAMPLE_NOW)
    p = _people(language)

    def card(check, hint: str) -> Screen:
        status = _status(Status(check.status), check.name_masked, 20) if check.name_masked else HealthStatus.unreachable(
            Status(check.status), "x")
        return replace(_result(check.verdict, status, language, check.offline), hint=hint)

    started = _vehicle(None, [])
    prompt = Screen(ScreenKind.IDLE, message("screen.prompt.idle", language), language=language)
    two = _vehicle("沪A12345", [p["driver"], p["p1_expired"]])
    three = _vehicle("沪A12345", [p["driver"], p["p1_expired"], 2, p["p1_fresh"], p["p2_yellow"]])
    with_dup = _vehicle("沪A12345", [p["driver"], p["p1_expired"], 2, p["p1_fresh"], p["p2_yellow"], p["driver_again"]])
    armed = _vehicle("沪A12345", [p["driver"], p["p1_expired"]], rescan_seat=2)
    armed_card = Screen(ScreenKind.IDLE, message("handheld.rescan_armed", language, seat=seat_label(2, language)),
                        hint=message("handheld.rescan_armed_hint", language), language=language)
    dup_card = Screen(ScreenKind.MANUAL_CHECK, message("handheld.duplicate_message", language, seat=seat_label(1, language)),
                      person="王*明", title=message("handheld.duplicate_title", language), language=language)

    passed = _vehicle("沪AD12345", [p["driver"], p["p3_green"]])
    passed.finish(SAMPLE_NOW)
    denied = _vehicle("沪A12345", [p["driver"], p["p1_expired"], 2, p["p1_fresh"], p["p2_yellow"], p["driver_again"]])
    denied.finish(SAMPLE_NOW)
    manual = _vehicle(None, [p["driver"], p["driver_again"]])
    manual.finish(SAMPLE_NOW)
    offline = _vehicle("京A1234警", [p["driver"], p["p2_offline"]])
    offline.finish(SAMPLE_NOW)

    entry_partial = PlateEntry()
    entry_partial.type("沪A12")
    entry_valid = PlateEntry()
    entry_valid.type("沪A12345")
    checking = Screen.prompt(ScreenKind.CHECKING, language)
    def seat(n: int) -> str:
        return seat_label(n, language)

    return [
        Sample("vehicle_idle", idle_screen(language, trigger=True), bar),
        Sample("vehicle_idle_last", idle_screen(language, passed, passed.verdict(), trigger=True), bar),
        Sample("vehicle_started", session_screen(started, language, prompt), bar),
        Sample("vehicle_checking", session_screen(two, language, checking), bar),
        Sample("vehicle_result", session_screen(three, language, card(p["p2_yellow"], seat(3))), bar),
        Sample("vehicle_rescan_armed", session_screen(armed, language, armed_card), bar),
        Sample("vehicle_rescanned", session_screen(three, language, card(p["p1_fresh"], message("handheld.seat_rescan", language, seat=seat(2)))), bar),
        Sample("vehicle_duplicate", session_screen(with_dup, language, dup_card), bar),
        Sample("vehicle_plate_empty", plate_screen(PlateEntry(), language), bar),
        Sample("vehicle_plate_partial", plate_screen(entry_partial, language), bar),
        Sample("vehicle_plate_valid", plate_screen(entry_valid, language, has_plate=True), bar),
        Sample("vehicle_summary_pass", summary_screen(passed, passed.verdict(), language, tz=SHANGHAI), bar),
        Sample("vehicle_summary_deny", summary_screen(denied, denied.verdict(), language, tz=SHANGHAI), bar),
        Sample("vehicle_summary_manual", summary_screen(manual, manual.verdict(), language, tz=SHANGHAI), bar),
        Sample("vehicle_summary_offline", summary_screen(offline, offline.verdict(), language, tz=SHANGHAI), offline_bar),
    ]


def vehicle_stress_samples(language: str) -> list[Sample]:
    """A full minibus (nine people, every flag), long names, a long site name and a low battery."""
    from sentinel.handheld import session_screen, summary_screen

    long_name = "欧阳*" + "娜" * 20 if language == "zh-CN" else "Maximilian-Alexander *" + "x" * 20
    p = _people(language)
    checks = [p["driver"], p["p1_expired"], 2, p["p1_fresh"], p["p2_yellow"], p["driver_again"], p["p2_offline"]]
    for i in range(6):
        status = _status(Status.GREEN, long_name if i == 0 else f"{'孙钱周吴郑冯'[i]}*", 10)
        checks.append(_vehicle_check("0123456789"[i], status, Verdict(VerdictKind.DENY, "nat_too_old", (("h", 48),)), record=10 + i))
    bus = _vehicle("粤BFA1234", checks)
    bar = StatusBar(site_name=message("sample.checkpoint", language) * 3, online=False, outbox_depth=123456, battery=5, charging=False,
                    alarm=message("sample.alarm", language), time=SAMPLE_NOW)
    card = _result(Verdict(VerdictKind.DENY, "not_found"), HealthStatus(status=Status.NOT_FOUND), language)
    finished = _vehicle("粤BFA1234", checks)
    finished.finish(SAMPLE_NOW)
    return [
        Sample("vehicle_long_open", session_screen(bus, language, card), bar),
        Sample("vehicle_long_summary", summary_screen(finished, finished.verdict(), language, tz=SHANGHAI), bar),
    ]

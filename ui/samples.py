"""Every screen the kiosk can show, with believable data: for `sentinel screens`, the README's
pictures and the tests. Pure (no pygame): the screens come from the same constructors the
pipeline uses, so a sample cannot show something the kiosk would not.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sentinel.health import HealthStatus, Nat, NatResult, Person, Status, Vaccination
from sentinel.policy import REASON_TEXT, Verdict, VerdictKind
from sentinel.screens import Screen, ScreenKind, StatusBar
from ui.pin import PinGate, hash_pin
from ui.technician import MenuView, TechnicianActions, TechnicianMenu

SHANGHAI = timezone(timedelta(hours=8))
#: a fixed moment, so that the pictures do not change from run to run
SAMPLE_NOW = datetime(2022, 4, 12, 14, 3, 22, tzinfo=SHANGHAI)
SITE_NAME = {"zh-CN": "徐汇滨江商场 东门", "en": "Riverside Mall, East Gate"}
ALARM = {"zh-CN": "摄像头无画面", "en": "Camera fault"}


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


def technician_views(language: str) -> dict[str, MenuView]:
    """The PIN pad after one wrong PIN, and the menu showing the device status."""
    actions = TechnicianActions(
        device_status=lambda: [
            ("设备" if language == "zh-CN" else "Device", "sentinel-0042"),
            ("站点" if language == "zh-CN" else "Site", f"xh-mall-east · {SITE_NAME[language]}"),
            ("版本" if language == "zh-CN" else "Version", "0.1.0"),
            ("摄像头" if language == "zh-CN" else "Camera", "picamera2 · 30 fps"),
        ],
        network_status=lambda: [],
        gate_test=lambda: [],
        outbox_status=lambda: [],
        reload_config=lambda: [],
    )
    gate = PinGate(hash_pin("2468", iterations=1000, salt=b"sample-salt-0000"))
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
    for key in ("digit:2", "digit:4", "digit:6", "digit:8", "ok"):
        menu.press(key)
    menu.poll()
    menu.press("device")
    menu.poll()
    return {"technician_pin": pin, "technician_menu": menu.view()}


def samples(language: str, technician: bool = True) -> list[Sample]:
    online = StatusBar(site_name=SITE_NAME[language], online=True, outbox_depth=0, time=SAMPLE_NOW)
    offline = StatusBar(site_name=SITE_NAME[language], online=False, outbox_depth=37, time=SAMPLE_NOW)
    fault_bar = StatusBar(site_name=SITE_NAME[language], online=True, outbox_depth=3, alarm=ALARM[language], time=SAMPLE_NOW)
    green = _status(Status.GREEN, "王*明", 20)
    nat_48 = (("h", 48),)
    out = [
        Sample("idle", Screen.prompt(ScreenKind.IDLE, language), online),
        Sample("idle_offline", Screen.prompt(ScreenKind.IDLE, language), offline),
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
    bar = StatusBar(site_name=long_site, online=False, outbox_depth=123456, alarm=ALARM[language] * 3, time=SAMPLE_NOW)
    out = []
    for reason in REASON_TEXT:
        kind = VerdictKind.PASS if reason in ("ok", "offline_allowed") else VerdictKind.DENY
        params = (("h", 72), ("n", 3))
        screen = _result(Verdict(kind, reason, params), _status(Status.GREEN, long_name, 170), language, reason.startswith("offline"))
        out.append(Sample(f"reason_{reason}", screen, bar))
    out.append(Sample("long_unknown", Screen.unknown_code(Verdict(VerdictKind.DENY, "unrecognised"), language), bar))
    for fault in ("camera", "network", "gate", "something-else"):
        out.append(Sample(f"long_fault_{fault}", Screen.fault(fault, language), bar))
    out.append(Sample("long_idle", Screen.prompt(ScreenKind.IDLE, language), bar))
    out.append(Sample("long_checking", Screen.prompt(ScreenKind.CHECKING, language), bar))
    return out

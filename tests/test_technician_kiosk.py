"""The technician menu on a running kiosk: the checks pause (relay closed) while the PIN pad or the
menu is up and resume when it goes, a gesture never hides a verdict, every PIN, lock-out and gate
test is an audit event in the outbox, and "Reload config" applies a valid file live or says why it
cannot (real pygame on the dummy SDL driver, a kiosk from build_kiosk with a replay camera, the
relay on gpiozero's MockFactory and the reference service)."""

# ruff: noqa: F811 - the clock and display fixtures come from tests/test_ui_display.py
from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

pygame = pytest.importorskip("pygame", reason="pygame is a dev dependency (apt python3-pygame on the Pi)")

from sentinel.config import ASSETS, PolicyConfig, load_config  # noqa: E402
from sentinel.health import HealthStatus, Person, Status  # noqa: E402
from sentinel.kiosk import build_kiosk  # noqa: E402
from sentinel.policy import Verdict, VerdictKind  # noqa: E402
from sentinel.screens import Screen  # noqa: E402
from sentinel.service.seed import DEMO_DEVICE_ID, DEMO_DEVICE_TOKEN, DEMO_SITE  # noqa: E402
from sentinel.service.server import ReferenceServer  # noqa: E402
from tests.helpers import FakeClock, RunningKiosk, wait_until  # noqa: E402
from tests.test_ui_display import PIN, PIN_HASH, clock, display, enter_pin, finger, tap  # noqa: E402, F401 - clock, display: fixtures
from ui.pygame_display import PygameDisplay  # noqa: E402
from ui.technician import MenuState, TechnicianActions  # noqa: E402

RELAY_PIN = 17


# --- the display's side: the hook, the hold, the audit -------------------------------------------------


def long_press(d: PygameDisplay, clock: FakeClock) -> None:
    finger(d, "down", 5, 5)
    wait_until(lambda: d.gesture.pressing, what="the corner press")
    clock.advance(3.1)
    wait_until(lambda: d._menu_requested or d.menu.is_open, what="the gesture")
    finger(d, "up", 5, 5)


def green() -> HealthStatus:
    return HealthStatus(status=Status.GREEN, person=Person(name_masked="王*明"))


def test_the_menu_hook_hears_the_pad_asked_for_and_everything_closed(display, clock):
    heard: list[bool] = []
    d = display(actions=TechnicianActions(on_menu=heard.append))
    long_press(d, clock)
    wait_until(lambda: heard == [True], what="on_menu(True) when the pad is asked for")
    enter_pin(d, PIN)
    assert d.menu.state == MenuState.MENU
    tap(d, "close")
    wait_until(lambda: heard == [True, False], what="on_menu(False) when the menu closes")
    # connected later, through connect(on_menu=...), a second hook replaces the first
    later: list[bool] = []
    d.connect(on_menu=later.append)
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_F2, unicode="", mod=0, scancode=0))
    wait_until(lambda: later == [True] and d.menu.is_open, what="F2")
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_ESCAPE, unicode="\x1b", mod=0, scancode=0))
    wait_until(lambda: later == [True, False], what="Esc")
    assert heard == [True, False]


def test_a_verdict_on_screen_is_not_hidden_by_the_gesture(display, clock):
    """The pad is asked for (the kiosk pauses at once) while a verdict is up: the verdict stays its
    result time, then the pad appears."""
    heard: list[bool] = []
    d = display(actions=TechnicianActions(on_menu=heard.append))
    finger(d, "down", 5, 5)
    wait_until(lambda: d.gesture.pressing, what="the corner press")
    clock.advance(2.0)
    d.show(Screen.result(Verdict(VerdictKind.PASS, "ok"), green(), "zh-CN", False))  # a check ends meanwhile
    clock.advance(1.1)  # the gesture is complete; the verdict has 1.9 s to go
    wait_until(lambda: heard == [True], what="the pause, at once")
    finger(d, "up", 5, 5)
    time.sleep(0.3)  # many render passes
    assert not d.menu.is_open
    assert any(t.text == "请通行" for t in d._renderer.drawn)  # the verdict is what is drawn
    clock.advance(1.0)
    time.sleep(0.2)
    assert not d.menu.is_open
    clock.advance(1.0)  # its result time is over
    wait_until(lambda: d.menu.is_open, what="the PIN pad after the verdict")
    wait_until(lambda: "digit:1" in d._renderer.hits, what="the pad drawn")


def test_a_pad_nobody_uses_goes_away_in_under_a_minute_and_the_kiosk_resumes(display, clock):
    heard: list[bool] = []
    d = display(actions=TechnicianActions(on_menu=heard.append))
    long_press(d, clock)
    wait_until(lambda: d.menu.state == MenuState.PIN, what="the pad")
    clock.advance(40)
    time.sleep(0.2)
    assert d.menu.is_open
    clock.advance(10)  # 50 s untouched (the menu itself would wait 2 minutes)
    wait_until(lambda: not d.menu.is_open, what="the pad to close by itself")
    wait_until(lambda: heard == [True, False], what="the kiosk told to resume")


def test_pins_and_the_lockout_are_audited_without_the_pin(display, clock):
    audited: list[tuple[str, dict]] = []
    d = display(actions=TechnicianActions(audit=lambda event, detail: audited.append((event, detail))))
    long_press(d, clock)
    wait_until(lambda: d.menu.state == MenuState.PIN)
    for wrong in ("1111", "2222", "3333"):
        enter_pin(d, wrong)
    enter_pin(d, PIN)  # right, but locked
    wait_until(lambda: len(audited) == 5, what="five audit events")
    clock.advance(31)
    enter_pin(d, PIN)
    wait_until(lambda: len(audited) == 6, what="the menu opened")
    assert sorted(audited[:2], key=lambda e: -e[1]["tries_left"]) == [
        ("technician_pin_failed", {"reason": "wrong", "tries_left": 2}),
        ("technician_pin_failed", {"reason": "wrong", "tries_left": 1}),
    ]
    assert sorted(e for e, _ in audited[2:4]) == ["technician_locked_out", "technician_pin_failed"]
    assert ("technician_locked_out", {"locked_for_s": 30}) in audited
    assert audited[4][0] == "technician_pin_failed" and audited[4][1]["reason"] == "locked"
    assert audited[5] == ("technician_menu_opened", {})
    flat = repr(audited)
    assert not any(p in flat for p in ("1111", "2222", "3333", PIN))


# --- a running kiosk --------------------------------------------------------------------------------


@pytest.fixture
def relay(mock_pins):
    """The relay pin on the shared mock pin factory (tests/conftest.py)."""
    return mock_pins.pin(RELAY_PIN)


@pytest.fixture
def srv(tmp_path):
    with ReferenceServer(tmp_path / "svc.sqlite3", seed="demo") as server:
        yield server


def write_config(tmp_path: Path, url: str, *, policy: str = "", device: str = "", display: str = "", gate_pin: int = RELAY_PIN,
                 result_s: float = 0.5) -> Path:
    token = tmp_path / "device-token"
    if not token.exists():
        fd = os.open(token, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(DEMO_DEVICE_TOKEN)
    path = tmp_path / "sentinel.toml"
    path.write_text(
        f'[device]\nid = "{DEMO_DEVICE_ID}"\nsite_id = "{DEMO_SITE.id}"\nsite_name = "东门"\nstate_dir = "{tmp_path / "state"}"\n{device}'
        f'[camera]\ntype = "replay"\npath = "{ASSETS / "scenes" / "02_green.png"}"\nfps = 10\nloop = true\n'
        f'[credentials]\ndebounce_s = 1.0\n'
        f'[verifier]\ntype = "http"\nurl = "{url}"\ntoken_file = "{token}"\n'
        f'[policy]\n{policy}'
        f'[gate]\ntype = "gpio"\npin = {gate_pin}\npin_factory = "mock"\npulse_s = 0.2\n'
        f'[display]\ntype = "pygame"\nresult_s = {result_s}\ntechnician_pin_hash = "{PIN_HASH}"\n{display}'
    )
    return path



def key(k: int, unicode: str = "") -> None:
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=k, unicode=unicode, mod=0, scancode=0))


def audit_events(kiosk, srv) -> list[dict]:
    """The kiosk's audit events, wherever they are now: still in the outbox, or at the service."""
    import requests

    waiting = [r for r in kiosk.outbox.pending(1000) if r.get("kind") == "event"]
    r = requests.get(f"{srv.url}/admin/devices/{DEMO_DEVICE_ID}/events", headers={"Authorization": f"Bearer {srv.admin_token}"}, timeout=10)
    delivered = r.json()["events"] if r.status_code == 200 else []
    by_id = {e["id"]: e for e in [*delivered, *waiting]}
    return sorted(by_id.values(), key=lambda e: e["id"])


def went_high(pin) -> bool:
    return any(int(s.state) == 1 for s in pin.states)


def test_checks_pause_behind_the_menu_and_the_relay_stays_closed_with_a_green_code_in_view(tmp_path, relay, srv):
    kiosk = build_kiosk(load_config(write_config(tmp_path, srv.url)))
    d = kiosk.display
    running = RunningKiosk(kiosk)
    try:
        # the green code in front of the camera passes again and again (debounce 1 s)
        wait_until(lambda: went_high(relay), timeout=30, what="a first pass: the relay pulsed")
        key(pygame.K_F2)
        wait_until(lambda: kiosk.pipeline.paused, what="checks paused when the pad is asked for")
        wait_until(lambda: d.menu.state == MenuState.PIN, what="the PIN pad")
        wait_until(lambda: relay.state == 0, what="the relay closed")
        relay.clear_states()
        time.sleep(3.0)  # three debounce windows with the green code in view
        assert not went_high(relay) and relay.state == 0

        enter_pin(d, PIN)
        assert d.menu.state == MenuState.MENU and kiosk.pipeline.paused
        time.sleep(1.5)
        assert not went_high(relay)

        tap(d, "gate")  # the one pulse the menu makes on purpose
        wait_until(lambda: went_high(relay), what="the manual gate test")
        wait_until(lambda: any(v == "pulsed once" or "开启" in v for _, v in d.menu.view().info), what="its answer")
        wait_until(lambda: relay.state == 0, what="the relay to drop")
        relay.clear_states()
        time.sleep(1.5)
        assert not went_high(relay)  # still paused after the test

        tap(d, "close")
        wait_until(lambda: not kiosk.pipeline.paused, what="checks resume when the menu closes")
        wait_until(lambda: went_high(relay), timeout=30, what="a pass again after the menu")
        wait_until(lambda: {"technician_menu_opened", "gate_test"} <= {e["event"] for e in audit_events(kiosk, srv)},
                   what="the audit events")
        events = audit_events(kiosk, srv)
        gate = next(e for e in events if e["event"] == "gate_test")
        assert gate["detail"] == {"result": "pulsed"} and gate["device_id"] == DEMO_DEVICE_ID and gate["site_id"] == DEMO_SITE.id
    finally:
        running.close()


def test_wrong_pins_and_a_lockout_reach_the_outbox(tmp_path, relay, srv):
    kiosk = build_kiosk(load_config(write_config(tmp_path, srv.url)))
    d = kiosk.display
    try:
        key(pygame.K_F2)
        wait_until(lambda: d.menu.state == MenuState.PIN)
        for wrong in ("1111", "2222", "3333"):
            enter_pin(d, wrong)
        wait_until(lambda: len(audit_events(kiosk, srv)) >= 4, what="three failures and a lock-out")
        events = audit_events(kiosk, srv)
        assert sorted(e["event"] for e in events) == ["technician_locked_out"] + ["technician_pin_failed"] * 3
        assert "2468" not in repr(events) and "1111" not in repr(events)
    finally:
        kiosk.close()
    # pulling the plug is no way around the lockout: the kiosk as `sentinel run` builds it again
    again = build_kiosk(load_config(write_config(tmp_path, srv.url)))
    try:
        assert again.display.menu.pin_gate.attempt(PIN).reason == "locked"
    finally:
        again.close()


def open_menu_with_f2(d) -> None:
    key(pygame.K_F2)
    wait_until(lambda: d.menu.state == MenuState.PIN, what="the PIN pad")
    enter_pin(d, PIN)
    assert d.menu.state == MenuState.MENU


def reload_rows(d) -> tuple[tuple[str, str], ...]:
    """Tap Reload config and wait for its answer (each reload in these tests answers differently)."""
    before = d.menu.view().info
    tap(d, "reload")

    def answered():
        view = d.menu.view()
        return d.menu._pending is None and view.info != before and view.info[0][1] not in ("请稍候…", "Working...")

    wait_until(answered, what="the reload's answer")
    return d.menu.view().info


def test_reload_config_applies_policy_language_name_and_timing_live_and_lists_what_needs_a_restart(tmp_path, relay, srv):
    path = write_config(tmp_path, srv.url)
    kiosk = build_kiosk(load_config(path))
    kiosk.config_path = path  # `sentinel run --config FILE` (see the report for kiosk.py / run.py)
    d = kiosk.display
    try:
        open_menu_with_f2(d)
        assert reload_rows(d) == (("", "配置无变化"),)

        write_config(tmp_path, srv.url, policy='nat_window_h = 48\noffline = "allow_and_flag"\n', device='language = "en"\n',
                     display="volume = 0.5\n", result_s=2.5, gate_pin=22)
        path.write_text(path.read_text().replace('site_name = "东门"', 'site_name = "East gate"'))
        rows = reload_rows(d)

        applied = [v for k, v in rows if k == "Applied"]
        restart = [v for k, v in rows if k == "Restart needed"]
        assert "device.language: zh-CN → en" in applied and "device.site_name: 东门 → East gate" in applied
        assert "policy.nat_window_h: none → 48" in applied and "policy.offline: deny → allow_and_flag" in applied
        assert "display.result_s: 0.5 → 2.5" in applied and "display.volume: 0.8 → 0.5" in applied
        assert restart == ["gate.pin: 17 → 22"]
        assert rows[-1] == ("", "Takes effect after a restart: sudo systemctl restart sentinel")
        # what runs now: the live keys new, the gate's pin as it was
        c = kiosk.config
        assert (c.policy.nat_window_h, c.policy.offline, c.device.language, c.device.site_name, c.display.result_s) == (
            48, "allow_and_flag", "en", "East gate", 2.5)
        assert c.gate.pin == RELAY_PIN
        assert kiosk.pipeline._policy.nat_window_h == 48 and kiosk.pipeline._language == "en" and kiosk.pipeline._result_s == 2.5
        assert d.language == "en" and d.menu.view().title == "Technician menu" and d.config.result_s == 2.5
        assert kiosk.status_fields()["site_name"] == "East gate"

        path.write_text(path.read_text().replace("nat_window_h = 48", "nat_window_h = 36").replace("[gate]", "[gate]\npulse_seconds = 2"))
        rows = reload_rows(d)
        assert rows[0][1].startswith("Config has mistakes, still running on the old one:")
        problems = [v for _, v in rows[1:]]
        assert any(p.startswith("policy.nat_window_h: bad value 36") for p in problems)
        assert any(p.startswith("gate.pulse_seconds: unknown key") for p in problems)
        assert kiosk.config.policy.nat_window_h == 48  # nothing changed

        wait_until(lambda: {"config_reloaded", "config_reload_failed"} <= {e["event"] for e in audit_events(kiosk, srv)},
                   what="the reload events")
        events = audit_events(kiosk, srv)
        failed = next(e for e in events if e["event"] == "config_reload_failed")
        assert failed["detail"]["problems"] == 2 and "gate.pulse_seconds" in failed["detail"]["keys"]
        reloaded = [e for e in events if e["event"] == "config_reloaded"]
        assert reloaded[-1]["detail"]["restart_needed"] == 1 and reloaded[-1]["detail"]["applied"] == 6
        assert "East gate" not in repr(events)  # key names only, never values
    finally:
        kiosk.close()


def test_a_kiosk_without_a_config_file_says_there_is_nothing_to_reload(tmp_path, relay, srv):
    kiosk = build_kiosk(load_config(write_config(tmp_path, srv.url)))
    kiosk.config_path = None
    try:
        open_menu_with_f2(kiosk.display)
        rows = reload_rows(kiosk.display)
        assert "内置配置" in rows[0][1]
    finally:
        kiosk.close()


def test_the_network_panel_of_a_running_kiosk_shows_reachable_and_the_round_trip(tmp_path, relay, srv):
    """`sentinel run`'s wiring: the kiosk's own heartbeat reaches the reference service on loopback,
    and the Network panel says so with its round trip and the time of that contact, in local time."""
    import re

    kiosk = build_kiosk(load_config(write_config(tmp_path, srv.url)))
    d = kiosk.display
    running = RunningKiosk(kiosk)
    try:
        wait_until(lambda: kiosk.heartbeat is not None and kiosk.heartbeat.sent >= 1, timeout=30, what="the first heartbeat")
        open_menu_with_f2(d)
        tap(d, "network")
        wait_until(lambda: d.menu._pending is None and "连通" in dict(d.menu.view().info), what="the network panel")
        rows = dict(d.menu.view().info)
        assert re.fullmatch(r"可达 · \d+ ms", rows["连通"]), rows
        assert re.fullmatch(r"\d\d:\d\d:\d\d（\d+秒前）", rows["上次联系"]), rows
        tap(d, "close")
    finally:
        running.close()


def test_reload_keeps_the_fleets_signed_policy_over_the_files(tmp_path, relay, srv):
    # [fleet]'s site policy (applied by sentinel/fleet/link.py through Kiosk.apply_remote_policy)
    # stays in force when the technician reloads a file whose [policy] says otherwise
    path = write_config(tmp_path, srv.url)
    kiosk = build_kiosk(load_config(path))
    kiosk.config_path = path
    d = kiosk.display
    try:
        kiosk.apply_remote_policy(PolicyConfig(nat_window_h=24, offline="deny"))
        open_menu_with_f2(d)
        write_config(tmp_path, srv.url, policy='nat_window_h = 48\noffline = "allow_and_flag"\n')
        reload_rows(d)
        assert kiosk.config.policy.nat_window_h == 48  # the file's, as read
        assert (kiosk.pipeline._policy.nat_window_h, kiosk.pipeline._policy.offline) == (24, "deny")  # the fleet's, in force
    finally:
        kiosk.close()

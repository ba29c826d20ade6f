"""The display's pure parts: the screen model, text fitting, the PIN gate, the technician menu,
the corner gesture and the font search. No pygame here."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta, timezone

import pytest

from sentinel.config import DisplayConfig, parse_config
from sentinel.health import HealthStatus, Nat, NatResult, Person, Status, Vaccination
from sentinel.policy import REASON_TEXT, Verdict, VerdictKind
from sentinel.screens import Icon, Screen, ScreenKind, nat_text
from ui import fonts as ui_fonts
from ui.pin import PinGate, hash_pin, verify_pin
from ui.technician import CornerLongPress, MenuState, TechnicianActions, TechnicianMenu
from ui.text import fit_text, tokens, wrap
from tests.helpers import FakeClock

NOW = datetime(2022, 4, 12, 6, 3, 22, tzinfo=UTC)


def inline(fn, *args):
    future: Future = Future()
    try:
        future.set_result(fn(*args))
    except Exception as e:  # noqa: BLE001 - handed over like an executor would
        future.set_exception(e)
    return future


def green(name="王*明", nat_hours=20.0, result=NatResult.NEGATIVE) -> HealthStatus:
    nat = Nat(result=result, sampled_at=NOW - timedelta(hours=nat_hours)) if nat_hours is not None else None
    return HealthStatus(status=Status.GREEN, person=Person(name_masked=name, id_masked="1101**********002X"), nat=nat,
                        vaccination=Vaccination(doses=3))


# --- the screen model ------------------------------------------------------------------------------


def test_existing_constructors_still_work():
    """The pipeline's calls, unchanged."""
    assert Screen.prompt(ScreenKind.IDLE, "zh-CN").message == "请出示健康码"
    assert Screen.prompt(ScreenKind.CHECKING, "en", offline=False).kind == ScreenKind.CHECKING
    result = Screen.result(Verdict(VerdictKind.PASS, "ok"), green(), "zh-CN", False)
    assert (result.kind, result.person, result.title) == (ScreenKind.PASS, "王*明", "请通行")
    assert Screen.unknown_code(Verdict(VerdictKind.DENY, "unrecognised"), "en").kind == ScreenKind.UNKNOWN_CODE
    assert Screen.fault("camera", "zh-CN").kind == ScreenKind.FAULT
    assert Screen(ScreenKind.PASS, "x", person="p", nat="n", offline=True).icon_kind == Icon.PASS


def test_idle_prompt_is_shown_in_both_languages():
    zh = Screen.prompt(ScreenKind.IDLE, "zh-CN")
    en = Screen.prompt(ScreenKind.IDLE, "en")
    assert (zh.message, zh.hint) == ("请出示健康码", "Show your health code")
    assert (en.message, en.hint) == ("Show your health code", "请出示健康码")


def test_pass_screen_has_name_nat_and_time_and_no_repeated_headline():
    shanghai = timezone(timedelta(hours=8))
    s = Screen.result(Verdict(VerdictKind.PASS, "ok"), green(), "zh-CN", False, now=NOW, tz=shanghai)
    assert s.title == "请通行" and s.message == ""  # the reason "请通行" is the headline already
    assert s.nat == f"核酸阴性，{(NOW - timedelta(hours=20)).astimezone(shanghai):%m-%d %H:%M}采样"
    assert s.time == f"{NOW.astimezone(shanghai):%Y-%m-%d %H:%M:%S}"  # the date too, not only the time
    assert s.second == "Please pass"  # the other language, small
    en = Screen.result(Verdict(VerdictKind.PASS, "ok"), green(), "en", False, now=NOW, tz=shanghai)
    assert en.title == "Please pass" and en.nat.startswith("NAT negative, 04-11 ")


def test_the_card_tells_two_people_apart_and_says_the_colour_and_doses():
    s = Screen.result(Verdict(VerdictKind.PASS, "ok"), green(), "zh-CN", False, now=NOW)
    assert s.person == "王*明" and s.person_id == "1101**********002X"
    assert s.code == "绿码，已接种3针"
    red = Screen.result(Verdict(VerdictKind.DENY, "red_code"), green(), "en", False, now=NOW)
    assert (red.title, red.message, red.second) == ("Entry refused", "Red code", "禁止通行：红码")


def test_deny_screen_says_the_reason_under_the_headline():
    s = Screen.result(Verdict(VerdictKind.DENY, "nat_too_old", (("h", 48),)), green(nat_hours=80), "zh-CN", False, now=NOW)
    assert (s.kind, s.title, s.message, s.icon_kind) == (ScreenKind.DENY, "禁止通行", "核酸超过48小时", Icon.DENY)
    manual = Screen.result(Verdict(VerdictKind.MANUAL_CHECK, "yellow_code"), green(), "en", False, now=NOW)
    assert (manual.kind, manual.icon_kind, manual.title) == (ScreenKind.MANUAL_CHECK, Icon.MANUAL, "Staff will check")


def test_a_device_problem_is_not_drawn_as_a_refusal():
    """Offline with no answer and a device the service does not accept: the gate stays shut (the
    verdict is the policy's deny), but the screen is an amber staff check or a fault, not red."""
    offline = HealthStatus.unreachable(Status.TIMEOUT, "deadline")
    for reason in ("offline_denied", "offline_no_cache"):
        s = Screen.result(Verdict(VerdictKind.DENY, reason), offline, "zh-CN", True, now=NOW)
        assert (s.kind, s.title) == (ScreenKind.MANUAL_CHECK, "请人工核验"), reason
    s = Screen.result(Verdict(VerdictKind.DENY, "device_unauthorized"), offline, "en", False, now=NOW)
    assert (s.kind, s.title) == (ScreenKind.FAULT, "Out of order") and "technician" in s.message


@pytest.mark.parametrize(("hours", "days_shown"), [(20, False), (80, False), (24 * 9, True)])
def test_nat_says_when_it_was_sampled(hours, days_shown):
    sampled = NOW - timedelta(hours=hours)
    zh, en = nat_text(green(nat_hours=hours), NOW, "zh-CN", UTC), nat_text(green(nat_hours=hours), NOW, "en", UTC)
    when = f"{sampled:%Y-%m-%d}" if days_shown else f"{sampled:%m-%d %H:%M}"
    assert zh == f"核酸阴性，{when}采样" and en == f"NAT negative, {when}"


def test_nat_text_for_missing_positive_and_no_person():
    assert nat_text(green(nat_hours=None), NOW, "en") == "No NAT result"
    assert nat_text(green(result=NatResult.POSITIVE), NOW, "zh-CN").startswith("核酸阳性")
    assert nat_text(HealthStatus.unreachable(Status.TIMEOUT, "x"), NOW, "en") == ""


def test_offline_result_and_faults():
    s = Screen.result(Verdict(VerdictKind.PASS, "offline_allowed"), HealthStatus.unreachable(Status.TIMEOUT, "x"), "en", True, now=NOW)
    assert s.offline and s.nat == "" and s.person == "" and s.message == "Network down: let in by site rule"
    for fault, icon in (("camera", Icon.CAMERA), ("network", Icon.NETWORK), ("gate", Icon.GATE), ("other", Icon.FAULT)):
        screen = Screen.fault(fault, "zh-CN")
        assert screen.icon_kind == icon and screen.title == "设备故障" and screen.message


def test_every_screen_has_words_and_an_icon_besides_its_colour():
    """Colour is never the only signal."""
    screens = [Screen.prompt(ScreenKind.IDLE, "en"), Screen.prompt(ScreenKind.CHECKING, "en"),
               Screen.unknown_code(Verdict(VerdictKind.DENY, "unrecognised"), "en"), Screen.fault("gate", "en")]
    screens += [Screen.result(Verdict(k, "ok"), green(), "en", False, now=NOW) for k in VerdictKind]
    icons = {s.kind: s.icon_kind for s in screens}
    assert len(set(icons.values())) == len(icons)  # one shape per kind
    assert all(s.lines for s in screens)


# --- text fitting ----------------------------------------------------------------------------------


def measure(text: str, size: int) -> int:
    """A stand-in font: wide characters are 1 em, others half an em."""
    return sum(size if ord(c) > 0x2E80 else size // 2 for c in text)


def test_tokens_keep_words_and_punctuation_together():
    assert tokens("Yellow code: staff will check") == ["Yellow ", "code: ", "staff ", "will ", "check"]
    assert tokens("红码，禁止通行") == ["红", "码，", "禁", "止", "通", "行"]
    assert tokens("核酸超过48小时") == ["核", "酸", "超", "过", "48", "小", "时"]
    assert tokens("（地下）") == ["（地", "下）"]


def test_wrap_breaks_chinese_anywhere_and_english_at_spaces():
    assert wrap("请出示健康码", 4 * 10, 10, measure) == ["请出示健", "康码"]
    assert wrap("Show your health code", 60, 10, measure) == ["Show your", "health code"]
    assert wrap("x" * 30, 50, 10, measure) == ["x" * 10, "x" * 10, "x" * 10]  # a word too long for a line


def test_fit_prefers_one_line_and_balances_two():
    fit = fit_text("请出示健康码", 300, 200, measure, max_size=60, min_size=20, max_lines=2)
    assert fit.lines == ("请出示健康码",) and fit.size == 50 and not fit.truncated
    fit = fit_text("无法识别的二维码无法识别的二维码", 300, 200, measure, max_size=60, min_size=20, max_lines=2)
    assert len(fit.lines) == 2 and abs(len(fit.lines[0]) - len(fit.lines[1])) <= 1


def test_fit_cuts_with_an_ellipsis_only_at_the_smallest_size():
    fit = fit_text("娜" * 200, 300, 60, measure, max_size=40, min_size=20, max_lines=2)
    assert fit.truncated and fit.size == 20 and fit.lines[-1].endswith("…")
    assert all(measure(line, fit.size) <= 300 for line in fit.lines)
    assert len(fit.lines) * fit.line_height <= 60
    assert fit_text("x " * 200, 300, 30, measure, max_size=40, min_size=20).lines[-1].endswith("...")


# --- the PIN --------------------------------------------------------------------------------------


def test_pin_hash_round_trip_and_config_accepts_it():
    stored = hash_pin("246810", iterations=1000)
    assert stored.startswith("pbkdf2_sha256$1000$")
    assert verify_pin("246810", stored) and not verify_pin("246811", stored)
    assert not verify_pin("246810", "garbage") and not verify_pin("1", "md5$1$x$y")
    assert parse_config({"display": {"type": "pygame", "technician_pin_hash": hash_pin("123456")}}).display.type == "pygame"
    with pytest.raises(ValueError):
        hash_pin("12ab")


def test_config_rejects_a_plain_pin():
    with pytest.raises(Exception, match="technician_pin_hash"):
        parse_config({"display": {"technician_pin_hash": "1234"}})
    assert DisplayConfig().technician_pin_hash == ""  # no hash: the menu stays locked


def test_wrong_pins_lock_out_and_the_lockout_doubles():
    clock = FakeClock()
    gate = PinGate(hash_pin("246800", iterations=1000), clock=clock)
    assert [gate.attempt("1111").reason for _ in range(2)] == ["wrong", "wrong"]
    third = gate.attempt("1111")
    assert third.reason == "locked" and third.locked_for_s == 30
    assert gate.attempt("246800").reason == "locked"  # even the right PIN, while locked
    clock.advance(30)
    assert gate.attempt("246800").ok  # right PIN after the wait
    for _ in range(3):
        gate.attempt("0000")
    clock.advance(30)
    for _ in range(3):
        result = gate.attempt("0000")
    assert result.locked_for_s == 60  # the second lockout in a row is twice as long
    clock.advance(59)
    assert gate.attempt("246800").reason == "locked"
    clock.advance(1)
    assert gate.attempt("246800").ok


def test_no_hash_no_entry():
    assert PinGate("").attempt("1234").reason == "not_configured"


# --- the technician menu ---------------------------------------------------------------------------


def make_menu(clock=None, **actions):
    clock = clock or FakeClock()
    gate = PinGate(hash_pin("246800", iterations=1000), clock=clock)
    return TechnicianMenu(gate, TechnicianActions(**actions), inline, language="en", clock=clock), clock


def type_pin(menu, pin):
    for d in pin:
        menu.press(f"digit:{d}")
    menu.press("ok")
    menu.poll()


def test_right_pin_opens_the_menu_and_actions_show_their_rows():
    calls = []
    menu, _ = make_menu(gate_test=lambda: calls.append("pulse") or [("Gate", "pulsed 1.0 s")])
    menu.open()
    assert menu.state == MenuState.PIN
    type_pin(menu, "246800")
    assert menu.state == MenuState.MENU
    view = menu.view()
    assert [b.id for b in view.buttons] == ["device", "network", "gate", "sound", "preview", "outbox", "reload", "close"]
    assert {b.id for b in view.buttons if not b.enabled} == {"device", "network", "sound", "outbox", "reload"}
    menu.press("gate")
    menu.poll()
    assert calls == ["pulse"] and menu.view().info == (("Gate", "pulsed 1.0 s"),)
    menu.press("preview")
    assert menu.state == MenuState.PREVIEW
    menu.press("back")
    assert menu.state == MenuState.MENU
    menu.press("close")
    assert menu.state == MenuState.CLOSED


def test_an_action_that_raises_is_shown_not_fatal():
    menu, _ = make_menu(reload_config=lambda: 1 / 0)
    menu.open()
    type_pin(menu, "246800")
    menu.press("reload")
    menu.poll()
    assert "ZeroDivisionError" in menu.view().info[0][1]


def test_wrong_pins_say_how_many_tries_are_left_then_lock():
    menu, clock = make_menu()
    menu.open()
    type_pin(menu, "1111")
    assert menu.view().message == "Wrong PIN: 2 more tries" and menu.view().message_is_error
    type_pin(menu, "1111")
    type_pin(menu, "1111")
    assert menu.view().message == "Too many wrong PINs: wait 30 s"
    type_pin(menu, "246800")
    assert menu.state == MenuState.PIN  # locked: the right PIN does not count yet
    clock.advance(10)
    menu.poll()
    assert menu.view().message == "Too many wrong PINs: wait 20 s"
    clock.advance(20)
    type_pin(menu, "246800")
    assert menu.state == MenuState.MENU


def test_menu_closes_by_itself_when_left_alone():
    menu, clock = make_menu()
    menu.open()
    type_pin(menu, "246800")
    clock.advance(121)
    menu.poll()
    assert menu.state == MenuState.CLOSED


def test_corner_long_press():
    g = CornerLongPress(hold_s=3.0)
    g.down(10, 10, 100.0, (800, 480))
    assert not g.poll(102.9)
    assert g.poll(103.0) and not g.poll(104.0)  # once
    g.down(400, 240, 200.0, (800, 480))  # not in the corner
    assert not g.poll(210.0)
    g.down(10, 10, 300.0, (800, 480))
    g.move(200, 10)  # slid out of the corner
    assert not g.poll(310.0)
    g.down(10, 10, 400.0, (800, 480))
    g.up()  # let go too early
    assert not g.poll(410.0)


# --- fonts ----------------------------------------------------------------------------------------


def test_missing_cjk_font_names_the_package(monkeypatch):
    monkeypatch.setattr(ui_fonts, "_fc_list", lambda: [])
    monkeypatch.setattr(ui_fonts, "KNOWN_PATHS", (("/nonexistent/font.ttc", 0, None, 0),))
    with pytest.raises(ui_fonts.FontNotFoundError, match="sudo apt install fonts-noto-cjk"):
        ui_fonts.find_cjk_fonts()


def test_fontconfig_choice_prefers_simplified_chinese(monkeypatch, tmp_path):
    files = {}
    for name in ("a.ttc", "b.ttc", "c.ttf"):
        files[name] = tmp_path / name
        files[name].write_bytes(b"")
    monkeypatch.setattr(ui_fonts, "_fc_list", lambda: [
        (str(files["c.ttf"]), 0, "WenQuanYi Zen Hei", "Regular"),
        (str(files["a.ttc"]), 0, "Noto Sans CJK JP,Noto Sans CJK JP Regular", "Regular"),
        (str(files["a.ttc"]), 2, "Noto Sans CJK SC,Noto Sans CJK SC Regular", "Regular"),
        (str(files["b.ttc"]), 2, "Noto Sans CJK SC,Noto Sans CJK SC Bold", "Bold"),
    ])
    found = ui_fonts.find_cjk_fonts()
    assert (found.regular.path, found.regular.index) == (str(files["a.ttc"]), 2)
    assert (found.bold.path, found.bold.index) == (str(files["b.ttc"]), 2)


def test_ui_console_does_not_load_pygame():
    code = "import sys, ui.console, ui.display, ui.errors, ui.technician, ui.pin, ui.text, ui.layout, ui.fonts, ui.samples\nprint('pygame' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_every_reason_has_both_languages():
    assert all(zh and en for zh, en in REASON_TEXT.values())

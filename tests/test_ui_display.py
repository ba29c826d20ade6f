"""The pygame display as the kiosk uses it: a render thread behind `show`/`preview`, touch and
mouse input, the technician menu behind its PIN, sounds, and the failure modes (dummy SDL
video and audio drivers; events are posted the way SDL would deliver them)."""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import logging  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pygame = pytest.importorskip("pygame", reason="pygame is a dev dependency (apt python3-pygame on the Pi)")

from sentinel.config import DisplayConfig  # noqa: E402
from sentinel.frames import Frame  # noqa: E402
from sentinel.policy import Verdict, VerdictKind  # noqa: E402
from sentinel.screens import Screen, ScreenKind, StatusBar  # noqa: E402
from tests.helpers import PATIENCE_S, FakeClock, wait_until  # noqa: E402
from ui import pygame_display  # noqa: E402
from ui.console import ConsoleDisplay, NoDisplay  # noqa: E402
from ui.display import open_display  # noqa: E402
from ui.fonts import FontNotFoundError  # noqa: E402
from ui.pin import hash_pin  # noqa: E402
from ui.pointer import to_logical  # noqa: E402
from ui.pygame_display import PygameDisplay  # noqa: E402
from ui.samples import samples  # noqa: E402
from ui.sound import SoundPlayer  # noqa: E402
from ui.technician import MenuState, TechnicianActions  # noqa: E402

PIN = "246800"
PIN_HASH = hash_pin(PIN, iterations=2000)


@pytest.fixture
def clock():
    return FakeClock(5000.0)


@pytest.fixture
def display(clock):
    made = []

    def make(**kw):
        config = kw.pop("config", None) or DisplayConfig(type="pygame", technician_pin_hash=PIN_HASH, **kw.pop("cfg", {}))
        d = PygameDisplay(config, clock=clock, **kw)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


def frame(n: int, size=(640, 480)) -> Frame:
    grey = np.full((size[1], size[0]), n % 256, np.uint8)
    return Frame(grey=grey, timestamp=n / 30, sequence=n)


# --- SDL-style input ---------------------------------------------------------------------------------


def to_panel(d: PygameDisplay, x: float, y: float) -> tuple[float, float]:
    """A point of the picture → where it is on the (possibly turned) panel."""
    lw, lh = d.size
    return {0: (x, y), 90: (lh - 1 - y, x), 180: (lw - 1 - x, lh - 1 - y), 270: (y, lw - 1 - x)}[d.config.rotation]


def finger(d: PygameDisplay, kind: str, x: float, y: float, finger_id: int = 0, with_mouse: bool = True) -> None:
    """A finger at picture point (x, y) as SDL delivers it: normalised panel coordinates, plus the
    mouse event SDL synthesises from it."""
    px, py = to_panel(d, x, y)
    pw, ph = d._window.get_size()
    types = {"down": pygame.FINGERDOWN, "up": pygame.FINGERUP, "move": pygame.FINGERMOTION}
    pygame.event.post(pygame.event.Event(types[kind], touch_id=1, finger_id=finger_id, x=px / (pw - 1), y=py / (ph - 1), dx=0, dy=0, pressure=1.0))
    if with_mouse:
        mouse = {"down": pygame.MOUSEBUTTONDOWN, "up": pygame.MOUSEBUTTONUP}.get(kind)
        if mouse:
            pygame.event.post(pygame.event.Event(mouse, pos=(int(px), int(py)), button=1, touch=True))


def tap(d: PygameDisplay, button: str) -> None:
    wait_until(lambda: button in d._renderer.hits, what=f"button {button}")
    x, y = d._renderer.hits[button].center
    finger(d, "down", x, y)
    finger(d, "up", x, y)


def open_menu(d: PygameDisplay, clock: FakeClock) -> None:
    finger(d, "down", 5, 5)
    wait_until(lambda: d.gesture.pressing, what="the corner press")
    clock.advance(3.1)
    wait_until(lambda: d.menu.is_open, what="the PIN pad")
    finger(d, "up", 5, 5)


def enter_pin(d: PygameDisplay, pin: str) -> None:
    for digit in pin:
        tap(d, f"digit:{digit}")
    wait_until(lambda: d.menu.view().pin_digits == len(pin), what=f"{len(pin)} digits")
    tap(d, "ok")
    wait_until(lambda: d.menu.state != MenuState.PIN or (d.menu.view().pin_digits == 0 and d.menu._pending is None),
               what="the PIN check")


# --- the kiosk's side ------------------------------------------------------------------------------


def test_show_and_preview_return_at_once_while_drawing_is_slow(display):
    """The kiosk's loop hands over screens and frames without ever waiting for the render thread,
    even while that thread is stuck inside a draw."""
    d = display()
    real_draw = d._renderer.draw
    inside, release = threading.Event(), threading.Event()

    def stuck_draw(*a, **kw):
        inside.set()
        release.wait(60)
        return real_draw(*a, **kw)

    d._renderer.draw = stuck_draw
    d.preview(frame(1))
    wait_until(inside.is_set, what="the render thread to enter the stuck draw")
    handed_over = threading.Event()

    def loop():
        for n in range(200):
            d.preview(frame(n))
            d.show(Screen.prompt(ScreenKind.CHECKING if n % 2 else ScreenKind.IDLE, "zh-CN"))
        handed_over.set()

    threading.Thread(target=loop, daemon=True).start()
    try:
        # all 400 hand-overs finish while the draw is still stuck
        assert handed_over.wait(30), "show()/preview() waited for the render thread"
    finally:
        release.set()


def test_idle_with_a_camera_view_draws_each_new_frame(display):
    """The live view follows the camera (how many frames per second it keeps: bench/ui.py)."""
    d = display()
    for n in range(1, 6):
        f = frame(n)
        d.preview(f)
        wait_until(lambda f=f: d._drawn_frame is f, what=f"camera frame {n} on screen")


def test_verdict_screen_is_drawn_and_not_redrawn_every_frame(display):
    d = display()
    sample = next(s for s in samples("zh-CN") if s.name == "pass")
    d.show(sample.screen)
    wait_until(lambda: any(t.text == "请通行" for t in d._renderer.drawn), what="the pass screen")
    drawn, started = d.frames_drawn, time.monotonic()
    for n in range(20):
        d.preview(frame(n))  # the camera keeps delivering, but the pass screen shows no camera view
        time.sleep(0.02)
    # redrawn only when the status bar's clock turns a second (however slow this machine is today)
    assert d.frames_drawn - drawn <= int(time.monotonic() - started) + 2


def test_status_bar_comes_from_the_provider_and_survives_its_failures(display):
    calls = []

    def provider():
        calls.append(1)
        if len(calls) == 1:
            raise OSError("outbox locked")
        return StatusBar(site_name="东门", online=False, outbox_depth=5)

    d = display(status=provider)
    wait_until(lambda: any(t.text == "东门" for t in d._renderer.drawn), what="the site name")
    texts = {t.text for t in d._renderer.drawn}
    # records waiting to upload in words; offline in the banner's words (the bar may keep only its icon)
    assert "5条待上传" in texts and "网络中断，离线模式" in texts


def test_window_close_asks_the_kiosk_to_stop(display):
    stopped = threading.Event()
    d = display(on_quit=stopped.set)
    pygame.event.post(pygame.event.Event(pygame.QUIT))
    assert stopped.wait(PATIENCE_S)
    assert d._thread.is_alive()  # the display stays up until the kiosk closes it


def test_the_kiosk_can_connect_after_building_the_pipeline(display, clock):
    """The pipeline needs the display before the kiosk exists: status, actions and on_quit come later."""
    d = display()
    stopped = threading.Event()
    d.connect(status=lambda: StatusBar(site_name="北门", online=True, outbox_depth=0),
              actions=TechnicianActions(outbox_status=lambda: [("待传记录", "0 / 100,000")]), on_quit=stopped.set)
    wait_until(lambda: any(t.text == "北门" for t in d._renderer.drawn), what="the connected status bar")
    open_menu(d, clock)
    enter_pin(d, PIN)
    tap(d, "outbox")
    wait_until(lambda: ("待传记录", "0 / 100,000") in d.menu.view().info, what="the connected action")
    pygame.event.post(pygame.event.Event(pygame.QUIT))
    assert stopped.wait(PATIENCE_S)
    for other in (ConsoleDisplay(), NoDisplay()):
        other.connect(status=lambda: StatusBar(), actions=TechnicianActions(), on_quit=stopped.set)


# --- touch and the technician menu ----------------------------------------------------------------


def test_long_press_in_the_corner_opens_the_pin_pad_and_the_right_pin_the_menu(display, clock):
    gate = []
    d = display(actions=TechnicianActions(gate_test=lambda: gate.append(1) or [("闸机", "已开启 1.0 秒")]))
    finger(d, "down", 400, 240)  # a long press elsewhere does nothing
    clock.advance(5)
    time.sleep(0.1)
    finger(d, "up", 400, 240)
    assert not d.menu.is_open
    open_menu(d, clock)
    assert d.menu.state == MenuState.PIN
    enter_pin(d, PIN)
    assert d.menu.state == MenuState.MENU
    tap(d, "gate")
    wait_until(lambda: gate == [1], what="the gate test")
    wait_until(lambda: ("闸机", "已开启 1.0 秒") in d.menu.view().info, what="the gate test's answer")
    tap(d, "close")
    wait_until(lambda: not d.menu.is_open, what="the menu to close")


def test_touch_is_not_counted_twice_through_the_synthesised_mouse(display, clock):
    d = display()
    open_menu(d, clock)
    for digit in "13":
        tap(d, f"digit:{digit}")  # each tap: a finger and SDL's mouse copy of it
    wait_until(lambda: d.menu.view().pin_digits >= 2, what="digits")
    time.sleep(0.1)
    assert d.menu.view().pin_digits == 2


def test_a_real_mouse_works_on_a_desktop(display, clock):
    d = display()
    open_menu(d, clock)
    wait_until(lambda: "digit:7" in d._renderer.hits)
    x, y = d._renderer.hits["digit:7"].center
    pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=(x, y), button=1, touch=False))
    pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONUP, pos=(x, y), button=1, touch=False))
    wait_until(lambda: d.menu.view().pin_digits == 1, what="a mouse click on 7")


def test_repeated_wrong_pins_lock_out(display, clock, caplog):
    caplog.set_level(logging.WARNING, logger="ui.technician")
    d = display(cfg={"width": 1080, "height": 1920})  # the pillar's portrait layout
    open_menu(d, clock)
    enter_pin(d, "1111")
    assert d.menu.view().message == "密码错误，还可尝试 2 次"
    enter_pin(d, "2222")
    enter_pin(d, "3333")
    assert "30 秒后再试" in d.menu.view().message
    enter_pin(d, PIN)  # the right PIN, but locked
    assert d.menu.state == MenuState.PIN
    clock.advance(30)
    enter_pin(d, PIN)
    assert d.menu.state == MenuState.MENU
    assert sum("wrong PIN" in r.message for r in caplog.records) == 2
    assert any("locked" in r.message for r in caplog.records)


def test_without_a_pin_hash_the_menu_stays_locked(display, clock):
    d = display(config=DisplayConfig(type="pygame"))
    open_menu(d, clock)
    assert "technician_pin_hash" in d.menu.view().message
    enter_pin(d, "0000")
    assert d.menu.state == MenuState.PIN


def test_camera_view_in_the_menu(display, clock):
    d = display()
    open_menu(d, clock)
    enter_pin(d, PIN)
    tap(d, "preview")
    wait_until(lambda: d.menu.state == MenuState.PREVIEW)
    d.preview(frame(42))
    wait_until(lambda: any("42" in t.text for t in d._renderer.drawn), what="the frame number")
    tap(d, "back")
    wait_until(lambda: d.menu.state == MenuState.MENU)


def test_f2_and_keys_for_a_technician_with_a_keyboard(display):
    d = display()
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_F2, unicode="", mod=0, scancode=0))
    wait_until(lambda: d.menu.is_open)
    for digit in PIN:
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=ord(digit), unicode=digit, mod=0, scancode=0))
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_RETURN, unicode="\r", mod=0, scancode=0))
    wait_until(lambda: d.menu.state == MenuState.MENU, what="the menu after a typed PIN")


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_rotation_maps_touch_back_onto_the_picture(rotation):
    logical = (80, 48)
    picture = pygame.Surface(logical)
    picture.fill((0, 0, 0))
    picture.set_at((10, 20), (255, 0, 0))
    panel = pygame.transform.rotate(picture, -rotation)  # what the display shows
    px, py = np.argwhere(pygame.surfarray.array3d(panel)[..., 0] == 255)[0]
    assert to_logical(px, py, rotation, logical) == (10, 20)


def test_a_rotated_display_draws_the_portrait_layout_on_a_landscape_panel(display, clock):
    d = display(cfg={"width": 480, "height": 800, "rotation": 90})
    assert d.size == (480, 800) and d._window.get_size() == (800, 480)
    open_menu(d, clock)  # the corner is the picture's corner, wherever the panel has it
    tap(d, "digit:5")
    wait_until(lambda: d.menu.view().pin_digits == 1)


# --- sound ---------------------------------------------------------------------------------------


def test_verdicts_play_their_tone_then_their_voice(display):
    d = display()
    d.show(Screen.result(Verdict(VerdictKind.PASS, "ok"), _green(), "zh-CN", False))
    wait_until(lambda: "tone:pass" in d._sound.played, what="the pass tone")
    d.show(Screen.result(Verdict(VerdictKind.DENY, "red_code"), _green(), "zh-CN", False))
    wait_until(lambda: "tone:deny" in d._sound.played, what="the deny tone")
    # the prompt says why: 红码，禁止通行
    wait_until(lambda: "voice:red" in d._sound.played, what="the red-code voice after the tone")


def _green():
    from sentinel.health import HealthStatus, Person, Status

    return HealthStatus(status=Status.GREEN, person=Person(name_masked="王*明"))


def test_mute_silences_verdicts_but_not_the_sound_test(display):
    d = display(cfg={"mute": True})
    d.show(Screen.result(Verdict(VerdictKind.PASS, "ok"), _green(), "zh-CN", False))
    time.sleep(0.2)
    assert d._sound.played == []
    lines = d._sound_test()
    assert any("静音" in value for _, value in lines)
    wait_until(lambda: "tone:pass" in d._sound.played, what="the forced sound test")


def test_no_audio_device_is_logged_once_and_is_silent(monkeypatch, caplog):
    import pygame.mixer

    def no_device(*a, **kw):
        raise pygame.error("No available audio device")

    monkeypatch.setattr(pygame.mixer, "init", no_device)
    player = SoundPlayer("en")
    with caplog.at_level(logging.WARNING, logger="ui.sound"):
        for _ in range(3):
            player.request(("tone:pass", "voice:pass"))
            player.pump()
    assert player.available is False and player.played == []
    assert sum("no audio device" in r.message for r in caplog.records) == 1


def test_every_cue_has_its_file():
    from ui.sound import CUES, SOUND_TEST, SOUNDS_DIR, sound_file

    names = {n for cue in CUES.values() for n in cue} | set(SOUND_TEST)
    for language in ("zh-CN", "en"):
        for name in names:
            assert sound_file(name, language).is_file(), sound_file(name, language)
    # a prompt per verdict reason in two languages (16 kHz mono, about 2 s each): under 3 MB
    total = sum(p.stat().st_size for p in SOUNDS_DIR.rglob("*.wav"))
    assert total < 3_000_000


# --- choosing and failing -----------------------------------------------------------------------------


def test_open_display_by_type():
    assert isinstance(open_display("console"), ConsoleDisplay)
    assert isinstance(open_display(DisplayConfig(type="none")), NoDisplay)
    d = open_display(DisplayConfig(type="pygame"), language="en", site_name="Gate 3")
    try:
        assert isinstance(d, PygameDisplay)
        wait_until(lambda: any(t.text == "Gate 3" for t in d._renderer.drawn), what="the site name")
    finally:
        d.close()


def test_no_cjk_font_is_a_clear_error(monkeypatch):
    def none():
        raise FontNotFoundError("fontconfig knows none that covers zh-cn")

    monkeypatch.setattr(pygame_display, "find_cjk_fonts", none)
    with pytest.raises(FontNotFoundError, match="sudo apt install fonts-noto-cjk"):
        open_display(DisplayConfig(type="pygame"))


def test_no_screen_is_a_clear_error():
    code = (
        "import os\nos.environ['SDL_VIDEODRIVER'] = 'no-such-driver'\n"
        "from ui.display import open_display\nfrom sentinel.config import DisplayConfig\n"
        "try:\n    open_display(DisplayConfig(type='pygame'))\nexcept Exception as e:\n    print(type(e).__name__, e)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "DisplayError cannot open the display" in result.stdout, result.stdout + result.stderr
    assert 'display.type = "console"' in result.stdout


def test_idle_after_a_verdict_says_one_at_a_time(display):
    """People are coming through: the idle screen after a verdict says the queue's rule; a kiosk
    that has checked nobody yet does not."""
    d = display()
    wait_until(lambda: any(t.text == "请出示健康码" for t in d._renderer.drawn), what="the idle screen")
    assert not any("1米" in t.text for t in d._renderer.drawn)
    d.show(next(s for s in samples("zh-CN") if s.name == "pass").screen)
    wait_until(lambda: any(t.text == "请通行" for t in d._renderer.drawn), what="the pass screen")
    d.show(Screen.prompt(ScreenKind.IDLE, "zh-CN"))
    wait_until(lambda: any(t.text == "一人一码，请保持1米距离" for t in d._renderer.drawn), what="the queue's rule")

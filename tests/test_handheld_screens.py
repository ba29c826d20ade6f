"""The handheld's vehicle screens drawn (dummy SDL): every one in both languages and the usual
sizes with text inside its box, buttons that can be hit, the verdict's colour, the battery in
the status bar only where there is one, and taps and keys reaching the controller."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from hardware.battery import Battery
from sentinel.config import DisplayConfig
from sentinel.handheld import HandheldController
from sentinel.screens import ScreenKind, StatusBar
from tests.helpers import WallClock, wait_until

# the renderer's tests set SDL's dummy drivers before pygame loads (or skip without pygame)
from tests.test_ui_render import LANGUAGES, check_text_in_boxes, colour_share, pygame
from ui.layout import LAYOUTS, Box
from ui.pygame_display import PygameDisplay
from ui.render import Renderer
from ui.samples import SAMPLE_NOW, vehicle_samples, vehicle_stress_samples

SIZES = [LAYOUTS["landscape"], LAYOUTS["portrait"], (1280, 720), (1024, 600), (720, 1280), (480, 320)]


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def draw(renderer, sample, size):
    surface = pygame.Surface(size)
    renderer.draw(surface, sample.screen, sample.status, now=SAMPLE_NOW, language=sample.screen.language)
    return surface


def check_layout(renderer, size, name):
    check_text_in_boxes(renderer, size, name)  # every text in its box, on screen, none overlapping
    screen_box = Box(0, 0, *size)
    hits = list(renderer.hits.items())
    for i, (ida, a) in enumerate(hits):
        assert screen_box.contains(a), f"{name}: button {ida} off screen"
        for idb, b in hits[i + 1:]:
            clip = pygame.Rect(a).clip(pygame.Rect(b))
            assert clip.w * clip.h == 0, f"{name}: buttons {ida} and {idb} overlap"


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_vehicle_screen_renders_with_text_inside_its_box(renderer, size, language):
    for sample in vehicle_samples(language):
        draw(renderer, sample, size)
        name = f"{sample.name} {size}"
        check_layout(renderer, size, name)
        assert not [d for d in renderer.drawn if d.truncated and d.role not in ("status", "status_bold")], (
            name, [d.text for d in renderer.drawn if d.truncated])
        view = sample.screen.vehicle
        wanted = {b.id for b in view.buttons if b.enabled}
        if view.keypad is not None:
            wanted |= {b.id for b in (*view.keypad.keys, *view.keypad.actions) if b.enabled}
        assert wanted <= set(renderer.hits), (name, wanted - set(renderer.hits))


@pytest.mark.parametrize("size", [LAYOUTS["landscape"], LAYOUTS["portrait"]], ids=["landscape", "portrait"])
@pytest.mark.parametrize("language", LANGUAGES)
def test_a_full_minibus_and_long_names_stay_in_their_boxes(renderer, size, language):
    """Nine people, every flag, an absurd name, a long site name and an alarm: nothing leaves its
    box; only the name (and the status bar's site name) may be cut; the newest rows are shown and
    a line says how many more there are; the headline stays readable."""
    for sample in vehicle_stress_samples(language):
        draw(renderer, sample, size)
        check_layout(renderer, size, sample.name)
        for d in renderer.drawn:
            if d.truncated:
                assert d.role in ("status", "status_bold") or "*" in d.text, (sample.name, d.role, d.text)
        if sample.screen.kind == ScreenKind.VEHICLE and size == LAYOUTS["landscape"]:
            assert any(d.text.startswith("↑") for d in renderer.drawn)
    summary = next(s for s in vehicle_stress_samples(language) if s.screen.kind == ScreenKind.VEHICLE_SUMMARY)
    draw(renderer, summary, size)
    title = next(d for d in renderer.drawn if d.role == "title")
    assert title.size >= round(0.08 * min(size))


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_vehicle_verdict_is_its_colour_and_words(renderer, language):
    by_name = {s.name: s for s in vehicle_samples(language)}
    size = LAYOUTS["landscape"]
    assert colour_share(draw(renderer, by_name["vehicle_summary_pass"], size), "green") > 0.5
    assert colour_share(draw(renderer, by_name["vehicle_summary_deny"], size), "red") > 0.5
    assert colour_share(draw(renderer, by_name["vehicle_summary_manual"], size), "yellow") > 0.5
    words = {d.text for d in renderer.drawn}
    assert {"请人工核验", "Staff will check"} & words
    # an open vehicle is a working screen: no verdict colour floods it, each row carries its own
    assert colour_share(draw(renderer, by_name["vehicle_result"], size), "red") < 0.2


def test_battery_in_the_status_bar_only_where_there_is_one(renderer):
    sample = vehicle_samples("en")[0]
    surface = pygame.Surface(LAYOUTS["landscape"])
    renderer.draw(surface, sample.screen, StatusBar(site_name="x", battery=76), now=SAMPLE_NOW)
    assert "76%" in {d.text for d in renderer.drawn}
    renderer.draw(surface, sample.screen, StatusBar(site_name="x", battery=None), now=SAMPLE_NOW)
    assert not [d for d in renderer.drawn if d.text.endswith("%")]
    low = pygame.Surface(LAYOUTS["landscape"])
    renderer.draw(low, sample.screen, StatusBar(battery=9, charging=False), now=SAMPLE_NOW)
    assert "9%" in {d.text for d in renderer.drawn}


def test_sentinel_screens_handheld_writes_the_vehicle_screens(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "sentinel", "screens", "--out", str(tmp_path), "--handheld", "--layout", "landscape", "--language", "en",
         "--only", "vehicle_result", "--only", "vehicle_plate_partial", "--only", "vehicle_summary_deny"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in tmp_path.glob("*.png"))
    assert names == ["landscape-en-vehicle_plate_partial.png", "landscape-en-vehicle_result.png", "landscape-en-vehicle_summary_deny.png"]
    assert pygame.image.load(str(tmp_path / names[0])).get_size() == (800, 480)


# --- on the real display ------------------------------------------------------------------------------


@pytest.fixture
def handheld(tmp_path, monkeypatch):
    from sentinel.outbox import Outbox

    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")  # sound "plays" here as on a Pi, whatever this machine has
    display = PygameDisplay(DisplayConfig(type="pygame", width=800, height=480))
    controller = HandheldController(outbox=Outbox(tmp_path / "o.sqlite3", wall=WallClock()), device_id="d", site_id="s", display=display,
                                    language="en", battery=Battery("none"), ticker=False)
    yield display, controller
    controller.close()
    display.close()


def tap(display: PygameDisplay, button: str) -> None:
    wait_until(lambda: button in display._renderer.hits, what=f"button {button}")
    x, y = display._renderer.hits[button].center
    display.handle_pointer("down", x, y)
    display.handle_pointer("up", x, y)


def test_taps_on_the_vehicle_screens_reach_the_controller(handheld):
    display, controller = handheld
    wait_until(lambda: display.current.kind == ScreenKind.VEHICLE_IDLE, what="the Start screen")
    tap(display, "start")
    wait_until(lambda: controller.session is not None, what="a vehicle")
    wait_until(lambda: display.current.kind == ScreenKind.VEHICLE, what="the vehicle screen")
    tap(display, "plate")
    wait_until(lambda: display.current.kind == ScreenKind.PLATE, what="the keypad")
    for key in ("key:沪", "key:A", "key:1", "key:2", "key:3", "key:4", "key:5"):
        tap(display, key)
        wait_until(lambda k=key: display.current.vehicle is not None and display.current.vehicle.keypad is not None
                   and display.current.vehicle.keypad.text.endswith(k[4:]), what=f"{key} typed")
    tap(display, "key:ok")
    wait_until(lambda: controller.session.plate == "沪A12345", what="the plate")
    tap(display, "cancel")
    wait_until(lambda: controller.session is None, what="the vehicle cancelled")


def test_a_keyboard_types_the_plate_on_a_desktop(handheld):
    display, controller = handheld
    controller.start()
    controller.open_plate()
    wait_until(lambda: display.current.kind == ScreenKind.PLATE, what="the keypad")
    for ch in "沪a12345":
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=0, unicode=ch, mod=0, scancode=0))
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_RETURN, unicode="\r", mod=0, scancode=0))
    wait_until(lambda: controller.session.plate == "沪A12345", what="the typed plate")


def test_a_vehicle_screen_sounds_its_cue_once(handheld):
    display, controller = handheld
    from tests.test_vehicle import check

    controller.start()
    controller.session.add(check("a"))
    controller.finish()
    wait_until(lambda: "voice:pass" in display._sound.played, what="the vehicle's pass tone and voice")
    assert display._sound.available is True
    assert display._sound.played[-2:] == ["tone:pass", "voice:pass"]
    played = list(display._sound.played)
    controller._render()  # the same screen again, without a new verdict: silent
    time.sleep(0.2)
    assert display._sound.played == played


@pytest.mark.parametrize("size", [LAYOUTS["landscape"], LAYOUTS["portrait"]], ids=["landscape", "portrait"])
@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_a_full_minibus_summary_lists_everyone_who_failed_first(renderer, size, language):
    """Nine people, six failed: the summary has no room for nine lines, so the people named in
    the headline are listed (not the first seats), and a line says how many more there are."""
    sample = next(s for s in vehicle_stress_samples(language) if s.name == "vehicle_long_summary")
    draw(renderer, sample, size)
    words = " ".join(d.text for d in renderer.drawn)
    failed = [row for row in sample.screen.vehicle.rows if row.verdict != "pass"]
    listed = [row for row in failed if row.label in words]
    hidden = len(sample.screen.vehicle.rows) - sum(1 for row in sample.screen.vehicle.rows if row.label + " " in words + " ")
    assert listed and listed[0] == failed[0], [row.label for row in failed]
    if hidden:
        assert ("未列出" in words or "通过" in words) if language == "zh-CN" else "more" in words
    # a passed passenger never takes a line while a failed one is left out
    shown_pass = [row for row in sample.screen.vehicle.rows if row.verdict == "pass" and f"{row.label} {row.person}" in words]
    assert not shown_pass or len(listed) == len(failed)


def test_a_long_list_turns_back_a_page_and_shows_the_driver(renderer):
    """Nine people on a 7" handheld: the newest rows show and '↑ n more' is a touch target; turned
    back, the driver's row shows and the line offers the way back to the newest."""
    from dataclasses import replace

    sample = next(s for s in vehicle_stress_samples("zh-CN") if s.name == "vehicle_long_open")
    draw(renderer, sample, LAYOUTS["landscape"])
    assert "rows:older" in renderer.hits and not any(d.text.startswith("驾驶员") for d in renderer.drawn)
    older = replace(sample, screen=replace(sample.screen, vehicle=replace(sample.screen.vehicle, pages_back=9)))
    draw(renderer, older, LAYOUTS["landscape"])
    assert "rows:newest" in renderer.hits and "rows:older" not in renderer.hits
    assert any(d.text.startswith("驾驶员") for d in renderer.drawn)

"""Every screen the kiosk can show draws, for real (pygame, dummy SDL driver), in both designed
layouts and both languages: every ScreenKind, every reason the policy can give, every fault the
screen model knows, the offline banners. And when drawing fails anyway, the touchscreen shows the
screen's words plainly instead of freezing on the last picture."""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")


import pytest

pygame = pytest.importorskip("pygame", reason="pygame is a dev dependency (apt python3-pygame on the Pi)")

from sentinel.config import DisplayConfig
from sentinel.health import HealthStatus, Status
from sentinel.policy import REASON_TEXT, Verdict, VerdictKind
from sentinel.screens import FAULTS, VEHICLE_KINDS, Screen, ScreenKind, StatusBar
from tests.helpers import wait_until
from ui.layout import LAYOUTS
from ui.pygame_display import PygameDisplay
from ui.render import PLAIN_BG, Renderer
from ui.samples import SAMPLE_NOW, SHANGHAI, _status, vehicle_samples

LANGUAGES = ["zh-CN", "en"]
SIZES = {"landscape": LAYOUTS["landscape"], "portrait": LAYOUTS["portrait"]}
#: the verdict kind each reason comes with (the policy's; a reason drawn on the other kinds too)
PASS_REASONS = {"ok", "offline_allowed"}


def every_screen(language: str) -> list[tuple[str, Screen, StatusBar]]:
    """(name, screen, status bar) for every screen the pipeline, the handheld and the faults make."""
    online = StatusBar(site_name="Riverside Mall", online=True, outbox_depth=3, time=SAMPLE_NOW)
    offline = StatusBar(site_name="Riverside Mall", online=False, outbox_depth=40, alarm="Camera fault", time=SAMPLE_NOW)
    out: list[tuple[str, Screen, StatusBar]] = []
    for kind in (ScreenKind.IDLE, ScreenKind.CHECKING, ScreenKind.ONE_AT_A_TIME, ScreenKind.HOLD_CLOSER):
        out.append((f"prompt_{kind}", Screen.prompt(kind, language), online))
        out.append((f"prompt_{kind}_offline", Screen.prompt(kind, language, offline=True), offline))
    green = _status(Status.GREEN, "王*明", 20)
    for reason in REASON_TEXT:
        for verdict_kind in VerdictKind:
            verdict = Verdict(verdict_kind, reason, (("h", 48), ("n", 3)))
            for is_offline in (False, True):
                status = green if not is_offline else HealthStatus.unreachable(Status.TIMEOUT, "deadline")
                screen = Screen.result(verdict, status, language, is_offline, now=SAMPLE_NOW, tz=SHANGHAI)
                out.append((f"{verdict_kind}_{reason}_{'offline' if is_offline else 'online'}", screen, offline if is_offline else online))
        out.append((f"unknown_{reason}", Screen.unknown_code(Verdict(VerdictKind.DENY, reason, (("h", 48), ("n", 3))), language), online))
    for fault in (*FAULTS, "something-new"):
        out.append((f"fault_{fault}", Screen.fault(fault, language), offline))
    for sample in vehicle_samples(language):
        out.append((sample.name, sample.screen, sample.status))
    return out


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def test_the_walk_covers_every_screen_kind():
    kinds = {screen.kind for _, screen, _ in every_screen("en")}
    assert kinds == set(ScreenKind), set(ScreenKind) - kinds


@pytest.mark.parametrize("layout", SIZES)
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_screen_kind_reason_and_fault_renders(renderer, layout, language):
    size = SIZES[layout]
    surface = pygame.Surface(size)
    failed = []
    for name, screen, status in every_screen(language):
        try:
            renderer.draw(surface, screen, status, now=SAMPLE_NOW, language=language)
        except Exception as e:
            failed.append(f"{name}: {type(e).__name__}: {e}")
            continue
        words = {d.text for d in renderer.drawn}
        headline = screen.title or screen.message
        if screen.kind not in VEHICLE_KINDS:  # vehicle screens split their words over cards and rows
            assert headline in words, f"{name}: {headline!r} not drawn ({sorted(words)[:6]})"
        else:
            assert renderer.drawn, f"{name}: nothing drawn"
    assert not failed, "\n".join(failed)


def test_one_at_a_time_has_its_own_look(renderer):
    """Two faces in view: a request (not a verdict, not a fault), in words and with an icon."""
    surface = pygame.Surface(SIZES["landscape"])
    renderer.draw(surface, Screen.prompt(ScreenKind.ONE_AT_A_TIME, "en"), StatusBar(), now=SAMPLE_NOW)
    words = [d.text for d in renderer.drawn]
    assert "One person at a time" in words and "Only one person in front of the camera" in words
    idle = pygame.Surface(SIZES["landscape"])
    renderer.draw(idle, Screen.prompt(ScreenKind.IDLE, "en"), StatusBar(), now=SAMPLE_NOW)
    assert surface.get_at((400, 300)) != idle.get_at((400, 300))


def test_the_plain_screen_shows_the_words(renderer):
    surface = pygame.Surface(SIZES["portrait"])
    renderer.draw_plain(surface, Screen.fault("camera", "zh-CN"), StatusBar(alarm="摄像头无画面"), error="KeyError: 'x'")
    assert surface.get_at((2, 2))[:3] == PLAIN_BG
    rows = pygame.surfarray.array3d(surface)
    text_rows = [y for y in range(0, surface.get_height(), 8) if (rows[:, y] != PLAIN_BG).any()]
    assert len(text_rows) >= 4  # the headline, the message, the alarm, the error


# --- the touchscreen's draw path ---------------------------------------------------------------------


@pytest.fixture
def display():
    made = []

    def make(size=SIZES["landscape"], language="en"):
        w, h = size
        d = PygameDisplay(DisplayConfig(type="pygame", width=w, height=h, fps=30, mute=True), language=language)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


def test_two_faces_in_view_are_drawn_by_the_touchscreen(display):
    d = display()
    d.show(Screen.prompt(ScreenKind.ONE_AT_A_TIME, "en"))
    before = d.frames_drawn
    wait_until(lambda: d.frames_drawn > before + 1, what="frames of the one-at-a-time screen")
    assert d.fallback_frames == 0 and d.last_draw_error is None


def test_a_rendering_error_falls_back_to_a_plain_screen_not_a_frozen_one(display, monkeypatch):
    d = display()
    wait_until(lambda: d.frames_drawn > 0, what="the first frame")

    def broken(*args, **kwargs):
        raise KeyError("a bug in the renderer")

    monkeypatch.setattr(d._renderer, "draw", broken)
    d.show(Screen.fault("camera", "en"))
    wait_until(lambda: d.fallback_frames > 0, what="a plain frame")
    assert "KeyError" in d.last_draw_error
    assert d._canvas.get_at((2, 60))[:3] == PLAIN_BG  # the plain screen, not the old idle picture
    # the screen is not frozen: the next screen is drawn (plainly) as well
    frames = d.frames_drawn
    d.show(Screen.prompt(ScreenKind.IDLE, "en"))
    wait_until(lambda: d.frames_drawn > frames, what="the next screen")
    monkeypatch.undo()  # fixed (e.g. the screen kind that broke it is gone): normal drawing resumes
    d.show(Screen.prompt(ScreenKind.CHECKING, "en"))
    wait_until(lambda: d.last_draw_error is None, what="normal drawing again")

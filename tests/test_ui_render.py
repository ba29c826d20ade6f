"""The renderer: every screen draws in both layouts and both languages, the verdict colours
dominate, text stays in its box, and `sentinel screens` writes the full set (dummy SDL driver)."""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pygame = pytest.importorskip("pygame", reason="pygame is a dev dependency (apt python3-pygame on the Pi)")

from sentinel.config import ASSETS  # noqa: E402
from sentinel.frames import Frame  # noqa: E402
from sentinel.screens import Screen, ScreenKind, StatusBar  # noqa: E402
from ui.layout import LAYOUTS, Box, Layout  # noqa: E402
from ui.preview import Preview, cover, frame_surface  # noqa: E402
from ui.render import Renderer  # noqa: E402
from ui.samples import SAMPLE_NOW, samples, stress_samples  # noqa: E402

LANGUAGES = ["zh-CN", "en"]
#: the two designed shapes, and others a kiosk may have
SIZES = [LAYOUTS["landscape"], LAYOUTS["portrait"], (1280, 720), (480, 320), (720, 1280), (1024, 600)]


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


@pytest.fixture(scope="module")
def preview() -> Preview:
    from PIL import Image

    with Image.open(ASSETS / "scenes" / "02_green.png") as image:
        rgb = np.array(image.convert("RGB"))
        grey = np.array(image.convert("L"))
    p = Preview()
    p.frame = Frame(grey=grey, timestamp=0.0, sequence=7, colour=rgb)
    return p


def draw(renderer, sample, size, preview=None, language=None):
    surface = pygame.Surface(size)
    renderer.draw(surface, sample.screen, sample.status, now=SAMPLE_NOW, preview=preview, menu=sample.menu,
                  language=language or sample.screen.language)
    return surface


def check_text_in_boxes(renderer, size, name):
    screen_box = Box(0, 0, *size)
    assert renderer.drawn, f"{name}: no text drawn"
    for d in renderer.drawn:
        assert d.box.contains(d.ink), f"{name}: {d.role} {d.text!r} at {d.ink} outside its box {d.box}"
        assert screen_box.contains(d.ink), f"{name}: {d.role} {d.text!r} off screen"
    inks = [d.ink for d in renderer.drawn]
    for i, a in enumerate(inks):
        for b in inks[i + 1:]:
            overlap = pygame.Rect(a).clip(pygame.Rect(b))
            assert overlap.w * overlap.h == 0, f"{name}: texts overlap: {a} {b}"


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_screen_renders_with_text_inside_its_box(renderer, preview, size, language):
    for sample in samples(language):
        draw(renderer, sample, size, preview)
        check_text_in_boxes(renderer, size, f"{sample.name} {size}")
        assert not [d for d in renderer.drawn if d.truncated and d.role not in ("status", "status_bold")], sample.name


@pytest.mark.parametrize("size", [LAYOUTS["landscape"], LAYOUTS["portrait"]], ids=["landscape", "portrait"])
@pytest.mark.parametrize("language", LANGUAGES)
def test_long_names_and_every_reason_fit(renderer, size, language):
    """Every reason the policy can give, the longest name the service may send, a long site name,
    an alarm and a big outbox: nothing leaves its box; only the absurd name and the status bar's
    site name may be cut, every reason is shown whole, and at a size readable from 1.5 m."""
    short = min(size)
    for sample in stress_samples(language):
        draw(renderer, sample, size)
        check_text_in_boxes(renderer, size, sample.name)
        cut = {d.role for d in renderer.drawn if d.truncated}
        # the banner carries the alarm, here three alarms' worth of words
        assert cut <= {"person", "status", "banner", "banner_portrait"}, f"{sample.name}: {cut}"
        for d in renderer.drawn:
            if d.role in ("title", "message", "nat", "time", "prompt"):
                assert d.size >= round(0.05 * short), f"{sample.name}: {d.role} {d.text!r} at {d.size} px"


def colour_share(surface, kind: str) -> float:
    rgb = pygame.surfarray.array3d(surface).astype(int)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    mask = {
        "green": (g > r + 60) & (g > b + 40),
        "red": (r > g + 100) & (r > b + 100),
        "yellow": (r > 200) & (g > 150) & (b < 80),
    }[kind]
    return float(mask.mean())


@pytest.mark.parametrize("size", [LAYOUTS["landscape"], LAYOUTS["portrait"]], ids=["landscape", "portrait"])
@pytest.mark.parametrize("language", LANGUAGES)
def test_verdict_colours_dominate_the_pixels(renderer, size, language):
    by_name = {s.name: s for s in samples(language)}
    shares = {name: {c: colour_share(draw(renderer, by_name[name], size), c) for c in ("green", "red", "yellow")}
              for name in ("pass", "deny_nat", "deny_red", "manual", "unknown", "idle")}
    assert shares["pass"]["green"] > 0.6 and shares["pass"]["red"] < 0.01
    assert shares["deny_nat"]["red"] > 0.6 and shares["deny_nat"]["green"] < 0.01
    assert shares["deny_red"]["red"] > 0.6
    assert shares["manual"]["yellow"] > 0.6
    assert all(v < 0.01 for v in shares["unknown"].values())
    assert shares["idle"]["red"] < 0.05


def test_result_screens_show_icon_and_words_not_only_colour(renderer):
    """Pass and deny differ in the icon's pixels too: compare them in grey."""
    by_name = {s.name: s for s in samples("en")}
    layout = Layout(*LAYOUTS["landscape"])
    icon = layout.result(False)["icon"]
    greys = []
    for name in ("pass", "deny_nat"):
        surface = draw(renderer, by_name[name], layout.screen[2:])
        roles = {d.role: d.text for d in renderer.drawn}
        assert roles["title"] in ("Please pass", "Entry refused")
        pixels = pygame.surfarray.array3d(surface.subsurface(pygame.Rect(icon))).mean(axis=2)
        greys.append(pixels > 128)
    assert (greys[0] != greys[1]).mean() > 0.05


def test_idle_shows_the_camera_frame_mirrored(renderer, preview):
    sample = next(s for s in samples("zh-CN") if s.name == "idle")
    surface = draw(renderer, sample, LAYOUTS["landscape"], preview)
    box = Layout(*LAYOUTS["landscape"]).idle(False)["preview"]
    shown = pygame.surfarray.array3d(surface.subsurface(pygame.Rect(box))).swapaxes(0, 1)
    expected = pygame.surfarray.array3d(cover(frame_surface(preview.frame), (box.w, box.h), mirror=True)).swapaxes(0, 1)
    edge = 2  # the frame's outline
    assert np.abs(shown[edge:-edge, edge:40].astype(int) - expected[edge:-edge, edge:40]).mean() < 1.0
    empty = draw(renderer, sample, LAYOUTS["landscape"], None)  # no frame yet: a placeholder, not a crash
    assert empty.get_at(box.center)[:3] != (0, 0, 0)


def test_grey_frames_and_odd_shapes_preview(renderer):
    grey = np.tile(np.arange(320, dtype=np.uint8)[None, :], (240, 1))
    p = Preview(mirror=False)
    p.frame = Frame(grey=grey, timestamp=0.0, sequence=1)
    image = p(Box(0, 0, 200, 300))  # taller than the frame: cropped to fill
    assert image.get_size() == (200, 300)
    assert p(Box(0, 0, 200, 300)) is image and p.conversions == 1  # one conversion per frame
    left, right = image.get_at((0, 150))[0], image.get_at((199, 150))[0]
    assert left < right  # not mirrored: the dark side stays left


def test_checking_spinner_turns(renderer):
    screen = Screen.prompt(ScreenKind.CHECKING, "en")
    a, b = pygame.Surface((800, 480)), pygame.Surface((800, 480))
    renderer.draw(a, screen, StatusBar(), phase=0)
    renderer.draw(b, screen, StatusBar(), phase=3)
    assert pygame.surfarray.array3d(a).tobytes() != pygame.surfarray.array3d(b).tobytes()


def test_menu_buttons_have_hit_boxes(renderer):
    for language in LANGUAGES:
        for sample in samples(language):
            if sample.menu is None:
                continue
            for size in (LAYOUTS["landscape"], LAYOUTS["portrait"]):
                draw(renderer, sample, size, language=language)
                hits = renderer.hits
                assert {b.id for b in sample.menu.buttons} <= set(hits), sample.name
                boxes = list(hits.values())
                for i, a in enumerate(boxes):
                    assert Box(0, 0, *size).contains(a)
                    for b in boxes[i + 1:]:
                        assert pygame.Rect(a).clip(pygame.Rect(b)).w == 0 or pygame.Rect(a).clip(pygame.Rect(b)).h == 0
                check_text_in_boxes(renderer, size, sample.name)


@pytest.mark.slow
def test_sentinel_screens_writes_the_full_set(tmp_path):
    result = subprocess.run([sys.executable, "-m", "sentinel", "screens", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    files = sorted(p.name for p in tmp_path.glob("*.png"))
    names = {s.name for s in samples("en")}
    assert len(files) == 2 * 2 * len(names)
    for layout in ("landscape", "portrait"):
        for language in LANGUAGES:
            for name in names:
                path = tmp_path / f"{layout}-{language}-{name}.png"
                assert path.is_file(), path
    assert pygame.image.load(str(tmp_path / "portrait-zh-CN-pass.png")).get_size() == (1080, 1920)


def test_sentinel_screens_hash_pin_from_stdin():
    result = subprocess.run([sys.executable, "-m", "sentinel", "screens", "--hash-pin"], input="135790\n",
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip().splitlines()[-1]
    assert line.startswith('technician_pin_hash = "pbkdf2_sha256$')
    from ui.pin import verify_pin

    assert verify_pin("135790", line.split('"')[1])
    bad = subprocess.run([sys.executable, "-m", "sentinel", "screens", "--hash-pin"], input="12\n",
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "6 to 8 digits" in bad.stderr


def test_docs_screenshots_are_small():
    folder = Path(__file__).resolve().parents[1] / "docs" / "screens"
    shots = list(folder.glob("*.png"))
    assert shots, "docs/screens has the README's pictures"
    assert all(p.stat().st_size < 200_000 for p in shots)

"""The live camera view is drawn in colour, as a person expects to see themselves: `open_camera`
asks its backend for colour when told to (the kiosk does when it has a touchscreen), and the
idle screen's view then shows the real picture's colours, not grey. Real images, real drawing."""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pygame = pytest.importorskip("pygame", reason="pygame is a dev dependency (apt python3-pygame on the Pi)")

from hardware.camera import open_camera  # noqa: E402
from sentinel.config import ASSETS, ReplayCameraConfig  # noqa: E402
from sentinel.screens import Screen, ScreenKind, StatusBar  # noqa: E402
from ui.layout import LAYOUTS, Layout  # noqa: E402
from ui.preview import Preview  # noqa: E402
from ui.render import Renderer  # noqa: E402
from ui.samples import SAMPLE_NOW  # noqa: E402

SCENE = ASSETS / "scenes" / "02_green.png"  # a person holding a phone with a green code


def first_frame(colour: bool):
    source = open_camera(ReplayCameraConfig(path=SCENE, fps=50, frames_per_image=1), colour=colour)
    source.start()
    try:
        frame = source.read(timeout=5.0)
    finally:
        source.close()
    assert frame is not None
    return frame


def saturation(rgb: np.ndarray) -> float:
    """Mean spread between the largest and smallest channel: 0 for a grey picture."""
    rgb = rgb.astype(int)
    return float((rgb.max(axis=-1) - rgb.min(axis=-1)).mean())


def test_open_camera_gives_colour_when_asked_and_grey_only_otherwise():
    coloured = first_frame(colour=True)
    assert coloured.colour is not None and coloured.colour.shape[:2] == coloured.grey.shape
    assert saturation(coloured.colour) > 10
    assert first_frame(colour=False).colour is None


@pytest.mark.parametrize("layout", ["landscape", "portrait"])
def test_the_idle_view_is_drawn_in_colour(layout):
    size = LAYOUTS[layout]
    preview = Preview(mirror=True)
    preview.frame = first_frame(colour=True)
    surface = pygame.Surface(size)
    Renderer().draw(surface, Screen.prompt(ScreenKind.IDLE, "zh-CN"), StatusBar(site_name="东门"), now=SAMPLE_NOW, preview=preview)
    box = Layout(*size).idle(False)["preview"]
    shown = pygame.surfarray.array3d(surface.subsurface(pygame.Rect(box)))
    assert saturation(shown) > 10

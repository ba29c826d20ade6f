"""Opening the display's window: full screen on the Pi (KMSDRM, fbcon: no window system), a
window on a desktop, shrunk to fit when the layout is larger than the desktop.

Called on the render thread (SDL wants one thread for the screen). A failure to open is turned
into words by `explain` (what to do: the console's TTY, a desktop, SDL_VIDEODRIVER=dummy for a
headless test, or display.type = "console"); the display raises it as a DisplayError in the
caller's thread. SDL drawing into memory because it found no screen is not an error, but is
logged, so that a kiosk nobody can see does not stay silent.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from sentinel.config import DisplayConfig

log = logging.getLogger("ui.display")

#: drivers without windows: always full screen there
FULLSCREEN_DRIVERS = {"kmsdrm", "fbcon", "directfb"}
TITLE = "数字哨兵 · Digital sentinel"


@dataclass(frozen=True)
class Window:
    surface: Any  # pygame.Surface
    driver: str
    fullscreen: bool


def open_window(pygame: Any, config: DisplayConfig) -> Window:
    """Initialise pygame's display and open the screen as `config` asks (fullscreen, width,
    height, rotation: a turned panel gets a window of the turned size)."""
    pygame.display.init()
    driver = pygame.display.get_driver()
    if driver.lower() in ("offscreen", "dummy") and not os.environ.get("SDL_VIDEODRIVER"):
        # SDL found no screen (no DISPLAY or WAYLAND_DISPLAY, no KMS) and draws into memory:
        # the kiosk runs, but nobody sees it, so say so rather than stay silent
        log.warning("display: no screen to draw on (DISPLAY is %s, WAYLAND_DISPLAY is %s): drawing off screen; "
                    "start it on the kiosk's screen, or set DISPLAY", os.environ.get("DISPLAY") or "not set",
                    os.environ.get("WAYLAND_DISPLAY") or "not set")
    fullscreen = config.fullscreen or driver.lower() in FULLSCREEN_DRIVERS
    if fullscreen:
        surface = pygame.display.set_mode((0, 0), pygame.FULLSCREEN)
        pygame.mouse.set_visible(False)
    else:
        w, h = config.width, config.height
        if config.rotation in (90, 270):
            w, h = h, w
        if driver.lower() in ("x11", "wayland", "windows", "cocoa"):
            w, h = fit_on_desktop(pygame, w, h)
        surface = pygame.display.set_mode((w, h), pygame.RESIZABLE)
    pygame.display.set_caption(TITLE)
    return Window(surface, driver, fullscreen)


def fit_on_desktop(pygame, w: int, h: int) -> tuple[int, int]:
    """A window larger than the desktop (a 1080×1920 pillar layout on a laptop) is shrunk to fit,
    keeping its shape, so the layout stays the one asked for."""
    try:
        desktop_w, desktop_h = pygame.display.get_desktop_sizes()[0]
    except (pygame.error, IndexError, AttributeError):
        return w, h
    scale = min(1.0, desktop_w * 0.95 / w, desktop_h * 0.9 / h)
    if scale < 1.0 and desktop_w > 0 and desktop_h > 0:
        log.info("display: a %dx%d window does not fit the %dx%d desktop; shrunk to %.0f %%", w, h, desktop_w, desktop_h, scale * 100)
        return max(160, int(w * scale)), max(120, int(h * scale))
    return w, h


def explain(error: BaseException) -> str:
    message = str(error) or type(error).__name__
    hint = (
        "no screen for pygame: on the Pi run the kiosk on the console (the systemd unit's TTYPath=/dev/tty1 "
        "with PAMName=login) or under a desktop; for a headless test set SDL_VIDEODRIVER=dummy; "
        "or set display.type = \"console\""
    )
    return f"cannot open the display ({message}); {hint}"

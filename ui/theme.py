"""The kiosk's colours: each screen kind's theme, the status bar, the technician menu, the plain
fallback screen. One home for them: the renderer, the vehicle screens (ui/vehicle.py) and the
display's last-resort fill (ui/pygame_display.py) all take them from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from sentinel.screens import ScreenKind

Colour = tuple[int, int, int]
WHITE: Colour = (255, 255, 255)
BLACK: Colour = (0, 0, 0)
INK: Colour = (26, 26, 26)
AMBER: Colour = (255, 179, 0)
GREEN_DOT: Colour = (76, 217, 100)


@dataclass(frozen=True)
class Theme:
    bg: Colour
    fg: Colour  # headline and main text
    soft: Colour  # secondary text
    disc: Colour | None  # the circle behind the icon
    ink: Colour  # the icon itself


THEMES: dict[ScreenKind, Theme] = {
    ScreenKind.IDLE: Theme((11, 29, 51), WHITE, (172, 196, 222), None, WHITE),
    ScreenKind.CHECKING: Theme((13, 71, 161), WHITE, (200, 220, 245), None, WHITE),
    ScreenKind.PASS: Theme((0, 128, 60), WHITE, (220, 245, 228), WHITE, (0, 128, 60)),
    ScreenKind.DENY: Theme((200, 30, 30), WHITE, (255, 226, 226), WHITE, (200, 30, 30)),
    ScreenKind.MANUAL_CHECK: Theme((255, 193, 7), INK, (70, 54, 0), INK, (255, 193, 7)),
    ScreenKind.UNKNOWN_CODE: Theme((69, 90, 100), WHITE, (214, 222, 226), WHITE, (69, 90, 100)),
    ScreenKind.FAULT: Theme((38, 50, 56), WHITE, (207, 216, 220), AMBER, (38, 50, 56)),
    # several faces in view: a request, not a verdict, so neither green nor red nor the amber of
    # "staff will check"; the same deep blue family as the prompts, with the amber disc of a notice
    ScreenKind.ONE_AT_A_TIME: Theme((21, 52, 95), WHITE, (190, 210, 235), AMBER, (21, 52, 95)),
    # a code seen but not read: the camera view stays (where to hold the phone) and the request is
    # in amber on the prompts' blue, so that it reads as a change from "show your code"
    ScreenKind.HOLD_CLOSER: Theme((21, 52, 95), AMBER, (214, 226, 240), None, WHITE),
}
#: a kind without a theme of its own (a kind added later) is drawn like a fault rather than not at all
FALLBACK_THEME = THEMES[ScreenKind.FAULT]
#: the plain screen drawn when drawing the real one failed (`Renderer.draw_plain`)
PLAIN_BG: Colour = (38, 50, 56)
STATUS_BG: Colour = (16, 20, 24)
STATUS_FG: Colour = (236, 239, 241)
MENU_BG: Colour = (28, 32, 38)
BUTTON_BG: Colour = (58, 68, 82)
BUTTON_OFF: Colour = (40, 45, 52)
BUTTON_FG: Colour = WHITE
PREVIEW_EMPTY: Colour = (24, 44, 68)

"""Where things go, for any screen size: pure geometry, no pygame.

Two shapes are designed for, and everything in between follows from the aspect ratio:

- landscape, e.g. 800×480 (a 7" touchscreen on a handheld or a small pillar): the camera view
  or the verdict icon on the left, words on the right;
- portrait, e.g. 1080×1920 (a pillar): a column, icon or camera view in the middle.

Sizes are fractions of the shorter side, so that text is as large as the screen allows. A queue
reads the screen from 1.5 m: every line a person must read is at least 7 mm high, which is 36 px
on a 7" 800×480 panel (5.2 px/mm), 7.5 % of the short side (`READABLE`; 81 px on a 1080×1920
pillar). The reason under a verdict's headline is never smaller than the lines under it, and the
headline is up to 20 %. Only the technician's own screens (menu, keypad) go smaller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

LANDSCAPE = (800, 480)
PORTRAIT = (1080, 1920)
LAYOUTS = {"landscape": LANDSCAPE, "portrait": PORTRAIT}


class Box(NamedTuple):
    x: int
    y: int
    w: int
    h: int

    @property
    def right(self) -> int:
        return self.x + self.w

    @property
    def bottom(self) -> int:
        return self.y + self.h

    @property
    def center(self) -> tuple[int, int]:
        return self.x + self.w // 2, self.y + self.h // 2

    def inset(self, dx: int, dy: int | None = None) -> "Box":
        dy = dx if dy is None else dy
        return Box(self.x + dx, self.y + dy, max(0, self.w - 2 * dx), max(0, self.h - 2 * dy))

    def contains(self, other: "Box") -> bool:
        return other.x >= self.x and other.y >= self.y and other.right <= self.right and other.bottom <= self.bottom

    def hit(self, x: float, y: float) -> bool:
        return self.x <= x < self.right and self.y <= y < self.bottom


@dataclass(frozen=True)
class TextStyle:
    """How a role's text is sized, as fractions of the short side."""

    max_frac: float
    min_frac: float
    max_lines: int
    bold: bool = False


#: the smallest text a person at the gate must read: 7 mm from 1.5 m, 36 px on a 7" 800×480 panel
READABLE = 0.075

#: text roles on the screens; sizes in fractions of the short side of the screen
STYLES = {
    "title": TextStyle(0.20, 0.08, 2, bold=True),
    # a verdict card: the reason is never smaller than what follows it (its least is their most)
    "message": TextStyle(0.11, 0.085, 3, bold=True),
    "person": TextStyle(0.085, READABLE, 2, bold=True),
    "code": TextStyle(READABLE, READABLE, 2),
    "nat": TextStyle(READABLE, READABLE, 2),
    "time": TextStyle(READABLE, READABLE, 2),
    "second": TextStyle(READABLE, READABLE, 3),  # the verdict in the other language
    "hint": TextStyle(READABLE, READABLE, 2),
    "prompt": TextStyle(0.13, 0.08, 2, bold=True),
    "clock": TextStyle(0.16, 0.1, 1, bold=True),  # the idle screen's clock
    "date": TextStyle(READABLE, READABLE, 1),
    "help": TextStyle(READABLE, READABLE, 3),  # what to do without a phone
    "queue": TextStyle(READABLE, READABLE, 2, bold=True),  # one at a time, 1 m apart (while people come through)
    "banner": TextStyle(READABLE, READABLE, 1, bold=True),
    "banner_portrait": TextStyle(0.06, 0.04, 2, bold=True),  # 43-65 px (10 mm and more): a pillar's width is the limit
    "status": TextStyle(READABLE, 0.03, 1),  # also at most 70 % of the bar's height
    "status_bold": TextStyle(READABLE, 0.03, 1, bold=True),
    "menu_title": TextStyle(0.06, 0.04, 1, bold=True),
    "button": TextStyle(0.05, 0.032, 2, bold=True),
    "info": TextStyle(0.042, 0.03, 2),
    "pin": TextStyle(0.08, 0.04, 1, bold=True),
}


@dataclass(frozen=True)
class Layout:
    width: int
    height: int

    @staticmethod
    def named(name: str) -> "Layout":
        return Layout(*LAYOUTS[name])

    @property
    def portrait(self) -> bool:
        return self.height > self.width

    @property
    def name(self) -> str:
        return "portrait" if self.portrait else "landscape"

    @property
    def short(self) -> int:
        return min(self.width, self.height)

    @property
    def margin(self) -> int:
        return max(6, round(self.short * 0.03))

    def px(self, fraction: float) -> int:
        return max(1, round(self.short * fraction))

    @property
    def screen(self) -> Box:
        return Box(0, 0, self.width, self.height)

    @property
    def status_bar(self) -> Box:
        return Box(0, 0, self.width, max(28, self.px(0.085 if self.portrait else 0.105)))

    def banner(self) -> Box:
        return Box(0, self.status_bar.bottom, self.width, max(26, self.px(0.115 if self.portrait else 0.1)))

    def content(self, banner: bool) -> Box:
        top = self.banner().bottom if banner else self.status_bar.bottom
        return Box(0, top, self.width, self.height - top)

    # --- idle: camera view with a framing guide, the prompt in words ------------------------------

    def idle(self, banner: bool) -> dict[str, Box]:
        """The camera view with its framing guide, and a column for the words: the prompt in
        both languages, what to do without a phone, a large clock and the date (`ui.render`
        stacks them)."""
        c = self.content(banner)
        m = self.margin
        if self.portrait:
            top = Box(m, c.y + m, c.w - 2 * m, round(c.h * 0.17))
            side = min(c.w - 2 * m, round(c.h * 0.38))
            preview = Box((c.w - side) // 2, top.bottom + m, side, side)
            column = Box(m, preview.bottom + m, c.w - 2 * m, c.bottom - preview.bottom - 2 * m)
            return {"top": top, "preview": preview, "column": column}
        room = c.inset(m)
        pw = round(c.w * 0.42)
        ph = min(room.h, pw * 3 // 4)
        pw = ph * 4 // 3
        preview = Box(room.x, room.y + (room.h - ph) // 2, pw, ph)
        column = Box(preview.right + m, room.y, room.right - preview.right - m, room.h)
        return {"preview": preview, "column": column}

    # --- verdicts, checking, faults: a big icon and rows of words -------------------------------

    def result(self, banner: bool) -> dict[str, Box]:
        """The icon's box and the column the card's rows are stacked in (by `ui.render`, which
        knows how tall each row's text comes out)."""
        c = self.content(banner)
        m = self.margin
        if self.portrait:
            side = min(round(c.w * 0.34), round(c.h * 0.16))
            icon = Box((c.w - side) // 2, c.y + 2 * m, side, side)
            column = Box(m, icon.bottom + 2 * m, c.w - 2 * m, c.bottom - icon.bottom - 4 * m)
        else:
            left = round(c.w * 0.27)
            side = min(left - 2 * m, round(c.h * 0.5))
            icon = Box((left - side) // 2 + m // 2, c.y + (c.h - side) // 2, side, side)
            column = Box(left + m, c.y + m // 2, c.w - left - 2 * m, c.h - m)
        return {"icon": icon, "column": column}

    # --- status bar: site name left; alarm, online, outbox and time right ------------------------

    def status_items(self) -> dict[str, Box]:
        bar = self.status_bar
        m = self.margin
        h = bar.h
        time_w = self.px(0.2 if not self.portrait else 0.18)
        outbox_w = self.px(0.2)
        online_w = self.px(0.17)
        x = bar.right - m - time_w
        boxes = {"time": Box(x, 0, time_w, h)}
        x -= outbox_w
        boxes["outbox"] = Box(x, 0, outbox_w, h)
        x -= online_w
        boxes["online"] = Box(x, 0, online_w, h)
        boxes["left"] = Box(m, 0, max(0, x - 2 * m), h)
        return boxes

    # --- technician menu -------------------------------------------------------------------------

    def pin_pad(self) -> dict[str, Box]:
        c = self.content(False).inset(self.margin)
        m = self.margin
        title_h = self.px(0.1)
        title = Box(c.x, c.y, c.w - self.px(0.3), title_h)
        cancel = Box(c.right - self.px(0.28), c.y, self.px(0.28), title_h)
        dots = Box(c.x, title.bottom, c.w, self.px(0.1))
        message = Box(c.x, dots.bottom, c.w, self.px(0.08))
        pad_area = Box(c.x, message.bottom + m // 2, c.w, c.bottom - message.bottom - m // 2)
        key_h = min((pad_area.h - 3 * (m // 2)) // 4, self.px(0.25))
        key_w = min((pad_area.w - 2 * (m // 2)) // 3, key_h * 2 if not self.portrait else self.px(0.3))
        pad_w = 3 * key_w + 2 * (m // 2)
        x0 = pad_area.x + (pad_area.w - pad_w) // 2
        boxes = {"title": title, "cancel": cancel, "dots": dots, "message": message}
        for i in range(12):
            r, col = divmod(i, 3)
            boxes[f"key{i}"] = Box(x0 + col * (key_w + m // 2), pad_area.y + r * (key_h + m // 2), key_w, key_h)
        return boxes

    def menu(self, n_buttons: int) -> dict[str, Box]:
        c = self.content(False).inset(self.margin)
        m = self.margin
        title = Box(c.x, c.y, c.w, self.px(0.1))
        cols = 4 if not self.portrait else 2
        rows = -(-n_buttons // cols)
        bh = self.px(0.14) if not self.portrait else self.px(0.16)
        gap = m // 2
        bw = (c.w - (cols - 1) * gap) // cols
        boxes = {"title": title}
        for i in range(n_buttons):
            r, col = divmod(i, cols)
            boxes[f"button{i}"] = Box(c.x + col * (bw + gap), title.bottom + r * (bh + gap), bw, bh)
        top = title.bottom + rows * (bh + gap) + gap
        boxes["info"] = Box(c.x, top, c.w, c.bottom - top)
        return boxes

    def menu_preview(self) -> dict[str, Box]:
        c = self.content(False).inset(self.margin)
        info_h = self.px(0.09)
        room = Box(c.x, c.y, c.w, c.h - info_h - self.margin)
        pw = min(room.w, room.h * 4 // 3)
        ph = pw * 3 // 4
        preview = Box(room.x + (room.w - pw) // 2, room.y + (room.h - ph) // 2, pw, ph)
        return {"preview": preview, "info": Box(c.x, c.bottom - info_h, c.w, info_h)}

"""Drawing one frame: a Screen, the status bar, the camera view and the technician menu.

`Renderer.draw` is a pure function of its inputs onto a pygame Surface, so the kiosk's render
thread, `sentinel screens` and the tests all draw exactly the same pixels. Text is fitted into
its box (wrapped, shrunk, and at worst cut with "…"); every piece of text drawn is logged with
its box in `Renderer.drawn`, which is how the tests prove nothing spills out.

Rendered text, fitted layouts and icons are cached, so a frame that only has a new camera image
costs a fill, a scaled blit and a handful of cached blits.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import pygame  # noqa: E402
import pygame.freetype  # noqa: E402

from sentinel.locale import message  # noqa: E402
from sentinel.screens import CAMERA_KINDS, VEHICLE_KINDS, Screen, ScreenKind, StatusBar  # noqa: E402
from ui import vehicle as vehicle_screens  # noqa: E402
from ui.fonts import FontSet, find_cjk_fonts  # noqa: E402
from ui.icons import icon_surface  # noqa: E402
from ui.layout import STYLES, Box, Layout  # noqa: E402
from ui.preview import draw_preview  # noqa: E402
from ui.render_menu import draw_menu  # noqa: E402
from ui.render_status import draw_status_bar  # noqa: E402
from ui.strings import text as ui_text  # noqa: E402
from ui.technician import MenuState, MenuView  # noqa: E402
from ui.text import Fit, fit_text  # noqa: E402
from ui.theme import (  # noqa: E402
    AMBER,
    BLACK,
    FALLBACK_THEME,
    INK,
    MENU_BG,
    PLAIN_BG,
    THEMES,
    WHITE,
    Colour,
    Theme,
)

_REFERENCE_SIZE = 100  # px: text widths are measured once at this size and scaled


@dataclass(frozen=True)
class DrawnText:
    role: str
    text: str
    ink: Box  # where the glyphs are
    box: Box  # the box they had to stay in
    truncated: bool
    size: int  # font size in px


def _date_text(when: datetime, language: str) -> str:
    """'4月12日 星期二' / 'Tue 12 Apr 2022': the idle screen's date, under its clock (the
    message `ui.date`, its weekday and month names from the catalogue, not the C library's locale)."""
    return message("ui.date", language, year=when.year, month=when.month, day=when.day,
                   weekday=message(f"ui.weekday.{when.weekday()}", language), month_name=message(f"ui.month.{when.month}", language))


def _box(rect: pygame.Rect) -> Box:
    return Box(rect.x, rect.y, rect.w, rect.h)


class Renderer:
    def __init__(self, fonts: FontSet | None = None):
        if not pygame.freetype.get_init():
            pygame.freetype.init()
        fonts = fonts or find_cjk_fonts()
        self.fonts = fonts
        self._regular = pygame.freetype.Font(fonts.regular.path, 24, font_index=fonts.regular.index)
        self._bold = (
            pygame.freetype.Font(fonts.bold.path, 24, font_index=fonts.bold.index) if fonts.bold else self._regular
        )
        self._synthetic_bold = fonts.bold is None
        for font in (self._regular, self._bold):
            font.antialiased = True
            font.pad = False
        self.drawn: list[DrawnText] = []
        self.hits: dict[str, Box] = {}  # technician menu buttons of the last frame
        self._cached_text = lru_cache(maxsize=1024)(self._render_text)
        self._cached_fit = lru_cache(maxsize=2048)(self._fit)
        self._cached_reference_width = lru_cache(maxsize=8192)(self._reference_width)

    # --- text ------------------------------------------------------------------------------------

    def _font(self, bold: bool) -> tuple[pygame.freetype.Font, int]:
        style = pygame.freetype.STYLE_STRONG if bold and self._synthetic_bold else pygame.freetype.STYLE_DEFAULT
        return (self._bold if bold else self._regular), style

    def measure(self, text: str, size: int, bold: bool = False) -> int:
        font, style = self._font(bold)
        return font.get_rect(text, style=style, size=size).width if text else 0

    def _render_text(self, text: str, size: int, colour: Colour, bold: bool) -> tuple[pygame.Surface, pygame.Rect]:
        font, style = self._font(bold)
        return font.render(text, colour, style=style, size=size)

    def _reference_width(self, text: str, bold: bool) -> int:
        return self.measure(text, _REFERENCE_SIZE, bold)

    def _fit(self, text: str, w: int, h: int, role: str, short: int, cap: int | None) -> Fit:
        """Searching for the size measures the text at many sizes, and FreeType loads the glyphs
        anew at each one (65 µs a call): so the search estimates widths from one reference size
        (text width grows in proportion to size, give or take hinting, hence the 2 % margin), and
        only the answer is measured exactly; should it not fit after all, the exact search runs."""
        style = STYLES[role]
        top = max(1, round(short * style.max_frac))
        sizes = {"max_size": min(top, cap) if cap else top, "min_size": max(1, round(short * style.min_frac)),
                 "max_lines": style.max_lines}

        def estimate(t: str, size: int) -> int:
            return math.ceil(self._cached_reference_width(t, style.bold) * size / _REFERENCE_SIZE * 1.02) + 1

        fit = fit_text(text, w, h, estimate, **sizes)
        if any(self.measure(line, fit.size, style.bold) > w for line in fit.lines):
            fit = fit_text(text, w, h, lambda t, size: self.measure(t, size, style.bold), **sizes)
        return fit

    def text(
        self, surface: pygame.Surface, text: str, box: Box, role: str, colour: Colour, short: int,
        align: str = "left", valign: str = "center", cap: int | None = None, fit: Fit | None = None,
    ) -> Box | None:
        """Fit `text` into `box` (no larger than `cap` px) and draw it; returns the ink's bounding box."""
        if not text or box.w <= 0 or box.h <= 0:
            return None
        bold = STYLES[role].bold
        fit = fit or self._cached_fit(text, box.w, box.h, role, short, cap)
        block = len(fit.lines) * fit.line_height
        top = box.y + {"top": 0, "center": (box.h - block) // 2, "bottom": box.h - block}[valign]
        ink_all: pygame.Rect | None = None
        for i, line in enumerate(fit.lines):
            if not line:
                continue
            surf, rect = self._cached_text(line, fit.size, colour, bold)
            baseline = top + i * fit.line_height + round(fit.size * 1.02)
            x = {"left": box.x, "center": box.x + (box.w - rect.w) // 2, "right": box.right - rect.w}[align]
            ink = pygame.Rect(x, baseline - rect.y, rect.w, rect.h)
            ink.clamp_ip(pygame.Rect(box))  # a glyph poking a pixel past the line box stays inside
            surface.blit(surf, ink)
            ink_all = ink if ink_all is None else ink_all.union(ink)
        if ink_all is None:
            return None
        self.drawn.append(DrawnText(role, text, _box(ink_all), box, fit.truncated, fit.size))
        return _box(ink_all)

    # --- one frame -------------------------------------------------------------------------------

    def draw(
        self,
        surface: pygame.Surface,
        screen: Screen,
        status: StatusBar,
        *,
        now: datetime | None = None,
        preview: Callable[[Box], pygame.Surface | None] | None = None,
        menu: MenuView | None = None,
        phase: int = 0,
        language: str | None = None,
    ) -> None:
        """Draw everything. `preview(box)` gives the camera image scaled to the box (or None);
        `phase` (0..11) turns the checking spinner; `language` is the chrome's (default: the screen's)."""
        layout = Layout(*surface.get_size())
        language = language or screen.language
        self.drawn = []
        self.hits = {}
        if menu is not None and menu.state != MenuState.CLOSED:
            surface.fill(MENU_BG)
            draw_menu(self, surface, layout, menu, preview, language)
        elif screen.kind in VEHICLE_KINDS:  # a handheld's vehicle screens (ui/vehicle.py)
            vehicle_screens.draw(self, surface, layout, screen, preview, phase, language, self._banner_text(screen, status))
        else:
            banner = self._banner_text(screen, status)
            theme = THEMES.get(screen.kind, FALLBACK_THEME)
            surface.fill(theme.bg)
            if banner:
                self._banner(surface, layout, banner)
            if screen.kind in CAMERA_KINDS:
                self._idle(surface, layout, screen, theme, bool(banner), preview, status.time or now)
            else:
                self._result(surface, layout, screen, theme, bool(banner), phase, language)
        draw_status_bar(self, surface, layout, status, now, language)

    @staticmethod
    def _banner_text(screen: Screen, status: StatusBar) -> str:
        """The amber strip under the status bar: offline, and the device's alarm (a camera that
        stopped…), at a size a person reads, instead of squeezed into the status bar."""
        language = screen.language
        words = []
        if screen.offline:
            words.append(message("screen.offline_decision", language))
        elif status.online is False:
            words.append(message("screen.offline_mode", language))
        if status.alarm:
            words.append(status.alarm)
        return " · ".join(words)

    def _banner(self, surface, layout: Layout, text: str) -> None:
        box = layout.banner()
        surface.fill(AMBER, pygame.Rect(box))
        m = layout.margin
        side = round(box.h * 0.72)
        gap = max(4, m // 2)
        if layout.portrait:  # icon and words centred together
            inset = m + side + gap
            ink = self.text(surface, text, Box(box.x + inset, box.y, box.w - 2 * inset, box.h), "banner_portrait", INK, layout.short, align="center")
        else:
            ink = self.text(surface, text, Box(box.x + m + side + gap, box.y, box.w - 2 * m - side - gap, box.h), "banner", INK, layout.short)
        x = (ink.x if ink else box.x + m + side + gap) - gap - side
        surface.blit(icon_surface("warning", side, INK, AMBER), (x, box.y + (box.h - side) // 2))

    def draw_plain(self, surface, screen: Screen, status: StatusBar | None = None, *, error: str = "") -> None:
        """The screen's words on a plain background, with nothing but the font: what the display
        shows when `draw` failed (a bug, a screen kind this renderer does not know), so that a
        person still reads something current and the screen never stays frozen on an old verdict.
        Each line is shortened with "…" to fit; no layout, icons, caches or status bar."""
        surface.fill(PLAIN_BG)
        w, h = surface.get_size()
        short = max(1, min(w, h))
        size = max(10, round(short * 0.08))
        margin = max(4, round(short * 0.04))
        lines = [t for t in screen.lines if t] or [message("screen.fault.generic", screen.language)]
        if status is not None and status.alarm:
            lines.append(status.alarm)
        font, style = self._font(False)
        room = w - 2 * margin

        def measure(t: str, px: int) -> int:
            return font.get_rect(t, style=style, size=px).width if t else 0

        y = margin
        for i, line in enumerate(lines):
            line_size = round(size * 1.3) if i == 0 else size
            if y + line_size > h - margin:
                break
            try:  # wrapped into up to three lines, shrunk to half size at most
                fit = fit_text(line, room, 4 * line_size, measure, max_size=line_size,
                               min_size=max(8, line_size // 2), max_lines=3, line_factor=1.4)
                rows, line_size = list(fit.lines), fit.size
            except Exception:  # noqa: BLE001 - the fallback must not need the fitting to work
                rows = [line]
            for row in rows:
                if y + line_size > h - margin:
                    break
                while row and measure(row, line_size) > room:
                    row = row[:-2] + "…" if len(row) > 2 else ""
                if row:
                    font.render_to(surface, (margin, y), row, WHITE, style=style, size=line_size)
                y += round(line_size * 1.4)
            y += round(line_size * 0.3)
        if error:  # for the technician, small, at the bottom
            small = max(8, size // 2)
            font.render_to(surface, (margin, h - margin - small), error[:120], (150, 160, 166), style=style, size=small)

    # --- idle: camera view, framing guide, prompt --------------------------------------------------

    #: the idle screen's rows, in reading order; the first listed in `_IDLE_DROPPABLE` go first
    _IDLE_DROPPABLE = ("date", "help", "hint", "clock", "queue")
    #: on a 7" panel the status bar's clock is 36 px already: the big one goes first
    _IDLE_DROPPABLE_LANDSCAPE = ("clock", "date", "help", "hint", "queue")
    _IDLE_STEPS = (("clock", 0.1), ("prompt", 0.1), (None, 0), ("prompt", STYLES["prompt"].min_frac))

    def _idle(self, surface, layout: Layout, screen: Screen, theme: Theme, banner: bool, preview, now: datetime | None = None) -> None:
        boxes = layout.idle(banner)
        draw_preview(surface, boxes["preview"], preview)
        self._framing_guide(surface, boxes["preview"], layout)
        short = layout.short
        when = now or datetime.now()
        clock = f"{when:%H:%M}"
        date = _date_text(when, screen.language)
        prompt = [("prompt", screen.message), ("hint", screen.hint)]
        # the clock, the date and the help belong to the idle screen, not to a request to adjust the phone
        rest = [("clock", clock), ("date", date), ("queue", screen.queue), ("help", screen.help)] if screen.kind == ScreenKind.IDLE else []
        colours = {"prompt": theme.fg, "hint": theme.soft, "clock": theme.fg, "date": theme.soft, "help": theme.fg, "queue": AMBER}
        if layout.portrait and not rest:  # a request over the view (hold it closer): its icon under the view
            column = boxes["column"]
            side = round(min(column.w, column.h) * 0.5)
            surface.blit(icon_surface(screen.icon_kind.value, side, theme.ink, theme.bg, None),
                         (column.x + (column.w - side) // 2, column.y + (column.h - side) // 2))
        if layout.portrait:  # the prompt above the view, the rest under it
            groups = [(boxes["top"], prompt), (boxes["column"], rest)]
        else:
            groups = [(boxes["column"], prompt + rest)]
        align = "center" if layout.portrait else "left"
        for column, rows in groups:
            rows = [(role, value) for role, value in rows if value]
            droppable = self._IDLE_DROPPABLE if layout.portrait else self._IDLE_DROPPABLE_LANDSCAPE
            fits, gap = self._stack(rows, column, short, layout.px(0.02), droppable, self._IDLE_STEPS)
            total = sum(len(f.lines) * f.line_height for f in fits.values()) + gap * (len(fits) - 1)
            y = column.y + max(0, (column.h - total) // 2)
            self._draw_rows(surface, rows, fits, Box(column.x, y, column.w, column.h), gap, colours, short, align)

    @staticmethod
    def _framing_guide(surface, box: Box, layout: Layout) -> None:
        """Corner brackets round the middle of the view: where the phone's code should be."""
        side = round(min(box.w, box.h) * 0.7)
        x0, y0 = box.x + (box.w - side) // 2, box.y + (box.h - side) // 2
        arm = side // 4
        width = max(3, layout.px(0.012))
        for colour, w in ((BLACK, width + 4), (WHITE, width)):
            for cx, cy, dx, dy in ((x0, y0, 1, 1), (x0 + side, y0, -1, 1), (x0, y0 + side, 1, -1), (x0 + side, y0 + side, -1, -1)):
                pygame.draw.line(surface, colour, (cx, cy), (cx + dx * arm, cy), w)
                pygame.draw.line(surface, colour, (cx, cy), (cx, cy + dy * arm), w)
        pygame.draw.rect(surface, (90, 110, 130), pygame.Rect(box), 1)

    # --- verdicts, checking, unknown, faults --------------------------------------------------------

    #: rows a full card may leave out, first to go first, when its column is too short for all
    #: of them at a readable size (an offline banner, a long reason)
    _DROPPABLE = ("hint", "second", "code", "time", "person", "nat")

    def _result(self, surface, layout: Layout, screen: Screen, theme: Theme, banner: bool, phase: int, language: str) -> None:
        if screen.kind == ScreenKind.CHECKING:
            rows = [("title", screen.message), ("hint", screen.hint)]
        else:
            time_text = ui_text("checked_at", screen.language, t=screen.time) if screen.time else ""
            person = "\u3000".join(t for t in (screen.person, screen.person_id) if t)
            rows = [
                ("title", screen.title), ("message", screen.message), ("person", person), ("code", screen.code),
                ("nat", screen.nat), ("time", time_text), ("hint", screen.hint), ("second", screen.second),
            ]
        rows = [(role, value) for role, value in rows if value]
        boxes = layout.result(banner)
        icon, column = boxes["icon"], boxes["column"]
        short = layout.short
        fits, gap = self._stack(rows, column, short, layout.px(0.012)) if rows else ({}, 0)
        total = sum(len(f.lines) * f.line_height for f in fits.values()) + gap * (len(fits) - 1)
        y = column.y + max(0, (column.h - total) // 2)  # one block: no holes between the rows
        if layout.portrait and rows:
            # the icon and the words as one group in the middle of the column, so that a short card
            # (a fault, a prompt) leaves no band between its icon and its headline
            spare = max(0, column.h - total)
            shift = spare // 2
            icon = Box(icon.x, icon.y + shift, icon.w, icon.h)
            y = column.y + shift
        surface.blit(
            icon_surface(screen.icon_kind.value, icon.w, theme.ink if theme.disc else theme.fg, theme.bg, theme.disc, phase % 12),
            (icon.x, icon.y),
        )
        if not rows:
            return
        align = "center" if layout.portrait else "left"
        colours = {"title": theme.fg, "message": theme.fg, "person": theme.fg, "code": theme.fg, "nat": theme.fg,
                   "time": theme.soft, "hint": theme.soft, "second": theme.soft}
        self._draw_rows(surface, rows, fits, Box(column.x, y, column.w, column.h), gap, colours, short, align)

    def _draw_rows(self, surface, rows: list[tuple[str, str]], fits: dict, column: Box, gap: int, colours: dict[str, Colour],
                   short: int, align: str) -> None:
        """The rows `_stack` fitted, top down from `column.y`, `gap` apart (a row it dropped is left out)."""
        y = column.y
        for role, value in rows:
            fit = fits.get(role)
            if fit is None:
                continue
            h = len(fit.lines) * fit.line_height
            self.text(surface, value, Box(column.x, y, column.w, h), role, colours[role], short, align=align, fit=fit)
            y += h + gap

    def _stack(self, rows: list[tuple[str, str]], column: Box, short: int, gap: int,
               droppable_roles: tuple[str, ...] | None = None,
               steps: tuple[tuple[str | None, float], ...] | None = None) -> tuple[dict, int]:
        """Fit each row at its largest size; while the stack is taller than the column, take the
        next of `steps`: (role, least fraction) shrinks that row towards its least, (None, 0)
        leaves a row out (the first of `droppable_roles` still there). By default the headline
        goes down to 13 %, then the reason to its least, the headline to 11.5 %, then rows go (`_DROPPABLE`), and only
        then the headline to its least: every row drawn stays readable rather than all small."""
        steps = steps or (("title", 0.13), ("message", STYLES["message"].min_frac), ("title", 0.115), (None, 0),
                          ("title", STYLES["title"].min_frac))
        caps = {role: None for role, _ in rows}
        present = [role for role, _ in rows]
        values = dict(rows)

        def fit(role: str):
            return self._cached_fit(values[role], column.w, column.h, role, short, caps[role])

        while True:
            fits = {role: fit(role) for role in present}
            total = sum(len(f.lines) * f.line_height for f in fits.values()) + gap * (len(fits) - 1)
            if total <= column.h:
                return fits, gap
            # the headline down to 13 % first, then the reason to its least, then rows go, and
            # only then the headline to its least
            droppable = [r for r in (droppable_roles or self._DROPPABLE) if r in present]
            for role, least in steps:
                if role is None:
                    if droppable:
                        present.remove(droppable[0])
                        break
                    continue
                least_px = round(short * least)
                if role in fits and fits[role].size > least_px:
                    caps[role] = max(least_px, int(fits[role].size * 0.92))
                    break
            else:
                return fits, gap

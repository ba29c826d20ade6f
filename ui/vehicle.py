"""Drawing the handheld's vehicle screens: Start, the open vehicle, the plate keypad, the verdict.

Called by `Renderer.draw` for the screen kinds in `sentinel.screens.VEHICLE_KINDS`; everything it
writes goes through `Renderer.text` (fitted into boxes, logged in `drawn`) and every touch target
is put in `Renderer.hits`, as the technician menu's are, so the display can report taps and the
tests can prove nothing spills or overlaps. The words come with the screen (sentinel.handheld).

Landscape (800×480, the handheld's 7" panel): the camera view and the latest check on the left,
the people checked on the right, the buttons under them. Portrait stacks the same parts.
"""

from __future__ import annotations

from functools import lru_cache

import pygame

from sentinel.screens import Button, OccupantRow, Screen, ScreenKind, VehicleView
from ui.icons import icon_surface
from ui.layout import Box, Layout
from ui.preview import draw_preview
from ui.theme import INK, THEMES, WHITE, Colour

BG: Colour = THEMES[ScreenKind.IDLE].bg  # the idle screen's navy: a vehicle screen is a working screen, not a verdict
PANEL: Colour = (22, 46, 76)
PANEL_ARMED: Colour = (64, 52, 8)
SOFT: Colour = THEMES[ScreenKind.IDLE].soft
AMBER: Colour = THEMES[ScreenKind.MANUAL_CHECK].bg
BUTTON: Colour = (58, 80, 110)
BUTTON_PRIMARY: Colour = (0, 122, 204)
BUTTON_OFF: Colour = (34, 46, 62)
KEY: Colour = (40, 64, 94)
FIELD: Colour = (246, 247, 249)


def _style(kind: ScreenKind) -> tuple[Colour, Colour, Colour]:
    """(fill, ink, soft ink) of a kind's theme: a card or a verdict in the colours of its screen."""
    theme = THEMES[kind]
    return theme.bg, theme.fg, theme.soft


#: verdict → (fill, ink on it, icon)
VERDICT_STYLE: dict[str, tuple[Colour, Colour, str]] = {
    "pass": (*_style(ScreenKind.PASS)[:2], "pass"),
    "deny": (*_style(ScreenKind.DENY)[:2], "deny"),
    "manual_check": (*_style(ScreenKind.MANUAL_CHECK)[:2], "manual"),
}
#: the card for the latest check: screen kind → (fill, ink, soft ink)
CARD_STYLE: dict[ScreenKind, tuple[Colour, Colour, Colour]] = {
    ScreenKind.IDLE: ((30, 58, 92), WHITE, SOFT),
    **{kind: _style(kind) for kind in (ScreenKind.CHECKING, ScreenKind.PASS, ScreenKind.DENY, ScreenKind.MANUAL_CHECK,
                                       ScreenKind.UNKNOWN_CODE, ScreenKind.FAULT)},
}
#: the verdict screen's background by its icon (pass, deny, manual)
SUMMARY_STYLE: dict[str, tuple[Colour, Colour, Colour]] = {
    "pass": _style(ScreenKind.PASS),
    "deny": _style(ScreenKind.DENY),
    "manual": _style(ScreenKind.MANUAL_CHECK),
}


def background(screen: Screen) -> Colour:
    if screen.kind == ScreenKind.VEHICLE_SUMMARY:
        return SUMMARY_STYLE.get(screen.icon_kind.value, SUMMARY_STYLE["manual"])[0]
    return BG


class _UnderBanner(Layout):
    """The same layout with its content starting under the banner: every piece (and every touch
    target) of a vehicle screen moves down together."""

    def content(self, banner: bool) -> Box:
        return super().content(True)


def draw(r, surface: pygame.Surface, layout: Layout, screen: Screen, preview, phase: int, language: str,
         banner: str = "") -> None:
    """Draw a vehicle screen below the status bar (the renderer draws the bar) and, when there is
    one, the banner (offline, an alarm): an officer at a checkpoint must see that the network is
    down as much as a gate's queue does."""
    view = screen.vehicle or VehicleView()
    surface.fill(background(screen))
    if banner:
        r._banner(surface, layout, banner)
        layout = _UnderBanner(layout.width, layout.height)
    if screen.kind == ScreenKind.PLATE and view.keypad is not None:
        _plate(r, surface, layout, screen, view)
    elif screen.kind == ScreenKind.VEHICLE_SUMMARY:
        _summary(r, surface, layout, screen, view)
    elif screen.kind == ScreenKind.VEHICLE:
        _session(r, surface, layout, screen, view, preview, phase)
    else:
        _idle(r, surface, layout, screen, view)


# --- pieces ---------------------------------------------------------------------------------------------


def _button(r, surface, layout: Layout, box: Box, button: Button, role: str = "button", cap: int | None = None) -> None:
    fill = BUTTON_PRIMARY if button.primary and button.enabled else BUTTON if button.enabled else BUTTON_OFF
    pygame.draw.rect(surface, fill, pygame.Rect(box), border_radius=layout.px(0.02))
    pad = max(3, layout.px(0.012))
    ink = WHITE if button.enabled else (110, 124, 140)
    r.text(surface, button.label, box.inset(pad), role, ink, layout.short, align="center", cap=cap)
    if button.enabled:
        r.hits[button.id] = box


def _buttons_row(r, surface, layout: Layout, box: Box, buttons: tuple[Button, ...]) -> None:
    if not buttons:
        return
    gap = max(4, layout.margin // 2)
    n = len(buttons)
    w = (box.w - (n - 1) * gap) // n
    for i, button in enumerate(buttons):
        _button(r, surface, layout, Box(box.x + i * (w + gap), box.y, w, box.h), button, cap=round(box.h * 0.42))


def _preview(surface, box: Box, preview, layout: Layout) -> None:
    draw_preview(surface, box, preview)
    pygame.draw.rect(surface, (90, 110, 130), pygame.Rect(box), 1)


def _card(r, surface, layout: Layout, box: Box, card: Screen | None, phase: int) -> None:
    """The latest check: its colour, its icon, its headline, the reason, the person and seat."""
    if card is None:
        return
    fill, ink, soft = CARD_STYLE.get(card.kind, CARD_STYLE[ScreenKind.IDLE])
    pygame.draw.rect(surface, fill, pygame.Rect(box), border_radius=layout.px(0.02))
    inner = box.inset(max(4, layout.px(0.02)))
    if not card.title:  # a prompt (show your code, checking…): the icon and the words beside it
        side = min(round(inner.h * 0.6), round(inner.w * 0.26))
        surface.blit(icon_surface(card.icon_kind.value, side, ink, fill, None, phase % 12), (inner.x, inner.y + (inner.h - side) // 2))
        x = inner.x + side + layout.margin // 2
        words = Box(x, inner.y, inner.right - x, inner.h)
        if card.hint:
            top = round(words.h * 0.58)
            r.text(surface, card.message, Box(words.x, words.y, words.w, top), "button", ink, layout.short, valign="bottom")
            r.text(surface, card.hint, Box(words.x, words.y + top, words.w, words.h - top), "info", soft, layout.short, valign="top")
        else:
            r.text(surface, card.message, words, "button", ink, layout.short)
        return
    side = min(round(inner.h * 0.42), round(inner.w * 0.3))
    icon = icon_surface(card.icon_kind.value, side, fill if card.kind not in (ScreenKind.IDLE, ScreenKind.CHECKING) else ink, fill,
                        None if card.kind in (ScreenKind.IDLE, ScreenKind.CHECKING) else ink, phase % 12)
    surface.blit(icon, (inner.x, inner.y))
    short = layout.short
    head = card.title or card.message
    r.text(surface, head, Box(inner.x + side + layout.margin // 2, inner.y, inner.w - side - layout.margin // 2, side), "button", ink,
           short, cap=round(side * 0.46))
    rows = []
    if card.title and card.message:
        rows.append(card.message)
    who = "  ".join(t for t in (card.hint, card.person) if t) if card.kind not in (ScreenKind.IDLE, ScreenKind.CHECKING) else card.hint
    if who:
        rows.append(who)
    if not rows:
        return
    room = Box(inner.x, inner.y + side + layout.margin // 3, inner.w, inner.bottom - inner.y - side - layout.margin // 3)
    h = room.h // len(rows)
    for i, words in enumerate(rows):
        r.text(surface, words, Box(room.x, room.y + i * h, room.w, h), "info", ink if i == 0 else soft, short,
               cap=round(layout.short * 0.05))


def _row(r, surface, layout: Layout, box: Box, row: OccupantRow) -> None:
    fill, ink, icon = VERDICT_STYLE.get(row.verdict, VERDICT_STYLE["manual_check"])
    pygame.draw.rect(surface, PANEL_ARMED if row.armed else PANEL, pygame.Rect(box), border_radius=layout.px(0.015))
    bar = max(5, layout.px(0.014))
    pygame.draw.rect(surface, fill, pygame.Rect(box.x, box.y, bar, box.h), border_top_left_radius=layout.px(0.015),
                     border_bottom_left_radius=layout.px(0.015))
    pad = max(3, layout.px(0.012))
    side = min(box.h - 2 * pad, layout.px(0.1))
    surface.blit(icon_surface(icon, side, ink, fill, fill), (box.x + bar + pad, box.y + (box.h - side) // 2))
    x = box.x + bar + 2 * pad + side
    right = box.right - pad
    if row.button:  # a failed person: tap the row to re-scan them (a refreshed code)
        chip_w = layout.px(0.17)
        chip = Box(right - chip_w, box.y + box.h // 4, chip_w, box.h - 2 * (box.h // 4))
        if row.armed:
            pygame.draw.rect(surface, AMBER, pygame.Rect(chip), border_radius=layout.px(0.012))
        else:
            pygame.draw.rect(surface, SOFT, pygame.Rect(chip), max(1, layout.px(0.004)), border_radius=layout.px(0.012))
        r.text(surface, row.chip, chip.inset(max(2, layout.px(0.008))), "info", INK if row.armed else SOFT, layout.short, align="center")
        right = chip.x - pad
    text_box = Box(x, box.y + pad // 2, right - x, box.h - pad)
    top_h = round(text_box.h * 0.52)
    name = f"{row.label}  {row.person}" if row.person else row.label
    r.text(surface, name, Box(text_box.x, text_box.y, text_box.w, top_h), "button", WHITE, layout.short, cap=round(top_h * 0.74))
    second = " · ".join((row.text, *row.flags))
    colour = AMBER if row.flags else SOFT
    r.text(surface, second, Box(text_box.x, text_box.y + top_h, text_box.w, text_box.h - top_h), "info", colour, layout.short,
           cap=round((text_box.h - top_h) * 0.72))
    if row.button:
        r.hits[row.button] = box


def _rows(r, surface, layout: Layout, box: Box, rows: tuple[OccupantRow, ...], min_h: int, max_h: int, more_text: str,
          newest_text: str = "", pages_back: int = 0) -> None:
    """As many rows as fit, newest last; the oldest give way when there is no room, and a line
    over the list says how many: a tap on it turns the list back a page (`rows:older`), and on the
    oldest page the line takes the list back to the newest (`rows:newest`)."""
    if not rows:
        return
    gap = max(3, layout.margin // 3)
    fit = max(1, (box.h + gap) // (min_h + gap))
    end = len(rows)
    if len(rows) > fit:  # the oldest give way; a line says how many
        line = layout.px(0.055)
        fit = max(1, (box.h - line - gap + gap) // (min_h + gap))
        end = max(fit, len(rows) - pages_back * fit)
        hidden = end - fit
        words, target = (more_text.format(n=hidden), "rows:older") if hidden else (newest_text, "rows:newest")
        more_box = Box(box.x, box.y, box.w, line)
        if words:
            r.text(surface, words, more_box, "info", SOFT, layout.short, align="center")
            r.hits[target] = more_box
        box = Box(box.x, box.y + line + gap, box.w, box.h - line - gap)
    shown = rows[max(0, end - fit):end]
    h = min(max_h, (box.h - gap * (len(shown) - 1)) // len(shown))
    for i, row in enumerate(shown):
        _row(r, surface, layout, Box(box.x, box.y + i * (h + gap), box.w, h), row)


# --- the open vehicle -------------------------------------------------------------------------------------


def _session(r, surface, layout: Layout, screen: Screen, view: VehicleView, preview, phase: int) -> None:
    c = layout.content(False).inset(layout.margin)
    m = layout.margin
    short = layout.short
    if layout.portrait:  # a column: title, camera, the latest check, the people, the buttons
        header = Box(c.x, c.y, c.w, layout.px(0.09))
        ph = min(c.w * 3 // 4, round(c.h * 0.28))
        pw = ph * 4 // 3
        pbox = Box(c.x + (c.w - pw) // 2, header.bottom + m // 2, pw, ph)
        card = Box(c.x, pbox.bottom + m // 2, c.w, min(layout.px(0.3), round(c.h * 0.16)))
        buttons = Box(c.x, c.bottom - layout.px(0.13), c.w, layout.px(0.13))
        rows = Box(c.x, card.bottom + m, c.w, buttons.y - card.bottom - 2 * m)
    else:
        left = round(c.w * 0.4)
        ph = min(left * 3 // 4, round(c.h * 0.52))
        pw = ph * 4 // 3
        pbox = Box(c.x, c.y, pw, ph)
        card = Box(c.x, pbox.bottom + m // 2, pw, c.bottom - pbox.bottom - m // 2)
        right = Box(pbox.right + m, c.y, c.right - pbox.right - m, c.h)
        header = Box(right.x, right.y, right.w, layout.px(0.1))
        buttons = Box(right.x, right.bottom - layout.px(0.14), right.w, layout.px(0.14))
        rows = Box(right.x, header.bottom + m // 2, right.w, buttons.y - header.bottom - m)
    _preview(surface, pbox, preview if view.camera_on else None, layout)
    _card(r, surface, layout, card, view.check, phase)
    _header(r, surface, layout, header, screen, view)
    if view.rows:
        _rows(r, surface, layout, rows, view.rows, min_h=layout.px(0.11), max_h=layout.px(0.15), more_text=view.more,
              newest_text=view.newest, pages_back=view.pages_back)
    else:  # nobody yet: who comes first
        top = Box(rows.x, rows.y + rows.h // 4, rows.w, rows.h // 4)
        r.text(surface, screen.message, top, "button", WHITE, short, align="center")
        r.text(surface, screen.hint, Box(rows.x, top.bottom, rows.w, rows.h // 4), "info", SOFT, short, align="center", valign="top")
    _buttons_row(r, surface, layout, buttons, view.buttons)


def _header(r, surface, layout: Layout, box: Box, screen: Screen, view: VehicleView) -> None:
    """The vehicle's title (with its plate) on the left, the counts or "no plate" on the right."""
    right_text = view.counts or view.plate_hint
    split = round(box.w * (0.5 if right_text else 1.0))
    r.text(surface, screen.title, Box(box.x, box.y, split, box.h), "menu_title", WHITE, layout.short)
    if right_text:
        gap = layout.margin // 2
        r.text(surface, right_text, Box(box.x + split + gap, box.y, box.w - split - gap, box.h), "info",
               AMBER if not view.counts else SOFT, layout.short, align="right")


# --- the plate keypad --------------------------------------------------------------------------------------


def _plate(r, surface, layout: Layout, screen: Screen, view: VehicleView) -> None:
    keypad = view.keypad
    assert keypad is not None
    c = layout.content(False).inset(layout.margin)
    m = layout.margin
    gap = max(3, m // 2)
    bar_h = layout.px(0.22)
    bar = Box(c.x, c.y, c.w, bar_h)
    if layout.portrait:
        actions = Box(c.x, c.bottom - layout.px(0.13), c.w, layout.px(0.13))
        keys = Box(c.x, bar.bottom + m, c.w, actions.y - bar.bottom - 2 * m)
        cols = 6 if len(keypad.keys) <= 36 else 7
    else:
        col_w = round(c.w * 0.2)
        actions = Box(c.right - col_w, c.y, col_w, c.h)
        bar = Box(c.x, c.y, c.w - col_w - m, bar_h)
        keys = Box(c.x, bar.bottom + m, bar.w, c.bottom - bar.bottom - m)
        cols = 8 if len(keypad.keys) <= 32 else 10
    _plate_bar(r, surface, layout, bar, screen, keypad)
    rows = -(-len(keypad.keys) // cols)
    kw = (keys.w - (cols - 1) * gap) // cols
    kh = (keys.h - (rows - 1) * gap) // rows
    for i, key in enumerate(keypad.keys):
        row, col = divmod(i, cols)
        box = Box(keys.x + col * (kw + gap), keys.y + row * (kh + gap), kw, kh)
        fill = KEY if key.enabled else BUTTON_OFF
        pygame.draw.rect(surface, fill, pygame.Rect(box), border_radius=layout.px(0.015))
        r.text(surface, key.label, box.inset(max(2, layout.px(0.008))), "pin", WHITE if key.enabled else (96, 110, 126), layout.short,
               align="center", cap=round(min(kh * 0.55, kw * 0.62)))
        if key.enabled:
            r.hits[key.id] = box
    n = len(keypad.actions)
    if layout.portrait:
        _buttons_row(r, surface, layout, actions, keypad.actions)
    else:
        ah = (actions.h - (n - 1) * gap) // n
        for i, button in enumerate(keypad.actions):
            _button(r, surface, layout, Box(actions.x, actions.y + i * (ah + gap), actions.w, ah), button, cap=round(layout.short * 0.05))


def _plate_bar(r, surface, layout: Layout, bar: Box, screen: Screen, keypad) -> None:
    """The title, the plate as typed in a white field (green rim when valid), and what is missing."""
    m = layout.margin
    label_h = round(bar.h * 0.4)
    r.text(surface, screen.title, Box(bar.x, bar.y, round(bar.w * 0.45), label_h), "menu_title", WHITE, layout.short)
    r.text(surface, keypad.message, Box(bar.x + round(bar.w * 0.45) + m, bar.y, bar.w - round(bar.w * 0.45) - m, label_h), "info",
           (120, 220, 140) if keypad.valid else AMBER, layout.short, align="right")
    field = Box(bar.x, bar.y + label_h + m // 3, bar.w, bar.h - label_h - m // 3)
    pygame.draw.rect(surface, FIELD, pygame.Rect(field), border_radius=layout.px(0.015))
    if keypad.valid:
        pygame.draw.rect(surface, (0, 160, 80), pygame.Rect(field), max(2, layout.px(0.008)), border_radius=layout.px(0.015))
    shown = keypad.text or keypad.label
    r.text(surface, shown, field.inset(layout.px(0.015)), "pin", INK if keypad.text else (140, 146, 156), layout.short,
           align="center", cap=round(field.h * 0.7))


# --- the vehicle's verdict -------------------------------------------------------------------------------


def _summary(r, surface, layout: Layout, screen: Screen, view: VehicleView) -> None:
    fill, ink, soft = SUMMARY_STYLE.get(screen.icon_kind.value, SUMMARY_STYLE["manual"])
    c = layout.content(False).inset(layout.margin)
    m = layout.margin
    short = layout.short
    if layout.portrait:
        side = min(round(c.w * 0.3), round(c.h * 0.14))
        icon = Box(c.x + (c.w - side) // 2, c.y, side, side)
        column = Box(c.x, icon.bottom + m, c.w, c.bottom - icon.bottom - m)
        align = "center"
    else:
        side = min(round(c.w * 0.22), round(c.h * 0.42))
        icon = Box(c.x + (round(c.w * 0.26) - side) // 2, c.y + round(c.h * 0.1), side, side)
        column = Box(c.x + round(c.w * 0.26) + m, c.y, c.w - round(c.w * 0.26) - m, c.h)
        align = "left"
    surface.blit(icon_surface(screen.icon_kind.value, side, fill, fill, ink), (icon.x, icon.y))
    button_h = layout.px(0.13)
    title = Box(column.x, column.y, column.w, layout.px(0.16))
    message = Box(column.x, title.bottom, column.w, layout.px(0.12))
    plate_line = Box(column.x, message.bottom, column.w, layout.px(0.08))
    if layout.portrait:
        buttons = Box(column.x, column.bottom - button_h, column.w, button_h)
    else:  # Next vehicle at the bottom right, under the thumb of a right hand (Back to car left of it)
        w = round(column.w * (0.45 if len(view.buttons) < 2 else 0.9))
        buttons = Box(column.right - w, column.bottom - button_h, w, button_h)
    rows_box = Box(column.x, plate_line.bottom + m // 2, column.w, buttons.y - plate_line.bottom - m)
    r.text(surface, screen.title, title, "title", ink, short, align=align, cap=round(title.h * 0.8))
    r.text(surface, screen.message, message, "info", ink, short, align=align, cap=round(message.h * 0.5))
    plate = " · ".join(t for t in (view.plate or view.plate_hint, view.counts, screen.time) if t)
    r.text(surface, plate, plate_line, "info", soft, short, align=align)
    _summary_rows(r, surface, layout, rows_box, view.rows, ink, soft, fill, view.more, view.more_passed)
    _buttons_row(r, surface, layout, buttons, view.buttons)


def _summary_rows(r, surface, layout: Layout, box: Box, rows: tuple[OccupantRow, ...], ink: Colour, soft: Colour, fill: Colour,
                  more: str = "", more_passed: str = "") -> None:
    """One line per person: their verdict's icon, seat and name, the reason and flags. When not
    every row fits, the people who did not pass are listed first (the headline names them), in
    seat order, and a last line says how many more there are ("另有5人通过" when they all passed)."""
    if not rows or box.h <= 0:
        return
    gap = max(2, layout.margin // 4)
    least = layout.px(0.05)
    capacity = max(1, (box.h + gap) // (least + gap))
    shown = list(rows)
    hidden: list[OccupantRow] = []
    if len(rows) > capacity:
        keep = capacity - 1  # the last line says who is not listed
        failed = [row for row in rows if row.verdict != "pass"]
        chosen = set(map(id, (failed + [row for row in rows if row.verdict == "pass"])[:keep]))
        shown = [row for row in rows if id(row) in chosen]
        hidden = [row for row in rows if id(row) not in chosen]
    lines = len(shown) + (1 if hidden else 0)
    line = min(layout.px(0.075), (box.h - gap * (lines - 1)) // lines)
    for i, row in enumerate(shown):
        y = box.y + i * (line + gap)
        side = line
        style_fill, style_ink, icon = VERDICT_STYLE.get(row.verdict, VERDICT_STYLE["manual_check"])
        surface.blit(_row_icon(icon, side, style_fill, style_ink), (box.x, y))
        x = box.x + side + layout.margin // 2
        label_w = round((box.right - x) * 0.42)
        name = f"{row.label} {row.person}" if row.person else row.label
        r.text(surface, name, Box(x, y, label_w, line), "info", ink, layout.short, cap=round(line * 0.7))
        words = " · ".join((row.text, *row.flags))
        r.text(surface, words, Box(x + label_w + layout.margin // 2, y, box.right - x - label_w - layout.margin // 2, line), "info", soft,
               layout.short, cap=round(line * 0.62))
    if hidden:
        template = more_passed if more_passed and all(row.verdict == "pass" for row in hidden) else more or "+{n}"
        words = template.format(n=len(hidden))
        y = box.y + len(shown) * (line + gap)
        r.text(surface, words, Box(box.x + line + layout.margin // 2, y, box.right - box.x - line - layout.margin // 2, line), "info", soft,
               layout.short, cap=round(line * 0.62))


@lru_cache(maxsize=64)
def _row_icon(icon: str, side: int, fill: Colour, ink: Colour) -> pygame.Surface:
    """A verdict icon on a white ring, so a green tick still shows on the green verdict screen."""
    surf = pygame.Surface((side, side), pygame.SRCALPHA)
    pygame.draw.circle(surf, WHITE, (side // 2, side // 2), side // 2)
    inner = icon_surface(icon, max(1, side - 4), ink, fill, fill)
    surf.blit(inner, (2, 2))
    return surf


# --- no vehicle open -----------------------------------------------------------------------------------------


def _idle(r, surface, layout: Layout, screen: Screen, view: VehicleView) -> None:
    c = layout.content(False).inset(layout.margin)
    m = layout.margin
    short = layout.short
    if layout.portrait:
        side = min(round(c.w * 0.5), round(c.h * 0.25))
        art = Box(c.x + (c.w - side) // 2, c.y + round(c.h * 0.06), side, side)
        column = Box(c.x, art.bottom + m, c.w, c.bottom - art.bottom - m)
        align = "center"
    else:
        side = min(round(c.w * 0.34), round(c.h * 0.6))
        art = Box(c.x + (round(c.w * 0.4) - side) // 2, c.y + (c.h - side) // 2, side, side)
        column = Box(c.x + round(c.w * 0.4) + m, c.y, c.w - round(c.w * 0.4) - m, c.h)
        align = "left"
    surface.blit(_car(side, SOFT, BG), (art.x, art.y))
    title = Box(column.x, column.y + round(column.h * 0.04), column.w, layout.px(0.13))
    message = Box(column.x, title.bottom, column.w, layout.px(0.15))
    button = Box(column.x, message.bottom + m, column.w, layout.px(0.2))
    last = Box(column.x, button.bottom + m, column.w, layout.px(0.08))
    hint = Box(column.x, last.bottom, column.w, column.bottom - last.bottom)
    r.text(surface, screen.title, title, "title", WHITE, short, align=align, cap=round(title.h * 0.8))
    r.text(surface, screen.message, message, "info", SOFT, short, align=align, cap=round(short * 0.06))
    for b in view.buttons[:1]:
        _button(r, surface, layout, button, b, role="menu_title", cap=round(button.h * 0.45))
    r.text(surface, view.counts, last, "info", SOFT, short, align=align)
    if hint.h > 0:
        icon_side = min(layout.px(0.06), hint.h)
        words = Box(hint.x + icon_side + m // 2, hint.y, hint.w - icon_side - m // 2, min(hint.h, layout.px(0.08)))
        ink = r.text(surface, screen.hint, words, "info", (120, 140, 160), short, align=align)
        if ink is not None:
            surface.blit(icon_surface("camera", icon_side, (120, 140, 160), BG), (ink.x - icon_side - m // 2, words.y + (words.h - icon_side) // 2))


@lru_cache(maxsize=16)
def _car(size: int, ink: Colour, bg: Colour) -> pygame.Surface:
    """A car seen from the side with a phone held up at its window: the handheld's job, drawn."""
    s = size * 3
    surf = pygame.Surface((s, s), pygame.SRCALPHA)

    def p(x: float, y: float) -> tuple[int, int]:
        return round(x * s), round(y * s)

    body = [p(0.06, 0.66), p(0.1, 0.52), p(0.26, 0.5), p(0.36, 0.34), p(0.66, 0.34), p(0.8, 0.5), p(0.94, 0.54), p(0.95, 0.66)]
    pygame.draw.polygon(surf, ink, body)
    pygame.draw.polygon(surf, bg, [p(0.39, 0.38), p(0.5, 0.38), p(0.5, 0.49), p(0.31, 0.49)])  # windows
    pygame.draw.polygon(surf, bg, [p(0.54, 0.38), p(0.64, 0.38), p(0.74, 0.49), p(0.54, 0.49)])
    for x in (0.26, 0.76):  # wheels
        pygame.draw.circle(surf, ink, p(x, 0.67), round(0.09 * s))
        pygame.draw.circle(surf, bg, p(x, 0.67), round(0.045 * s))
    phone = pygame.Rect(*p(0.44, 0.12), round(0.1 * s), round(0.17 * s))  # a phone held up at the window
    pygame.draw.rect(surf, ink, phone, border_radius=round(0.02 * s))
    pygame.draw.rect(surf, bg, phone.inflate(-round(0.025 * s), -round(0.04 * s)), border_radius=round(0.01 * s))
    for dx, dy in ((0.0, 0.0), (0.03, 0.0), (0.0, 0.04), (0.03, 0.04)):
        pygame.draw.rect(surf, ink, pygame.Rect(*p(0.465 + dx, 0.16 + dy), round(0.02 * s), round(0.025 * s)))
    return pygame.transform.smoothscale(surf, (size, size))

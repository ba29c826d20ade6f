"""The technician menu as drawn: the PIN pad, the menu with its info panel, the camera view.
Drawn through the `Renderer` passed in (`Renderer.text` fits and logs every piece of text, and
each button's box goes into `Renderer.hits`, where the display looks up a tap), as part of
`Renderer.draw`; the menu's state and words come from ui/technician.py.
"""

from __future__ import annotations

import pygame

from ui.layout import Box, Layout
from ui.preview import draw_preview
from ui.strings import text as ui_text
from ui.technician import MenuState, MenuView
from ui.theme import (
    AMBER,
    BUTTON_BG,
    BUTTON_FG,
    BUTTON_OFF,
    STATUS_FG,
    WHITE,
)


def _button(r, surface, layout: Layout, box: Box, label: str, enabled: bool = True, role: str = "button") -> None:
    pygame.draw.rect(surface, BUTTON_BG if enabled else BUTTON_OFF, pygame.Rect(box), border_radius=layout.px(0.02))
    pad = max(4, layout.px(0.015))
    r.text(surface, label, box.inset(pad), role, BUTTON_FG if enabled else (120, 126, 134), layout.short, align="center")

def draw_menu(r, surface, layout: Layout, menu: MenuView, preview, language: str) -> None:
    short = layout.short
    if menu.state == MenuState.PIN:
        boxes = layout.pin_pad()
        r.text(surface, menu.title, boxes["title"], "menu_title", WHITE, short)
        dots = boxes["dots"]
        n = max(4, menu.pin_digits)
        radius = round(dots.h * 0.18)
        step = radius * 3
        x0 = dots.x + (dots.w - (n - 1) * step) // 2
        for i in range(n):
            centre = (x0 + i * step, dots.y + dots.h // 2)
            pygame.draw.circle(surface, WHITE, centre, radius, 0 if i < menu.pin_digits else max(2, radius // 4))
        if menu.message:
            r.text(surface, menu.message, boxes["message"], "info", AMBER if menu.message_is_error else STATUS_FG, short, align="center")
        for i, button in enumerate(b for b in menu.buttons if b.id != "cancel"):
            box = boxes[f"key{i}"]
            _button(r, surface, layout, box, button.label, button.enabled and not menu.busy, role="pin" if button.id.startswith("digit:") else "button")
            r.hits[button.id] = box
        _button(r, surface, layout, boxes["cancel"], ui_text("cancel", language))
        r.hits["cancel"] = boxes["cancel"]
    elif menu.state == MenuState.MENU:
        boxes = layout.menu(len(menu.buttons))
        r.text(surface, menu.title, boxes["title"], "menu_title", WHITE, short)
        for i, button in enumerate(menu.buttons):
            box = boxes[f"button{i}"]
            _button(r, surface, layout, box, button.label, button.enabled)
            r.hits[button.id] = box
        info = boxes["info"]
        pygame.draw.rect(surface, (16, 19, 23), pygame.Rect(info), border_radius=layout.px(0.015))
        inner = info.inset(layout.margin)
        rows = ([("__title__", menu.info_title)] if menu.info_title else []) + list(menu.info)
        # every row of the panel shown: rows get closer (down to 4.5 % of the short side)
        # rather than the last ones dropped
        row_h = min(layout.px(0.07), max(layout.px(0.045), inner.h // max(1, len(rows))))
        label_w = round(inner.w * (0.3 if layout.portrait else 0.26))
        y = inner.y
        for label, value in rows:
            if y + row_h > inner.bottom:
                break
            if label == "__title__":
                r.text(surface, value, Box(inner.x, y, inner.w, row_h), "menu_title", AMBER, short)
                y += row_h
                continue
            x = inner.x + label_w if label else inner.x
            room = Box(x, y, inner.right - x, min(2 * row_h, inner.bottom - y))  # a long value takes two lines
            fit = r._cached_fit(value, room.w, room.h, "info", short, None)
            h = max(row_h, len(fit.lines) * fit.line_height)
            r.text(surface, value, Box(room.x, y, room.w, h), "info", WHITE, short, fit=fit)
            if label:
                r.text(surface, label, Box(inner.x, y, label_w - layout.margin // 2, row_h), "info", (170, 180, 190), short)
            y += h
    elif menu.state == MenuState.PREVIEW:
        boxes = layout.menu_preview()
        draw_preview(surface, boxes["preview"], preview)
        r._framing_guide(surface, boxes["preview"], layout)
        info = getattr(preview, "info", None)
        words = ui_text("preview_info", language, **info) if info else ui_text("preview_none", language)
        r.text(surface, words, boxes["info"], "info", WHITE, short, align="center")
        r.hits["back"] = layout.content(False)

"""The status bar along the top of every screen: the site, online or not, records waiting to
upload, the battery (where there is one) and the time. Drawn through the `Renderer` passed in
(`Renderer.text` fits and logs every piece of text), as part of `Renderer.draw`.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

import pygame

from sentinel.screens import StatusBar
from ui.icons import icon_surface
from ui.layout import STYLES, Box, Layout
from ui.strings import text as ui_text
from ui.theme import AMBER, GREEN_DOT, STATUS_BG, STATUS_FG, WHITE, Colour


@lru_cache(maxsize=64)
def battery_icon(side: int, percent: int, charging: bool = False) -> pygame.Surface:
    """A battery on its side, filled to `percent` (amber from 30 %, red from 15 %), a bolt when charging."""
    s = side * 3
    surf = pygame.Surface((s, s), pygame.SRCALPHA)
    body = pygame.Rect(round(s * 0.04), round(s * 0.26), round(s * 0.82), round(s * 0.48))
    line = max(2, round(s * 0.07))
    pygame.draw.rect(surf, STATUS_FG, body, line, border_radius=round(s * 0.08))
    pygame.draw.rect(surf, STATUS_FG, pygame.Rect(body.right, round(s * 0.4), round(s * 0.1), round(s * 0.2)), border_radius=round(s * 0.03))
    level = max(0, min(100, percent))
    colour = (229, 57, 53) if level <= 15 else AMBER if level <= 30 else GREEN_DOT
    inner = body.inflate(-2 * line - 4, -2 * line - 4)
    if level:
        surf.fill(colour, pygame.Rect(inner.x, inner.y, max(1, round(inner.w * level / 100)), inner.h))
    if charging:
        cx, cy, u = body.centerx, body.centery, body.h * 0.5
        bolt = [(cx + 0.1 * u, cy - 0.9 * u), (cx - 0.45 * u, cy + 0.1 * u), (cx, cy + 0.1 * u),
                (cx - 0.1 * u, cy + 0.9 * u), (cx + 0.45 * u, cy - 0.1 * u), (cx, cy - 0.1 * u)]
        pygame.draw.polygon(surf, WHITE, bolt)
        pygame.draw.polygon(surf, STATUS_BG, bolt, max(1, line // 2))
    return pygame.transform.smoothscale(surf, (side, side))


def draw_status_bar(r, surface, layout: Layout, status: StatusBar, now: datetime | None, language: str) -> None:
    """Right to left at their natural widths: time, battery, records waiting to upload (only
    when there are any), online; the site name gets what is left (shortened with "…"
    when it is not enough, never below 30 % of the bar). The alarm is not here: it is the
    banner's (`Renderer._banner_text`), so it neither shrinks nor pushes out the site name."""
    bar = layout.status_bar
    surface.fill(STATUS_BG, pygame.Rect(bar))
    short = layout.short
    m = layout.margin
    size = min(round(short * STYLES["status"].max_frac), int(bar.h / 1.32))
    if layout.portrait:  # a pillar's bar is as wide as a panel's, and 54 px there is 13 mm
        size = min(size, layout.px(0.05))
    icon_side = round(size * 0.9)
    gap = max(4, icon_side // 4)
    when = status.time or now or datetime.now()
    items: list[tuple[str, str, pygame.Surface | None, Colour]] = [
        ("status_bold", f"{when:%H:%M}", None, STATUS_FG),
    ]
    if status.battery is not None:  # only where the hardware reports one
        low = status.battery <= 15 and not status.charging
        items.append(("status", f"{status.battery}%", battery_icon(icon_side, status.battery, bool(status.charging)), AMBER if low else STATUS_FG))
    if status.outbox_depth:  # records waiting to upload; none waiting says nothing
        items.append(("status", ui_text("outbox", language, n=status.outbox_depth), icon_surface("upload", icon_side, STATUS_FG, STATUS_BG), STATUS_FG))
    # online last: when room is short it shrinks to its icon (the banner says offline in words)
    if status.online is True:
        items.append(("status", ui_text("online", language), icon_surface("online", icon_side, GREEN_DOT, STATUS_BG), STATUS_FG))
    elif status.online is False:
        items.append(("status", ui_text("offline", language), icon_surface("warning", icon_side, AMBER, STATUS_BG), AMBER))
    # the site name first, at its natural width up to 55 % of the bar; the items then take
    # what is left, right to left, each whole or (online, offline) as its icon alone, or not at all
    room = bar.w - 2 * m
    site_w = min(round(r.measure(status.site_name, size) * 1.03) + 4, round(room * 0.55)) if status.site_name else 0
    x = bar.right - m
    limit = bar.x + m + site_w + 2 * gap
    #: the short form of an item when its words do not fit: online/offline as the icon alone
    #: (the banner says offline in words), records to upload as the icon and the number
    short_forms = {ui_text("online", language): "", ui_text("offline", language): "",
                   ui_text("outbox", language, n=status.outbox_depth): f"{status.outbox_depth}"}
    for role, words, icon, colour in items:
        w = round(r.measure(words, size, STYLES[role].bold) * 1.03) + 4  # the fit estimates 2 % wide
        need = w + (icon_side + gap if icon else 0)
        if x - need < limit and words in short_forms and icon is not None:
            words = short_forms[words]
            w = round(r.measure(words, size, STYLES[role].bold) * 1.03) + 4 if words else 0
            need = w + icon_side + (gap if words else 0)
        if x - need < limit:
            continue
        if not words:
            x -= icon_side
            surface.blit(icon, (x, bar.y + (bar.h - icon_side) // 2))
            x -= 2 * gap
            continue
        x -= w
        r.text(surface, words, Box(x, bar.y, w, bar.h), role, colour, short, align="right", cap=size)
        if icon is not None:
            x -= icon_side + gap
            surface.blit(icon, (x, bar.y + (bar.h - icon_side) // 2))
        x -= 2 * gap
    left = Box(bar.x + m, bar.y, max(0, x - bar.x - m - gap), bar.h)
    if status.site_name:
        r.text(surface, status.site_name, left, "status", STATUS_FG, short, cap=size)

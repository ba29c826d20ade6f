"""Icons drawn with pygame primitives (no image files, any size), antialiased by drawing at three
times the size and scaling down once; each size is drawn once and cached.

Every verdict has its own shape, not only its own colour: a tick, a cross, an exclamation mark,
a question mark. Faults show the part that failed, struck through.
"""

from __future__ import annotations

import math
from functools import lru_cache

import pygame

Colour = tuple[int, int, int]
SUPERSAMPLE = 3


def _pt(s: float, p: tuple[float, float]) -> tuple[float, float]:
    return p[0] * s, p[1] * s


def _line(surf: pygame.Surface, colour: Colour, a, b, width: float) -> None:
    """A thick line with round caps, from a to b (pixels)."""
    (x1, y1), (x2, y2) = a, b
    dx, dy = x2 - x1, y2 - y1
    length = math.hypot(dx, dy) or 1.0
    nx, ny = -dy / length * width / 2, dx / length * width / 2
    pygame.draw.polygon(surf, colour, [(x1 + nx, y1 + ny), (x2 + nx, y2 + ny), (x2 - nx, y2 - ny), (x1 - nx, y1 - ny)])
    pygame.draw.circle(surf, colour, (round(x1), round(y1)), round(width / 2))
    pygame.draw.circle(surf, colour, (round(x2), round(y2)), round(width / 2))


def _polyline(surf, colour, points, width) -> None:
    for a, b in zip(points, points[1:]):
        _line(surf, colour, a, b, width)


def _arc_points(s, centre, radius, start_deg, end_deg, steps=24):
    cx, cy = centre
    pts = []
    for i in range(steps + 1):
        a = math.radians(start_deg + (end_deg - start_deg) * i / steps)
        pts.append(((cx + radius * math.cos(a)) * s, (cy - radius * math.sin(a)) * s))
    return pts


def _dot(surf, colour, s, centre, r) -> None:
    pygame.draw.circle(surf, colour, (round(centre[0] * s), round(centre[1] * s)), round(r * s))


def _rect(surf, colour, s, x1, y1, x2, y2, width=0, radius=0) -> None:
    pygame.draw.rect(surf, colour, pygame.Rect(round(x1 * s), round(y1 * s), round((x2 - x1) * s), round((y2 - y1) * s)),
                     round(width * s) if width else 0, border_radius=round(radius * s))


def _slash(surf, ink, bg, s) -> None:
    """Struck through: a bar with a rim in the background colour, so it reads on the drawing."""
    _line(surf, bg, _pt(s, (0.2, 0.2)), _pt(s, (0.8, 0.8)), 0.15 * s)
    _line(surf, ink, _pt(s, (0.2, 0.2)), _pt(s, (0.8, 0.8)), 0.075 * s)


def _exclamation(surf, colour, s, top=0.24, bottom=0.56, dot=0.73, width=0.12) -> None:
    _line(surf, colour, _pt(s, (0.5, top)), _pt(s, (0.5, bottom)), width * s)
    _dot(surf, colour, s, (0.5, dot), width * 0.6)


def _draw(kind: str, surf: pygame.Surface, s: float, ink: Colour, bg: Colour, phase: int) -> None:
    if kind == "pass":
        _polyline(surf, ink, [_pt(s, (0.27, 0.53)), _pt(s, (0.44, 0.70)), _pt(s, (0.74, 0.35))], 0.11 * s)
    elif kind == "deny":
        _line(surf, ink, _pt(s, (0.33, 0.33)), _pt(s, (0.67, 0.67)), 0.11 * s)
        _line(surf, ink, _pt(s, (0.67, 0.33)), _pt(s, (0.33, 0.67)), 0.11 * s)
    elif kind == "manual":
        _exclamation(surf, ink, s)
    elif kind == "unknown":
        pts = _arc_points(s, (0.5, 0.37), 0.14, 160, -60)
        pts.append(_pt(s, (0.5, 0.56)))
        _polyline(surf, ink, pts, 0.1 * s)
        _dot(surf, ink, s, (0.5, 0.73), 0.065)
    elif kind == "checking":
        start = -phase * 30
        _polyline(surf, ink, _arc_points(s, (0.5, 0.5), 0.28, start, start + 270, 36), 0.09 * s)
    elif kind == "scan":
        _rect(surf, ink, s, 0.32, 0.15, 0.68, 0.85, width=0.045, radius=0.07)
        for x, y in ((0.39, 0.27), (0.52, 0.27), (0.39, 0.40)):
            _rect(surf, ink, s, x, y, x + 0.09, y + 0.09, width=0.025)
            _rect(surf, ink, s, x + 0.03, y + 0.03, x + 0.06, y + 0.06)
        for x, y in ((0.53, 0.41), (0.57, 0.45), (0.53, 0.49), (0.45, 0.53), (0.39, 0.55)):
            _rect(surf, ink, s, x, y, x + 0.04, y + 0.04)
        _rect(surf, ink, s, 0.45, 0.74, 0.55, 0.765, radius=0.01)
    elif kind == "camera":
        _rect(surf, ink, s, 0.2, 0.36, 0.8, 0.72, radius=0.06)
        _rect(surf, ink, s, 0.38, 0.28, 0.56, 0.38, radius=0.02)
        _dot(surf, bg, s, (0.5, 0.54), 0.12)
        _dot(surf, ink, s, (0.5, 0.54), 0.07)
        _slash(surf, ink, bg, s)
    elif kind == "network":
        for r in (0.13, 0.255, 0.38):
            _polyline(surf, ink, _arc_points(s, (0.5, 0.74), r, 42, 138, 16), 0.075 * s)
        _dot(surf, ink, s, (0.5, 0.74), 0.055)
        _slash(surf, ink, bg, s)
    elif kind == "gate":
        _rect(surf, ink, s, 0.2, 0.3, 0.3, 0.78, radius=0.02)
        _rect(surf, ink, s, 0.3, 0.42, 0.82, 0.52, radius=0.03)
        for x in (0.42, 0.6):
            _rect(surf, bg, s, x, 0.42, x + 0.07, 0.52)
        _rect(surf, ink, s, 0.14, 0.76, 0.36, 0.82, radius=0.02)
        _slash(surf, ink, bg, s)
    elif kind in ("fault", "warning"):
        tri = [_pt(s, (0.5, 0.18)), _pt(s, (0.84, 0.78)), _pt(s, (0.16, 0.78))]
        pygame.draw.polygon(surf, ink, tri)
        _polyline(surf, ink, tri + tri[:1], 0.05 * s)  # rounded corners, inside the disc
        _exclamation(surf, bg, s, top=0.38, bottom=0.58, dot=0.7, width=0.09)
    elif kind == "online":
        _dot(surf, ink, s, (0.5, 0.5), 0.32)
    elif kind == "upload":
        _line(surf, ink, _pt(s, (0.5, 0.2)), _pt(s, (0.5, 0.62)), 0.1 * s)
        _polyline(surf, ink, [_pt(s, (0.3, 0.4)), _pt(s, (0.5, 0.2)), _pt(s, (0.7, 0.4))], 0.1 * s)
        _polyline(surf, ink, [_pt(s, (0.2, 0.62)), _pt(s, (0.2, 0.8)), _pt(s, (0.8, 0.8)), _pt(s, (0.8, 0.62))], 0.08 * s)
    else:
        raise ValueError(f"no icon {kind!r}")


@lru_cache(maxsize=256)
def icon_surface(kind: str, size: int, ink: Colour, bg: Colour, disc: Colour | None = None, phase: int = 0) -> pygame.Surface:
    """`kind` drawn in `ink` on a transparent square of `size` px, on a `disc` when given; `bg` is
    the colour behind it (used for cut-outs). `phase` turns the spinner (0..11)."""
    big = size * SUPERSAMPLE
    surf = pygame.Surface((big, big), pygame.SRCALPHA)
    if disc is not None:
        pygame.draw.circle(surf, disc, (big // 2, big // 2), big // 2)
    _draw(kind, surf, big, ink, disc or bg, phase)
    return pygame.transform.smoothscale(surf, (size, size))

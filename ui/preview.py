"""The camera frame as a pygame surface, cropped to fill the view, mirrored, scaled once per frame.

The pipeline's frames are numpy arrays (grey always, RGB when the camera was asked for colour);
pygame wraps them without a copy (`frombuffer`), crops the middle to the view's aspect ratio
("cover"), and scales with nearest-neighbour (smooth scaling costs about 5× more, which on a Pi
is the difference between 30 and 15 frames per second at 1080×810). Mirrored, because a person
facing the camera expects a mirror. A frame is converted once however often it is drawn.
"""

from __future__ import annotations

from typing import Any

import pygame

from ui.layout import Box
from ui.theme import PREVIEW_EMPTY

_GREY_PALETTE = [(i, i, i) for i in range(256)]


def frame_surface(frame: Any) -> pygame.Surface:
    """The frame's colour image (or its grey plane) as a surface sharing the frame's memory."""
    import numpy as np

    if frame.colour is not None:
        rgb = np.ascontiguousarray(frame.colour)
        h, w = rgb.shape[:2]
        return pygame.image.frombuffer(rgb, (w, h), "RGB")
    grey = np.ascontiguousarray(frame.grey)
    h, w = grey.shape[:2]
    surface = pygame.image.frombuffer(grey, (w, h), "P")
    surface.set_palette(_GREY_PALETTE)
    return surface


def cover(source: pygame.Surface, size: tuple[int, int], mirror: bool = True, smooth: bool = False) -> pygame.Surface:
    """`source` cropped to the aspect ratio of `size` (middle kept), scaled to it, mirrored."""
    sw, sh = source.get_size()
    tw, th = size
    scale = max(tw / sw, th / sh)
    cw, ch = min(sw, round(tw / scale)), min(sh, round(th / scale))
    crop = source.subsurface(pygame.Rect((sw - cw) // 2, (sh - ch) // 2, cw, ch))
    if smooth and crop.get_bitsize() >= 24:
        scaled = pygame.transform.smoothscale(crop, (tw, th))
    else:
        scaled = pygame.transform.scale(crop, (tw, th))
    return pygame.transform.flip(scaled, True, False) if mirror else scaled


class Preview:
    """Callable the renderer asks for the view of the newest frame at a box's size; caches one."""

    def __init__(self, mirror: bool = True, smooth: bool = False):
        self.mirror = mirror
        self.smooth = smooth
        self.frame: Any = None
        self._key: tuple | None = None
        self._surface: pygame.Surface | None = None
        self.conversions = 0

    def __call__(self, box: Box) -> pygame.Surface | None:
        frame = self.frame
        if frame is None:
            return None
        key = (id(frame), frame.sequence, box.w, box.h)
        if key != self._key:
            self._surface = cover(frame_surface(frame), (box.w, box.h), self.mirror, self.smooth)
            self._key = key
            self.conversions += 1
        return self._surface

    @property
    def info(self) -> dict[str, int] | None:
        frame = self.frame
        if frame is None:
            return None
        h, w = frame.grey.shape[:2]
        return {"w": w, "h": h, "seq": frame.sequence}


def draw_preview(surface: pygame.Surface, box: Box, preview: Any) -> None:
    """The camera view scaled into `box` (`preview(box)`), or the box filled plainly while there
    is no frame yet (or no camera)."""
    image = preview(box) if preview else None
    if image is not None:
        surface.blit(image, (box.x, box.y))
    else:
        surface.fill(PREVIEW_EMPTY, pygame.Rect(box))

"""zbar through pyzbar: the backend for some glare, bright-spot, pathological and non-compliant
codes zxing-cpp locates but does not read, asked for the symbol's bytes (its own character-set
guess garbles Chinese). It costs 13-20× zxing-cpp on a whole frame, so where zxing-cpp located
symbols it reads only their regions (`decode_located`). How it fails: `DecoderUnavailable` when
pyzbar or libzbar0 cannot be loaded, or the zbar is too old for binary mode (its text would be a
guess).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Sequence

from sentinel.decoding.base import (
    DecodedCode,
    DecoderUnavailable,
    Point,
    centre,
    merge,
    region_around,
    shrunk,
)
from sentinel.decoding.text import payload_text

if TYPE_CHECKING:
    import numpy as np


class PyzbarDecoder:
    """zbar through pyzbar, asked for the symbol's own bytes.

    Left to itself, zbar transcodes each symbol to UTF-8 with a guess at its character set when
    the symbol names none, and the guess is wrong for UTF-8 Chinese: 正宗铁观音茶叶 came back as
    豁｣螳鈴刀隗る浹闌ｶ蜿ｶ (read as Shift-JIS), 測試 as 皜祈岫. So zbar is put in binary mode
    (`ZBAR_CFG_BINARY`, zbar >= 0.23: the bytes of the symbol's data segments, untouched), which
    pyzbar's `decode` cannot ask for, and the text is decoded here, as UTF-8 or else GB 18030 (the
    two encodings Chinese health codes use; GB 18030 covers GBK and GB 2312). What zbar cannot
    tell us is an ECI designator: a code that names another character set (rare; zxing-cpp, which
    goes first and whose text wins where both read a code, honours it) is decoded the same way.
    """

    name = "pyzbar"
    CFG_BINARY = 4  # zbar.h: ZBAR_CFG_ENABLE, ADD_CHECK, EMIT_CHECK, ASCII, BINARY; pyzbar 0.1.9's enum predates it

    def __init__(self) -> None:
        self._pyzbar = self._zbar = None

    def _library(self):
        if self._pyzbar is None:
            try:
                from pyzbar import pyzbar, wrapper
            except ImportError as exc:  # pyzbar missing, or libzbar0 missing (pyzbar raises ImportError)
                raise DecoderUnavailable(
                    f"pyzbar cannot be loaded ({exc}); pip install pyzbar and apt install libzbar0"
                ) from exc
            self._pyzbar, self._zbar = pyzbar, wrapper
        return self._pyzbar

    def decode(self, grey: "np.ndarray") -> list[DecodedCode]:
        """pyzbar's own `decode`, with binary mode switched on for QR codes (through pyzbar's
        bindings of the same zbar calls)."""
        from ctypes import c_void_p, cast

        pyzbar = self._library()
        zbar = self._zbar
        pixels, width, height = pyzbar._pixel_data(grey)
        codes = []
        with pyzbar._image_scanner() as scanner:
            for symbol in pyzbar.ZBarSymbol:
                zbar.zbar_image_scanner_set_config(scanner, symbol, zbar.ZBarConfig.CFG_ENABLE, int(symbol == pyzbar.ZBarSymbol.QRCODE))
            if zbar.zbar_image_scanner_set_config(scanner, pyzbar.ZBarSymbol.QRCODE, self.CFG_BINARY, 1) != 0:
                # zbar before 0.23 has no binary mode: its text would be a guess, so no text at all.
                raise DecoderUnavailable("this zbar has no binary mode (zbar >= 0.23 needed: apt install libzbar0)")
            with pyzbar._image() as image:
                zbar.zbar_image_set_format(image, pyzbar._FOURCC["L800"])
                zbar.zbar_image_set_size(image, width, height)
                zbar.zbar_image_set_data(image, cast(pixels, c_void_p), len(pixels), None)
                if zbar.zbar_scan_image(scanner, image) < 0:
                    raise RuntimeError("zbar refused the frame's format")
                for found in pyzbar._decode_symbols(pyzbar._symbols_for_image(image)):
                    codes.append(self._code(found))
        return codes

    def decode_located(self, grey: "np.ndarray", located: Sequence[Sequence[Point]], read: Sequence[DecodedCode] = ()) -> list[DecodedCode]:
        """The codes in the regions around symbols located elsewhere (zxing-cpp's outlines), with
        corners in the frame's pixels. Each region is the outline with its size again on every
        side, scaled down to at most `REGION_LONGEST` px (zbar needs a few pixels per module, not
        a 900 px symbol's worth). On the hard photos: 11 of the 15 codes pyzbar reads on the whole
        frame there, for a quarter of its time. (Reading the frame once instead where the regions
        together hold as many pixels as it does cost more: zbar's time follows what is in the
        picture, and a busy photo's tiny symbols are cheap regions but an expensive frame.)

        The codes already `read` in the frame are painted out of each region first (`blanked`): in
        a busy frame a small symbol's region holds neighbours, and zbar would spend its time
        reading them again (on the hard photos pyzbar then reads the same codes in about 60 % of
        its time)."""
        codes: list[DecodedCode] = []
        for quad in located:
            left, top, region = region_around(grey, quad, REGION_MARGIN)
            if region is None:
                continue
            region, scale = shrunk(blanked(region, (left, top), read), REGION_LONGEST)
            for code in self.decode(region):
                corners = tuple((int(round(x / scale)) + left, int(round(y / scale)) + top) for x, y in code.corners)
                codes = merge(codes, [replace(code, corners=corners)])
        return codes

    def _code(self, symbol) -> DecodedCode:
        return DecodedCode(
            text=payload_text(bytes(symbol.data)),
            raw=bytes(symbol.data),
            corners=_four_corners(symbol.polygon, symbol.rect),
            decoder=self.name,
        )


def blanked(region: "np.ndarray", offset: Point, read: Sequence[DecodedCode]) -> "np.ndarray":
    """The region (at `offset` in the frame) with each code of `read` that reaches into it painted
    over in the region's median grey (its background: a white patch made zbar miss the code
    beside it in one photo), its outline grown by `BLANK_GROWTH` around its centre to take in the
    modules at its edge; the region itself when none does. A copy: the frame is never drawn on."""
    import numpy as np
    from PIL import Image, ImageDraw

    left, top = offset
    height, width = region.shape
    outlines = []
    for code in read:
        xs, ys = [x - left for x, _ in code.corners], [y - top for _, y in code.corners]
        if max(xs) < 0 or max(ys) < 0 or min(xs) >= width or min(ys) >= height:
            continue
        corners = list(zip(xs, ys))
        cx, cy = centre(corners)
        outlines.append([(cx + (x - cx) * BLANK_GROWTH, cy + (y - cy) * BLANK_GROWTH) for x, y in corners])
    if not outlines:
        return region
    image = Image.fromarray(region.copy())  # the region may be a view of the frame
    draw = ImageDraw.Draw(image)
    background = int(np.median(region[::4, ::4]))  # every 16th pixel: the same grey, a sixteenth of the time
    for outline in outlines:
        draw.polygon(outline, fill=background)
    return np.asarray(image)


# A read code's outline is grown by 15 % (7.5 % of its size on each side) before it is painted out:
# its corners as a decoder gives them can sit a module inside the symbol, and a neighbour's quiet
# zone (4 modules, 16 % of a small code on each side) keeps the unread symbol out of reach.
BLANK_GROWTH = 1.15

# The region around a located symbol: its size again on every side (half its size: 8 codes on the
# hard photos instead of 11), at most 400 px (unscaled regions: 1 code more for 2.4× the time).
REGION_MARGIN, REGION_LONGEST = 1.0, 400


def _four_corners(polygon: Sequence, rect) -> tuple[Point, ...]:
    """zbar's outline, turned clockwise like zxing-cpp's (zbar goes the other way round); an
    outline that is not four points falls back to zbar's bounding box."""
    if len(polygon) != 4:
        left, top, width, height = rect
        return ((left, top), (left + width, top), (left + width, top + height), (left, top + height))
    points = [(int(p.x), int(p.y)) for p in polygon]
    return tuple(points if _clockwise(points) else points[:1] + points[:0:-1])


def _clockwise(points: list[Point]) -> bool:
    """Clockwise as seen on screen, where y grows downwards: positive shoelace area."""
    n = len(points)
    area = sum(points[i][0] * points[(i + 1) % n][1] - points[(i + 1) % n][0] * points[i][1] for i in range(n))
    return area > 0

"""zxing-cpp: the first backend, with second looks at what it located but could not decode.

It reads about twice as many real photos as pyzbar, all of the codes shown on phone screens, at a
fraction of the others' cost, and it tells which QR symbols it located but could not decode: the
cascade's gate for the slower backends. How it fails: `DecoderUnavailable` when zxing-cpp cannot
be imported (on first use, not at import). Its text goes through `text.zxing_text`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sentinel.decoding.base import (
    DecodedCode,
    DecoderUnavailable,
    Point,
    Scan,
    area,
    merge,
    overlaps,
    region_around,
    still_unread,
)
from sentinel.decoding.contrast import local_contrast
from sentinel.decoding.text import zxing_text

if TYPE_CHECKING:
    import numpy as np


class ZxingDecoder:
    """zxing-cpp, with second looks at what it located but could not decode.

    With `second_looks` (the default), each QR symbol zxing-cpp located but could not read is read
    again from its own region of the frame (the symbol's outline with half its size around it):
    for regions under `UPSCALE_BELOW` px scaled up 2× (small codes, common in the 640 px lores
    stream), then with the region's own local contrast (an adaptive threshold, then CLAHE:
    contrast.py; better than zxing-cpp's local average on glare, bright spots and shadows); if a
    symbol is still unread, the whole frame is read once more with the GlobalHistogram binarizer
    (one threshold for the frame). The largest of the outlines zxing-cpp gives for one symbol (it
    may locate it at several scales) is the one looked at. A frame in which nothing was located
    costs exactly one pass, so an idle kiosk pays nothing for them. Measured on BoofCV's
    qrcodes_v3 photos (docs/benchmarks.md, "Hard photos").
    """

    name = "zxing-cpp"

    def __init__(self, second_looks: bool = True) -> None:
        self._zxing = None
        self.second_looks = second_looks

    def _library(self):
        if self._zxing is None:
            try:
                import zxingcpp
            except ImportError as exc:
                raise DecoderUnavailable(f"zxing-cpp cannot be loaded ({exc}); pip install zxing-cpp") from exc
            self._zxing = zxingcpp
        return self._zxing

    def decode(self, grey: "np.ndarray") -> list[DecodedCode]:
        return self.scan(grey).codes

    def scan(self, grey: "np.ndarray") -> Scan:
        """The codes read, and the QR symbols located but not decoded. Asking zxing-cpp for the
        latter (`return_errors`) costs nothing measurable and leaves the decoded ones unchanged
        (checked on the 179 black-box images); its QRCode format also covers Micro QR and rMQR."""
        found = self._read(grey)
        codes = [self._code(barcode, grey) for barcode in found if barcode.valid]
        located: list[tuple[Point, ...]] = []
        for barcode in found:  # one symbol can be located several times over (at several scales): keep the largest outline
            quad = self._corners(barcode)
            if barcode.valid or any(overlaps(quad, c.corners) for c in codes):
                continue
            same = [i for i, q in enumerate(located) if overlaps(quad, q)]
            if not same:
                located.append(quad)
            elif area(quad) > area(located[same[0]]):
                located[same[0]] = quad
        if self.second_looks and located:
            for quad in located:
                if not any(overlaps(quad, c.corners) for c in codes):  # not read meanwhile, from a neighbour's region
                    codes = merge(codes, self._second_look(grey, quad))
            located = still_unread(located, codes)
        if self.second_looks and located:
            codes, located = self._whole_frame_look(grey, codes, located)
        return Scan(codes=codes, unread=len(located), located=tuple(located))

    def _whole_frame_look(self, grey: "np.ndarray", codes: list[DecodedCode], located: list) -> tuple[list[DecodedCode], list]:
        """The whole frame once more with the GlobalHistogram binarizer, where a located symbol is
        still unread: one threshold per frame instead of a local average separates codes from
        bright spots and glare that the default splits, and finds codes it did not even locate
        (+0.9 points at full size and at 640 px on the hard photos, 0.14× zxing-cpp's time:
        docs/benchmarks.md, "Hard photos"). Codes it reads are merged; the symbols they cover
        are no longer unread."""
        binarizer = self._library().Binarizer.GlobalHistogram
        codes = merge(codes, [self._code(b, grey, binarizer) for b in self._read(grey, binarizer) if b.valid])
        return codes, still_unread(located, codes)

    def _read(self, grey: "np.ndarray", binarizer=None) -> list:
        zxing = self._library()
        # Plain, not the default HRI: HRI rewrites control characters as "<GS>", which would
        # change the payload that credential rules and the verifier see.
        return zxing.read_barcodes(
            grey,
            formats=zxing.BarcodeFormat.QRCode,
            text_mode=zxing.TextMode.Plain,
            binarizer=binarizer if binarizer is not None else zxing.Binarizer.LocalAverage,
            return_errors=True,
        )

    def _second_look(self, grey: "np.ndarray", quad: tuple[Point, ...]) -> list[DecodedCode]:
        """The codes read in one located region by the first of its looks (`_looks`) that reads
        any. In a busy frame that can be a neighbour's code rather than the located symbol: the
        code is kept, and the symbol stays unread (`still_unread`: no code covers it), so that
        the later backends and the main stream (sentinel/decoding/detail.py) still look at it.
        (Going on to the next looks instead read 2-3 more of the 240 codes in the busiest photos
        for 0.1× zxing-cpp's time.)"""
        left, top, region = region_around(grey, quad, 0.5)
        if region is None:
            return []
        for image, scale in self._looks(region):
            read = [self._code(b, image, offset=(left, top), scale=scale) for b in self._read(image) if b.valid]
            if read:
                return read
        return []

    def _looks(self, region: "np.ndarray"):
        """(image, scale back to the region) for each look at a located region, in order, each
        made only when asked for: twice the size, for a region under `UPSCALE_BELOW` px; the
        region's own local contrast (contrast.py: nothing without OpenCV). (The region with the
        GlobalHistogram binarizer, the first look before the contrast looks came, read nothing
        they do not, for 0.07× zxing-cpp's time at full size and 0.3× at 640 px.)"""
        if max(region.shape) <= UPSCALE_BELOW:
            yield _twice(region), 0.5
        for image in local_contrast(region):
            yield image, 1.0

    def _code(self, barcode, image, binarizer=None, offset: Point = (0, 0), scale: float = 1.0) -> DecodedCode:
        corners = self._corners(barcode, offset, scale)
        raw = bytes(barcode.bytes)
        text = zxing_text(barcode.text, raw, lambda: self._says_charset(image, binarizer, barcode))
        return DecodedCode(text=text, raw=raw, corners=corners, decoder=self.name)

    def _says_charset(self, image, binarizer, barcode) -> bool:
        """Whether the symbol carries an ECI. zxing-cpp's Python API tells only in the HexECI text
        mode ("]Q2" and the designator before the bytes), so the image it was read from is read
        again that way; this only happens for payloads that are neither ASCII nor UTF-8."""
        zxing = self._library()
        again = zxing.read_barcodes(
            image,
            formats=zxing.BarcodeFormat.QRCode,
            text_mode=zxing.TextMode.HexECI,
            binarizer=binarizer if binarizer is not None else zxing.Binarizer.LocalAverage,
        )
        mine = self._corners(barcode)
        return any(other.text.startswith("5D 51 32") for other in again if overlaps(self._corners(other), mine))

    @staticmethod
    def _corners(barcode, offset: Point = (0, 0), scale: float = 1.0) -> tuple[Point, ...]:
        p = barcode.position
        return tuple(
            (int(round(q.x * scale + offset[0])), int(round(q.y * scale + offset[1])))
            for q in (p.top_left, p.top_right, p.bottom_right, p.bottom_left)
        )


# px: a located region larger than this is not scaled up (its code is big enough already, and the
# pass costs): second looks with 200 px gave +3.0 points at 640 px for 1.4-1.55× zxing-cpp's time;
# with 400 px the same codes at about 1.9×.
UPSCALE_BELOW = 200


def _twice(image: "np.ndarray") -> "np.ndarray":
    """The image scaled up 2× (bilinear, Pillow: already the image files' library)."""
    import numpy as np
    from PIL import Image

    h, w = image.shape
    return np.ascontiguousarray(np.asarray(Image.fromarray(image).resize((2 * w, 2 * h), Image.Resampling.BILINEAR)))

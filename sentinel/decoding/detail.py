"""A code located but not decoded in the grey plane, read again from the camera's larger stream.

The Pi camera gives the decoders its 640×480 lores stream (the Y plane is free) and has the same
view at full resolution in its main stream. A code too small for 640 px is often located there
(its finder patterns) but not decoded; the same region of the main stream has twice the pixels
per module. So where a frame offers its `detail` (sentinel/frames.py) and symbols are left
unread, each one's region (its outline with half its size around it, scaled to the detail) is
decoded there, with the frame's decoder (a cascade's `scan_region`). On BoofCV's hard photos
scaled to 640 px with their full-size originals as the detail the kiosk's cascade reads 65.2 ->
68.2 % of the codes (category average; docs/benchmarks.md, "Hard photos"): small codes mostly,
and codes under bright spots, which the finer pixels separate from the glare. A frame with
nothing located pays nothing.

How it fails: a detail that is gone (None: asked after the camera took its buffer back), not
2-D, or no larger than the grey plane gives no codes; anything that raises (the camera's buffer,
a decoder) is the caller's to catch: the pipeline logs it once and carries on with what the grey
plane gave.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from sentinel.decoding.base import DecodedCode, Point, Scan, merge, region_around, still_unread

if TYPE_CHECKING:
    import numpy as np

#: the region around a located symbol, as a share of its size on every side
REGION_MARGIN = 0.5


def read_in_detail(decoder, detail: "np.ndarray | None", located: Sequence[Sequence[Point]], grey_shape: tuple[int, ...]) -> list[DecodedCode]:
    """The codes in the regions of `located` (outlines in the grey plane's pixels), read from
    `detail` (the same view, larger), with corners in the grey plane's pixels. `decoder` reads a
    region with `scan_region` (a cascade: no frame counted, no whole-frame fallbacks), `scan` or
    `decode`."""
    if detail is None or getattr(detail, "ndim", 0) != 2 or not located:
        return []
    fy, fx = detail.shape[0] / grey_shape[0], detail.shape[1] / grey_shape[1]
    if fx <= 1.0 or fy <= 1.0:
        return []  # no finer than what was read already
    read = getattr(decoder, "scan_region", None) or getattr(decoder, "scan", None)
    codes: list[DecodedCode] = []
    for quad in located:
        if not quad:
            continue
        big = [(int(round(x * fx)), int(round(y * fy))) for x, y in quad]
        left, top, region = region_around(detail, big, REGION_MARGIN)
        if region is None:
            continue
        found = read(region).codes if read is not None else decoder.decode(region)
        back = [replace(code, corners=tuple((int(round((x + left) / fx)), int(round((y + top) / fy))) for x, y in code.corners)) for code in found]
        codes = merge(codes, back)
    return codes


def scan_with_detail(decoder, scan: Scan, detail: "Callable[[], np.ndarray | None] | None", grey_shape: tuple[int, ...]) -> Scan:
    """`scan` of a frame (by `decoder`), completed from the frame's `detail` (fetched only when a
    symbol was located and left unread): what the kiosk's pipeline and bench/decode.py do."""
    if not scan.located or detail is None:
        return scan
    return with_detail(scan, read_in_detail(decoder, detail(), scan.located, grey_shape))


def with_detail(scan: Scan, more: Sequence[DecodedCode]) -> Scan:
    """`scan` with the codes read in the detail: merged, and the symbols they cover no longer
    counted as located and unread."""
    if not more:
        return scan
    codes = merge(list(scan.codes), more)
    left = tuple(still_unread(scan.located, codes))
    return Scan(codes=codes, unread=max(0, scan.unread - (len(scan.located) - len(left))), located=left)

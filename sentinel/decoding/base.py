"""What every decoder backend hands over and how outlines are compared: the code, the scan of one
frame, the protocol a backend implements, and the geometry that tells two outlines of one symbol
apart from two symbols. Pure Python (numpy only inside `region_around`, on first use)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, Sequence

if TYPE_CHECKING:
    import numpy as np

Point = tuple[int, int]


@dataclass(frozen=True)
class DecodedCode:
    """One code found in a frame.

    `text` is what credential rules look at; `raw` is kept for payloads that are not text.
    `corners` are four points in image pixels, clockwise on screen, for drawing and for telling two
    codes in one frame apart; zxing-cpp starts at the code's own top-left, zbar does not know it
    and starts where its scan met the outline. `decoder` says which backend read it, for field
    statistics.
    """

    text: str
    raw: bytes
    corners: tuple[Point, ...]
    decoder: str


class Decoder(Protocol):
    name: str

    def decode(self, grey: "np.ndarray") -> list[DecodedCode]:
        """Codes in an H×W uint8 frame; [] when there are none."""
        ...


class DecoderUnavailable(RuntimeError):
    """A backend's library cannot be loaded: an installation problem, not a property of a frame."""


@dataclass(frozen=True)
class Scan:
    """What a backend that can tell more than `decode` made of one frame: the codes it read, and
    the QR symbols it located but could not decode (a checksum error from glare, damage, blur, or a
    code too small in the frame). A cascade uses them to decide whether a slower fallback is worth
    running; a kiosk can use `located` to tell the person to hold the phone closer or turn its
    screen brighter, and to decode that region again from a sharper picture.

    `located` holds the corners of each such symbol (as `DecodedCode.corners`) that no backend
    read in the end; `unread` is how many there are.
    """

    codes: list[DecodedCode]
    unread: int
    located: tuple[tuple[Point, ...], ...] = ()

    @property
    def unreadable(self) -> bool:
        """A code is in view but could not be read: "hold it closer / brighter", not "no code"."""
        return bool(self.located) or self.unread > 0


# --- outlines ------------------------------------------------------------------------------------


def centre(corners: Sequence[Point]) -> tuple[float, float]:
    return sum(p[0] for p in corners) / len(corners), sum(p[1] for p in corners) / len(corners)


def inside(point: tuple[float, float], quad: Sequence[Point]) -> bool:
    """Whether a point lies inside a quadrilateral (even-odd ray casting; any simple polygon)."""
    x, y = point
    hit = False
    for (x1, y1), (x2, y2) in zip(quad, [*quad[1:], quad[0]]):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            hit = not hit
    return hit


def area(quad: Sequence[Point]) -> float:
    n = len(quad)
    return abs(sum(quad[i][0] * quad[(i + 1) % n][1] - quad[(i + 1) % n][0] * quad[i][1] for i in range(n))) / 2


def overlaps(a: Sequence[Point], b: Sequence[Point]) -> bool:
    """Two outlines are of one symbol when either's centre lies inside the other."""
    return inside(centre(a), b) or inside(centre(b), a)


def merge(codes: list[DecodedCode], more: Sequence[DecodedCode]) -> list[DecodedCode]:
    """`codes` and those of `more` that are not the same symbol again (same place in the frame)."""
    out = list(codes)
    for code in more:
        if not any(overlaps(code.corners, c.corners) for c in out):
            out.append(code)
    return out


def still_unread(located: Sequence[Sequence[Point]], codes: Sequence[DecodedCode]) -> list:
    """The outlines of `located` that none of `codes` covers (either's centre inside the other)."""
    return [q for q in located if not any(overlaps(q, c.corners) for c in codes)]


def region_around(grey: "np.ndarray", quad: Sequence[Point], margin: float):
    """(left, top, contiguous crop) around a located symbol, `margin` × its size again on every
    side; (0, 0, None) when that is no real region."""
    import numpy as np

    xs, ys = [p[0] for p in quad], [p[1] for p in quad]
    margin = int(max(max(xs) - min(xs), max(ys) - min(ys), 8) * margin) + 4
    left, top = max(0, min(xs) - margin), max(0, min(ys) - margin)
    right, bottom = min(grey.shape[1], max(xs) + margin), min(grey.shape[0], max(ys) + margin)
    if right - left < 16 or bottom - top < 16:
        return 0, 0, None
    return left, top, np.ascontiguousarray(grey[top:bottom, left:right])


def shrunk(image: "np.ndarray", longest: int) -> tuple["np.ndarray", float]:
    """(image, scale): the image scaled down (area-averaged, Pillow) so its longer side is at most
    `longest` px, and the factor applied (1.0: left as it was)."""
    import numpy as np
    from PIL import Image

    h, w = image.shape
    if max(h, w) <= longest:
        return image, 1.0
    scale = longest / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.ascontiguousarray(np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BOX))), scale

"""QR codes in a grey frame: the decoder seam of the pipeline.

Two real backends, zxing-cpp and pyzbar, and a cascade of them. zxing-cpp goes first because it
reads about twice as many real photos as pyzbar, all of the codes shown on phone screens (pyzbar
read none), and is about 14× faster (see DESIGN.md, "Decoders"); pyzbar still reads some glare and
pathological codes zxing-cpp misses, so it is the fallback. A kiosk camera mostly sees nobody, and
pyzbar on an empty 640×480 frame costs 13–16× what zxing-cpp does, so the fallback runs only
when zxing-cpp located a QR symbol it could not decode, and otherwise on every Nth frame in which
zxing-cpp saw nothing at all (see `CascadeDecoder`; docs/benchmarks.md, "QR decoding").

The core must import without native libraries loaded (a technician's `sentinel check-config` does
not need them), so each backend imports its library on first use, and numpy is only a type here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, Sequence

from sentinel.images import ImageError, load_grey  # noqa: F401 - image files: the one loader, re-exported here

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger("sentinel.decoding")

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
    how many QR symbols it located but could not decode (a checksum error from glare, damage or
    blur). A cascade uses `unread` to decide whether a slower fallback is worth running."""

    codes: list[DecodedCode]
    unread: int


# --- backends ---------------------------------------------------------------------------------


class ZxingDecoder:
    name = "zxing-cpp"

    def __init__(self) -> None:
        self._zxing = None

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
        zxing = self._library()
        # Plain, not the default HRI: HRI rewrites control characters as "<GS>", which would
        # change the payload that credential rules and the verifier see.
        found = zxing.read_barcodes(
            grey, formats=zxing.BarcodeFormat.QRCode, text_mode=zxing.TextMode.Plain, return_errors=True
        )
        codes = [self._code(barcode) for barcode in found if barcode.valid]
        return Scan(codes=codes, unread=len(found) - len(codes))

    def _code(self, barcode) -> DecodedCode:
        p = barcode.position
        corners = tuple((int(q.x), int(q.y)) for q in (p.top_left, p.top_right, p.bottom_right, p.bottom_left))
        return DecodedCode(text=barcode.text, raw=bytes(barcode.bytes), corners=corners, decoder=self.name)


class PyzbarDecoder:
    """zbar through pyzbar.

    zbar hands back its own transcoding of the symbol to UTF-8 (it honours ECI and otherwise
    guesses the character set), so `raw` here is those bytes, not the symbol's byte segments, and
    pyzbar offers no way to ask zbar for the untouched bytes. The guess can be wrong: UTF-8 測試
    without an ECI comes back as 皜祈岫, which is one more reason zxing-cpp goes first.
    """

    name = "pyzbar"

    def __init__(self) -> None:
        self._pyzbar = None

    def _library(self):
        if self._pyzbar is None:
            try:
                from pyzbar import pyzbar
            except ImportError as exc:  # pyzbar missing, or libzbar0 missing (pyzbar raises ImportError)
                raise DecoderUnavailable(
                    f"pyzbar cannot be loaded ({exc}); pip install pyzbar and apt install libzbar0"
                ) from exc
            self._pyzbar = pyzbar
        return self._pyzbar

    def decode(self, grey: "np.ndarray") -> list[DecodedCode]:
        pyzbar = self._library()
        found = pyzbar.decode(grey, symbols=[pyzbar.ZBarSymbol.QRCODE])
        return [self._code(symbol) for symbol in found]

    def _code(self, symbol) -> DecodedCode:
        return DecodedCode(
            text=_zbar_text(symbol.data),
            raw=bytes(symbol.data),
            corners=_four_corners(symbol.polygon, symbol.rect),
            decoder=self.name,
        )


def _zbar_text(data: bytes) -> str:
    """zbar's output is UTF-8 unless it could not transcode; then keep every byte, as Latin-1."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


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


# --- cascade ----------------------------------------------------------------------------------


DEFAULT_FALLBACK_EVERY = 5


class CascadeDecoder:
    """Each decoder in turn until one finds something, skipping fallbacks on frames with nothing
    code-like in them.

    Once a backend that reports what it located (one with a `scan` method, i.e. zxing-cpp) has
    looked at a frame and read nothing, the decoders after it run only if it located a QR symbol
    it could not decode, or on every `fallback_every`-th frame in which it located nothing: some
    codes that only pyzbar reads are not even located by zxing-cpp (a code printed on a cracker in
    the black-box set), and a code held up to the camera is then still read within that many
    frames, while an empty frame costs about what zxing-cpp alone costs plus 1/N of pyzbar's.
    The first frame a cascade sees runs the whole cascade. `fallback_every=1` runs the fallbacks
    on every frame without a code, as before, which is what a caller decoding still images once
    each (not a camera stream) wants; `None` runs them only on located-but-unread symbols. A
    backend that cannot report what it located (or that is unavailable or fails on the frame)
    gates nothing: the decoders after it run as before.

    A backend that raises is skipped for that frame, and one whose library is missing is skipped
    for good: a kiosk with a broken pyzbar must still read codes with zxing-cpp. Each backend's
    first failure is logged; a camera at 10 frames/s would otherwise flood the journal. Only when
    no backend can be loaded at all does `decode` raise, since returning [] would make a kiosk
    that can never read a code look like one that sees no codes.

    It keeps a frame count, so one cascade serves one camera (one thread).
    """

    name = "cascade"

    def __init__(self, decoders: Sequence[Decoder], fallback_every: int | None = DEFAULT_FALLBACK_EVERY) -> None:
        if not decoders:
            raise ValueError("a cascade needs at least one decoder")
        if fallback_every is not None and (type(fallback_every) is not int or fallback_every < 1):
            raise ValueError(f"fallback_every must be a whole number of frames >= 1, or None; got {fallback_every!r}")
        self.decoders = list(decoders)
        self.fallback_every = fallback_every
        self._unavailable: dict[str, str] = {}
        self._logged: set[str] = set()
        # Frames in which the fallbacks were skipped since they last ran; starts due.
        self._skipped = 0 if fallback_every is None else fallback_every - 1

    def decode(self, grey: "np.ndarray") -> list[DecodedCode]:
        looked = False  # a backend that reports what it located has seen this frame and read nothing
        suspect = False  # ... and located a symbol it could not decode
        gate: str | None = None  # "ran" / "skipped": what the looked-at frame did to the fallbacks
        for decoder in self.decoders:
            if decoder.name in self._unavailable:
                continue
            if looked and gate is None:
                gate = "ran" if suspect or self._due() else "skipped"
            if gate == "skipped":
                continue
            try:
                found, unread = self._run(decoder, grey)
            except DecoderUnavailable as exc:
                self._unavailable[decoder.name] = str(exc)
                self._log_once(decoder.name, f"decoder {decoder.name} unavailable, skipped from now on: {exc}")
                continue
            except Exception as exc:  # noqa: BLE001 - a backend bug must not stop the kiosk
                self._log_once(decoder.name, f"decoder {decoder.name} failed, skipped: {exc!r}", exc)
                continue
            if found:
                self._count(gate)
                return found
            if unread is not None and gate is None:
                looked, suspect = True, unread > 0
        if len(self._unavailable) == len(self.decoders):
            raise DecoderUnavailable("no decoder can be loaded: " + "; ".join(self._unavailable.values()))
        self._count(gate)
        return []

    @staticmethod
    def _run(decoder: Decoder, grey: "np.ndarray") -> tuple[list[DecodedCode], int | None]:
        """The decoder's codes, and how many symbols it located but could not read (None: it cannot tell)."""
        scan = getattr(decoder, "scan", None)
        if scan is None:
            return decoder.decode(grey), None
        result = scan(grey)
        return result.codes, result.unread

    def _due(self) -> bool:
        return self.fallback_every is not None and self._skipped >= self.fallback_every - 1

    def _count(self, gate: str | None) -> None:
        if gate == "ran":
            self._skipped = 0
        elif gate == "skipped":
            self._skipped += 1

    def _log_once(self, name: str, message: str, exc: BaseException | None = None) -> None:
        if name in self._logged:
            return
        self._logged.add(name)
        log.warning(message, exc_info=exc)


BACKENDS: dict[str, type] = {"zxing-cpp": ZxingDecoder, "pyzbar": PyzbarDecoder}
DEFAULT_ORDER = ["zxing-cpp", "pyzbar"]


def make_decoder(order: Sequence[str], *, fallback_every: int | None = DEFAULT_FALLBACK_EVERY) -> Decoder:
    """The decoder for a config's or command line's list of backend names (one name: that backend
    alone); `fallback_every` as for `CascadeDecoder`."""
    unknown = [name for name in order if name not in BACKENDS]
    if unknown or not order:
        given = ", ".join(map(repr, unknown)) or "(none given)"
        raise ValueError(f"unknown decoder {given}; choose from {', '.join(BACKENDS)}")
    decoders = [BACKENDS[name]() for name in order]
    return decoders[0] if len(decoders) == 1 else CascadeDecoder(decoders, fallback_every=fallback_every)

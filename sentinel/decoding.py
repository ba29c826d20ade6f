"""QR codes in a grey frame: the decoder seam of the pipeline.

Three backends and a cascade of them. zxing-cpp goes first because it reads about twice as many
real photos as pyzbar, all of the codes shown on phone screens (pyzbar read none), and is about
14× faster (see DESIGN.md, "Decoders"); it takes second looks (another binarizer, twice the size)
at each symbol it located but could not decode. OpenCV's WeChat reader (`hardware/wechat_qr.py`,
CNN detector and super-resolution) reads many glare, bright-spot and damaged codes zxing-cpp
misses but costs about 100 ms a frame; pyzbar reads some pathological ones. A kiosk camera mostly
sees nobody, so the slower backends run only where zxing-cpp located a QR symbol it could not
decode, and pyzbar also on one empty frame in N (see `CascadeDecoder`; docs/benchmarks.md, "QR
decoding" and "Hard photos"). Codes are merged over the backends that ran, and a symbol located
but read by none is reported (`Scan.located`): a code is in view, too small or too poor to read.

How it fails: a backend whose library (or, for WeChat, model files) cannot be loaded is skipped
for good and logged once; one that raises on a frame is skipped for that frame; only when none
can be loaded does `decode` raise. No backend guesses at text: zxing-cpp decodes as the symbol
says (ECI) and otherwise guesses as zxing does, pyzbar is asked for the symbol's bytes (decoded here as
UTF-8, else GB 18030), WeChat's text is what OpenCV decoded as UTF-8 (anything else is dropped).

The core must import without native libraries loaded (a technician's `sentinel check-config` does
not need them), so each backend imports its library on first use, and numpy is only a type here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Protocol, Sequence

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


# --- backends ---------------------------------------------------------------------------------


class ZxingDecoder:
    """zxing-cpp, with second looks at what it located but could not decode.

    With `second_looks` (the default), each QR symbol zxing-cpp located but could not read is read
    again from its own region of the frame (the symbol's outline with half its size around it),
    first with the GlobalHistogram binarizer (one threshold for the region: better than the default
    local average on glare, bright spots and shadows), then, for regions under `UPSCALE_BELOW` px,
    scaled up 2× (small codes, common in the 640 px lores stream). The largest of the outlines
    zxing-cpp gives for one symbol (it may locate it at several scales) is the one looked at. A frame in which nothing was located costs exactly one
    pass, so an idle kiosk pays nothing for them. Measured on BoofCV's qrcodes_v3 photos
    (docs/benchmarks.md, "Hard photos").
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
            if barcode.valid or any(_overlaps(quad, c.corners) for c in codes):
                continue
            same = [i for i, q in enumerate(located) if _overlaps(quad, q)]
            if not same:
                located.append(quad)
            elif _area(quad) > _area(located[same[0]]):
                located[same[0]] = quad
        if self.second_looks and located:
            missed = []
            for quad in located:
                code = self._second_look(grey, quad)
                if code is None:
                    missed.append(quad)
                elif not any(_overlaps(code.corners, c.corners) for c in codes):
                    codes.append(code)
            located = missed
        return Scan(codes=codes, unread=len(located), located=tuple(located))

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

    def _second_look(self, grey: "np.ndarray", quad: tuple[Point, ...]) -> DecodedCode | None:
        """The code in one located region, read with another binarizer or at twice the size."""
        zxing = self._library()
        left, top, region = _region(grey, quad)
        if region is None:
            return None
        for barcode in self._read(region, zxing.Binarizer.GlobalHistogram):
            if barcode.valid:
                return self._code(barcode, region, zxing.Binarizer.GlobalHistogram, offset=(left, top))
        if max(region.shape) <= UPSCALE_BELOW:
            bigger = _twice(region)
            for barcode in self._read(bigger):
                if barcode.valid:
                    return self._code(barcode, bigger, offset=(left, top), scale=0.5)
        return None

    def _code(self, barcode, image, binarizer=None, offset: Point = (0, 0), scale: float = 1.0) -> DecodedCode:
        corners = self._corners(barcode, offset, scale)
        raw = bytes(barcode.bytes)
        text = _zxing_text(barcode.text, raw, lambda: self._says_charset(image, binarizer, barcode))
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
        return any(other.text.startswith("5D 51 32") for other in again if _overlaps(self._corners(other), mine))

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


def _zxing_text(text: str, raw: bytes, says_charset: Callable[[], bool]) -> str:
    """zxing-cpp's text where the symbol is ASCII or UTF-8, is real Shift-JIS (kanji or full-width
    kana: Kanji-mode segments, Japanese codes), or names its character set (an ECI); otherwise the
    bytes as GB 18030 (`payload_text`). Left to itself zxing-cpp falls back to ISO-8859-1 or
    half-width katakana for GB 18030 bytes, and every GB 18030 health-code text tried came out
    garbled (健康码绿码 as ½¡¿µÂëÂÌÂë, 北京健康宝 as ｱｱｾｩｽ｡ｿｵｱｦ). The price: a Japanese code in
    half-width katakana alone and without an ECI reads as Chinese."""
    if raw.isascii():
        return text
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if any(ord(ch) > 0xFF and not 0xFF61 <= ord(ch) <= 0xFF9F for ch in text):
        return text  # zxing-cpp found double-byte Shift-JIS: kanji, kana
    return text if says_charset() else payload_text(raw)


def _region(grey: "np.ndarray", quad: tuple[Point, ...]):
    return region_around(grey, quad, 0.5)


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


def _twice(image: "np.ndarray") -> "np.ndarray":
    """The image scaled up 2× (bilinear, Pillow: already the image files' library)."""
    import numpy as np
    from PIL import Image

    h, w = image.shape
    return np.ascontiguousarray(np.asarray(Image.fromarray(image).resize((2 * w, 2 * h), Image.Resampling.BILINEAR)))


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


def _area(quad: Sequence[Point]) -> float:
    n = len(quad)
    return abs(sum(quad[i][0] * quad[(i + 1) % n][1] - quad[(i + 1) % n][0] * quad[i][1] for i in range(n))) / 2


def _overlaps(a: Sequence[Point], b: Sequence[Point]) -> bool:
    """Two outlines are of one symbol when either's centre lies inside the other."""
    return inside(centre(a), b) or inside(centre(b), a)


def merge(codes: list[DecodedCode], more: Sequence[DecodedCode]) -> list[DecodedCode]:
    """`codes` and those of `more` that are not the same symbol again (same place in the frame)."""
    out = list(codes)
    for code in more:
        if not any(_overlaps(code.corners, c.corners) for c in out):
            out.append(code)
    return out


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

    def _code(self, symbol) -> DecodedCode:
        return DecodedCode(
            text=payload_text(bytes(symbol.data)),
            raw=bytes(symbol.data),
            corners=_four_corners(symbol.polygon, symbol.rect),
            decoder=self.name,
        )


def payload_text(data: bytes) -> str:
    """A symbol's bytes as text when it names no character set: UTF-8, else GB 18030, else every
    byte kept as Latin-1 (a payload no credential rule will match, rather than an exception)."""
    for encoding in ("utf-8", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
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


# pyzbar costs 13-20× zxing-cpp on an empty 640×480 frame: once in 200 empty frames keeps an idle
# kiosk at about 1.1× zxing-cpp's cost (1 in 100 measured 1.2×), and still reads a code zxing-cpp
# never locates (rare: 2 of 652 codes in the hard photos) within 20 s at 10 frames/s.
DEFAULT_FALLBACK_EVERY = 200


class CascadeDecoder:
    """zxing-cpp first, the slower backends only where they can help, and every code any of them
    read.

    Once a backend that reports what it located (one with a `scan` method, i.e. zxing-cpp) has
    looked at a frame, the decoders after it run only if it located a QR symbol it could not
    decode (whether or not it read other codes in the frame: a busy frame can hold both), or, for
    those that may also run on frames where nothing was located (pyzbar: some codes zxing-cpp does
    not even locate, a code printed on a cracker in the black-box set), on every
    `fallback_every`-th frame in which nothing was read or located. A backend with
    `only_located = True` (the WeChat reader: far too slow for an idle camera) never runs on such
    frames, unless `fallback_every=1`. An empty frame thus costs zxing-cpp's single pass plus 1/N
    of pyzbar's. The first frame a cascade sees runs the whole cascade. `fallback_every=1` runs
    every fallback on every frame without a code, which is what a caller decoding still images
    once each (not a camera stream) wants (`scan-image`: WeChat's CNN finds codes zxing-cpp does not
    even locate, +2.6 points at full size on the hard photos); `None` runs them only on
    located-but-unread symbols. A backend that cannot report what
    it located (or that is unavailable or fails on the frame) gates nothing: the decoders after it
    run while nothing has been read, as before.

    Codes are merged over the backends that ran, in order; a code found again at the same place
    (either's centre inside the other's outline) is kept as the earlier backend read it, since
    zxing-cpp's text is the symbol's bytes as the symbol says, and zbar's is a guess. A located
    symbol stays in `Scan.located` until some backend reads a code there.

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
        return self.scan(grey).codes

    def scan(self, grey: "np.ndarray") -> Scan:
        """Every code read, and the symbols located that none of the backends could read."""
        codes: list[DecodedCode] = []
        located: list[tuple[Point, ...]] = []
        looked = False  # a backend that reports what it located has seen this frame
        gate: str | None = None  # "ran" / "skipped": what an empty looked-at frame did to the fallbacks
        for decoder in self.decoders:
            if decoder.name in self._unavailable:
                continue
            if looked:
                if not located:
                    if codes:
                        break  # read, and nothing left over: as good as it gets
                    if gate is None:
                        gate = "ran" if self._due() else "skipped"
                    if gate == "skipped" or (getattr(decoder, "only_located", False) and self.fallback_every != 1):
                        continue
            elif codes:
                break  # the backends before could not say what they located: stop at the first that read
            try:
                found, seen = self._run(decoder, grey)
            except DecoderUnavailable as exc:
                self._unavailable[decoder.name] = str(exc)
                self._log_once(decoder.name, f"decoder {decoder.name} unavailable, skipped from now on: {exc}")
                continue
            except Exception as exc:  # noqa: BLE001 - a backend bug must not stop the kiosk
                self._log_once(decoder.name, f"decoder {decoder.name} failed, skipped: {exc!r}", exc)
                continue
            codes = merge(codes, found)
            if seen is not None and not looked:
                looked, located = True, list(seen)
            # A symbol a backend could only count, not place, counts as read once anything is read.
            located = [q for q in located if (q or not codes) and not (q and any(_overlaps(q, c.corners) for c in codes))]
        if len(self._unavailable) == len(self.decoders):
            raise DecoderUnavailable("no decoder can be loaded: " + "; ".join(self._unavailable.values()))
        self._count(gate)
        return Scan(codes=codes, unread=len(located), located=tuple(located))

    @staticmethod
    def _run(decoder: Decoder, grey: "np.ndarray") -> tuple[list[DecodedCode], list | None]:
        """The decoder's codes, and the outlines of symbols it located but could not read (None: it
        cannot tell). A backend that only counts them gives outlines it cannot place: empty ones."""
        scan = getattr(decoder, "scan", None)
        if scan is None:
            return decoder.decode(grey), None
        result = scan(grey)
        located = list(result.located) + [()] * max(0, result.unread - len(result.located))
        return result.codes, located

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


def _wechat() -> Decoder:
    from hardware.wechat_qr import WechatDecoder  # pure Python until its first frame; then OpenCV

    return WechatDecoder()


BACKENDS: dict[str, Callable[[], Decoder]] = {"zxing-cpp": ZxingDecoder, "wechat": _wechat, "pyzbar": PyzbarDecoder}
DEFAULT_ORDER = ["zxing-cpp", "wechat", "pyzbar"]


def make_decoder(order: Sequence[str], *, fallback_every: int | None = DEFAULT_FALLBACK_EVERY) -> Decoder:
    """The decoder for a config's or command line's list of backend names (one name: that backend
    alone); `fallback_every` as for `CascadeDecoder`."""
    unknown = [name for name in order if name not in BACKENDS]
    if unknown or not order:
        given = ", ".join(map(repr, unknown)) or "(none given)"
        raise ValueError(f"unknown decoder {given}; choose from {', '.join(BACKENDS)}")
    decoders = [BACKENDS[name]() for name in order]
    return decoders[0] if len(decoders) == 1 else CascadeDecoder(decoders, fallback_every=fallback_every)

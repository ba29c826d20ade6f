"""The cascade: zxing-cpp first, the slower backends only where they can help, every code merged.
How it fails: see `CascadeDecoder`."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Sequence

from sentinel.decoding.base import (
    DecodedCode,
    Decoder,
    DecoderUnavailable,
    Point,
    Scan,
    merge,
    overlaps,
)

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger("sentinel.decoding")


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

    Where the symbols still unread all have outlines, a backend with a `decode_located` method
    (pyzbar) is given them and reads only their regions, not the whole frame.

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
        return self._scan(grey, frame=True)

    def scan_region(self, grey: "np.ndarray") -> Scan:
        """`scan` of a part of a frame already scanned (sentinel/decoding/detail.py): it does not
        count as a frame, the backends after zxing-cpp run only on what it located there (never
        as the every-N-th-frame fallback), and a backend for located symbols only (WeChat) not at
        all: it has already had the whole frame, and a second pass of 0.1-1 s per frame (5-8× that
        on a Pi) would stall the loop while a person holds up a hard code."""
        return self._scan(grey, frame=False)

    def _scan(self, grey: "np.ndarray", frame: bool) -> Scan:
        codes: list[DecodedCode] = []
        located: list[tuple[Point, ...]] = []
        looked = False  # a backend that reports what it located has seen this frame
        gate: str | None = None  # "ran" / "skipped": what an empty looked-at frame did to the fallbacks
        for decoder in self.decoders:
            if decoder.name in self._unavailable or (not frame and getattr(decoder, "only_located", False)):
                continue
            if looked:
                if not located:
                    if codes:
                        break  # read, and nothing left over: as good as it gets
                    if gate is None:
                        gate = "ran" if frame and self._due() else "skipped"
                    if gate == "skipped" or (getattr(decoder, "only_located", False) and self.fallback_every != 1):
                        continue
            elif codes:
                break  # the backends before could not say what they located: stop at the first that read
            try:
                found, seen = self._run(decoder, grey, located if looked else [], codes)
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
            located = [q for q in located if (q or not codes) and not (q and any(overlaps(q, c.corners) for c in codes))]
        if len(self._unavailable) == len(self.decoders):
            raise DecoderUnavailable("no decoder can be loaded: " + "; ".join(self._unavailable.values()))
        if frame:
            self._count(gate)
        return Scan(codes=codes, unread=len(located), located=tuple(located))

    @staticmethod
    def _run(decoder: Decoder, grey: "np.ndarray", located: list, read: list[DecodedCode]) -> tuple[list[DecodedCode], list | None]:
        """The decoder's codes, and the outlines of symbols it located but could not read (None: it
        cannot tell). A backend that only counts them gives outlines it cannot place: empty ones.
        A backend that can read regions (`decode_located`: pyzbar) reads only those of the symbols
        still unread, when every one of them has an outline, and is told what was `read` already."""
        regional = getattr(decoder, "decode_located", None)
        if regional is not None and located and all(located):
            return regional(grey, located, read), None
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

"""QR codes in a grey frame: the decoder seam of the pipeline.

Three backends and a cascade of them, one module each: `zxing` (zxing-cpp, with second looks at
what it located but could not read), `wechat` (OpenCV's WeChat reader: glare, bright spots,
damage), `zbar` (pyzbar: some pathological codes, on located regions), `cascade` (which of them
run on a frame, and the codes of all of them merged); `base` holds what they hand over and how
outlines compare, `text` how a payload's bytes become text, `contrast` the local-contrast
versions of a located region that zxing-cpp's second looks read (OpenCV, when installed).
zxing-cpp goes first because it reads about twice as many real photos as pyzbar, all of the
codes shown on phone screens (pyzbar read none), and is about 14× faster (docs/benchmarks.md,
"QR decoding"). A kiosk camera mostly sees nobody, so the slower backends run only where
zxing-cpp located a QR symbol it could not decode, and pyzbar also on one empty frame in N; a
symbol located but read by none is reported (`Scan.located`): a code is in view, too small or
too poor to read (docs/benchmarks.md, "Hard photos").

How it fails: a backend whose library (or, for WeChat, model files) cannot be loaded is skipped
for good and logged once; one that raises on a frame is skipped for that frame; only when none
can be loaded does `decode` raise. No backend guesses at text (`text`).

The core must import without native libraries loaded (a technician's `sentinel check-config` does
not need them), so each backend imports its library on first use, and numpy is only a type here.
"""

from __future__ import annotations

from typing import Callable, Sequence

from sentinel.decoding.base import (  # noqa: F401 - the package's names, re-exported
    DecodedCode,
    Decoder,
    DecoderUnavailable,
    Point,
    Scan,
    centre,
    inside,
    merge,
    region_around,
)
from sentinel.decoding.cascade import DEFAULT_FALLBACK_EVERY, CascadeDecoder
from sentinel.decoding.text import payload_text
from sentinel.decoding.wechat import WechatDecoder
from sentinel.decoding.zbar import PyzbarDecoder
from sentinel.decoding.zxing import UPSCALE_BELOW, ZxingDecoder
from sentinel.images import (  # image files: the one loader, re-exported here
    ImageError,
    load_grey,
)

BACKENDS: dict[str, Callable[[], Decoder]] = {"zxing-cpp": ZxingDecoder, "wechat": WechatDecoder, "pyzbar": PyzbarDecoder}
# pyzbar before WeChat: on located symbols it reads only their regions (cheap), and a frame whose
# symbols it read needs no WeChat pass (100-300 ms). docs/benchmarks.md, "Hard photos".
DEFAULT_ORDER = ["zxing-cpp", "pyzbar", "wechat"]


def make_decoder(order: Sequence[str], *, fallback_every: int | None = DEFAULT_FALLBACK_EVERY) -> Decoder:
    """The decoder for a config's or command line's list of backend names (one name: that backend
    alone); `fallback_every` as for `CascadeDecoder`."""
    unknown = [name for name in order if name not in BACKENDS]
    if unknown or not order:
        given = ", ".join(map(repr, unknown)) or "(none given)"
        raise ValueError(f"unknown decoder {given}; choose from {', '.join(BACKENDS)}")
    decoders = [BACKENDS[name]() for name in order]
    return decoders[0] if len(decoders) == 1 else CascadeDecoder(decoders, fallback_every=fallback_every)


__all__ = [
    "BACKENDS", "DEFAULT_FALLBACK_EVERY", "DEFAULT_ORDER", "CascadeDecoder", "DecodedCode", "Decoder",
    "DecoderUnavailable", "ImageError", "Point", "PyzbarDecoder", "Scan", "UPSCALE_BELOW", "WechatDecoder",
    "ZxingDecoder", "centre", "inside", "load_grey", "make_decoder", "merge", "payload_text", "region_around",
]  # fmt: skip

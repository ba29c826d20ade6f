"""`sentinel scan-image FILE...`: what the kiosk's decoders read in photos.

For technicians checking a site's codes, and for anyone comparing decoders on their own photos.
Output is one JSON object per line, flushed as each file is done, so it can be piped into `jq` and
followed live on a slow Pi; a bad file gets an `error` line and does not stop the others. A photo
with a QR symbol that was located but that no backend could read gets an `unreadable` list of its
outlines: there is a code, it is just too small, blurred, glared or damaged.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from sentinel.decoding import BACKENDS, DEFAULT_ORDER, Decoder, ImageError, Scan, load_grey, make_decoder

NAME = "scan-image"
HELP = "decode QR codes in image files; one JSON object per line per file"

CHOICES = [*BACKENDS, "cascade"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="image files (png, jpg, gif, …)")
    parser.add_argument(
        "--decoder",
        choices=CHOICES,
        default="cascade",
        help=f"which decoder to use (default: cascade, i.e. {' then '.join(DEFAULT_ORDER)})",
    )


def run(args: argparse.Namespace) -> int:
    # A still image is a single frame: every fallback decoder gets its chance on it.
    decoder = make_decoder(DEFAULT_ORDER if args.decoder == "cascade" else [args.decoder], fallback_every=1)
    _warm_up(decoder)
    failed = False
    for name in args.files:
        result = scan_file(decoder, name)
        failed |= "error" in result
        _emit(json.dumps(result, ensure_ascii=False))
    return 1 if failed else 0


def scan_file(decoder: Decoder, name: str) -> dict:
    """One file's line of output; every failure becomes an `error` value, never an exception."""
    try:
        grey = load_grey(name)
    except ImageError as exc:
        return {"file": name, "error": exc.reason}
    start = time.perf_counter()
    try:
        scan = decoder.scan(grey) if hasattr(decoder, "scan") else Scan(codes=decoder.decode(grey), unread=0)
    except Exception as exc:  # noqa: BLE001 - a missing library is reported per file, not as a traceback
        return {"file": name, "error": f"decoder {decoder.name} failed: {exc}"}
    ms = (time.perf_counter() - start) * 1000
    result = {
        "file": name,
        "codes": [{"text": c.text, "decoder": c.decoder, "corners": [list(p) for p in c.corners]} for c in scan.codes],
        "ms": round(ms, 1),
    }
    if scan.unreadable:
        # QR symbols located but read by no backend: the photo has a code too small, blurred or
        # damaged to read (a kiosk would ask for the phone closer); outlines where known.
        result["unreadable"] = [[list(p) for p in quad] for quad in scan.located]
    return result


def _warm_up(decoder: Decoder) -> None:
    """Load the decoders' libraries now, so that the first file's `ms` is decoding, not importing
    (finding libzbar alone can take longer than decoding a photo). Failures show up per file."""
    import numpy as np

    try:
        decoder.decode(np.full((64, 64), 255, dtype=np.uint8))
    except Exception:  # noqa: BLE001
        pass


def _emit(line: str) -> None:
    """JSON is UTF-8 whatever the locale says; a kiosk shell with LANG=C must not crash on 健康码."""
    out = getattr(sys.stdout, "buffer", None)
    if out is None:  # stdout replaced by a text-only stream (tests, embedding)
        print(line, flush=True)
        return
    sys.stdout.flush()
    out.write(line.encode("utf-8") + b"\n")
    out.flush()

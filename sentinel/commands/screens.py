"""`sentinel screens --out DIR`: every screen, in both layouts and both languages, as PNG files.

For reviewing the screens without a kiosk (and for the README's pictures): idle with a camera
frame in the view, checking, pass, deny, manual check, unknown code, the offline banner, the
faults and the technician menu, each at 800×480 (landscape) and 1080×1920 (portrait), in zh-CN
and en. Files are named LAYOUT-LANGUAGE-SCREEN.png. `--stress` adds the worst cases (every
reason text, the longest names) and says which texts had to be cut. `--handheld` adds the
handheld's vehicle screens (Start, an open vehicle, the plate keypad, the vehicle's verdict).

`sentinel screens --hash-pin` makes the `display.technician_pin_hash` line for a config file
from a PIN typed twice (or one line on standard input).
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import re
import sys
from pathlib import Path

from sentinel.locale import CATALOGUE, PAIR

NAME = "screens"
HELP = "render every screen to PNG files; --hash-pin makes a technician PIN hash"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, help="folder for the PNG files (made if missing)")
    parser.add_argument(
        "--layout", action="append", metavar="NAME|WxH",
        help="landscape (800x480), portrait (1080x1920) or a size like 1280x720; repeatable (default: landscape and portrait)",
    )
    parser.add_argument("--language", action="append", choices=CATALOGUE.languages,
                        help="a language of sentinel/locale; repeatable (default: zh-CN and en)")
    parser.add_argument("--only", action="append", metavar="SCREEN", help="only these screens (e.g. pass, deny_nat); repeatable")
    parser.add_argument("--preview", type=Path, help="camera image for the idle screen's view (default: a demo scene)")
    parser.add_argument("--stress", action="store_true", help="also render the worst cases and list texts that had to be cut")
    parser.add_argument("--hash-pin", action="store_true", help="print a technician PIN hash for display.technician_pin_hash")
    parser.add_argument("--handheld", action="store_true", help="also render the handheld's vehicle screens (Start, vehicle, plate keypad, verdict)")


def _sizes(names: list[str] | None) -> list[tuple[str, tuple[int, int]]]:
    from ui.layout import LAYOUTS

    out = []
    for name in names or ["landscape", "portrait"]:
        if name in LAYOUTS:
            out.append((name, LAYOUTS[name]))
            continue
        match = re.fullmatch(r"(\d{3,4})x(\d{3,4})", name)
        if not match:
            raise SystemExit(f"sentinel screens: bad --layout {name!r}: use landscape, portrait or WIDTHxHEIGHT")
        out.append((name, (int(match[1]), int(match[2]))))
    return out


def _preview_frame(path: Path):
    import numpy as np
    from PIL import Image

    from sentinel.frames import Frame

    with Image.open(path) as image:
        rgb = np.array(image.convert("RGB"))
        grey = np.array(image.convert("L"))
    return Frame(grey=grey, timestamp=0.0, sequence=1, colour=rgb, origin=path.name)


def _hash_pin() -> int:
    from ui.pin import PIN_PATTERN, hash_pin

    if sys.stdin.isatty():
        pin = getpass.getpass("technician PIN (6-8 digits): ")
        if getpass.getpass("again: ") != pin:
            print("sentinel screens: the two PINs differ", file=sys.stderr)
            return 2
    else:
        pin = sys.stdin.readline().strip()
    if not PIN_PATTERN.match(pin):
        print("sentinel screens: a technician PIN is 6 to 8 digits", file=sys.stderr)
        return 2
    print("# in the [display] section of the config file:")
    print(f'technician_pin_hash = "{hash_pin(pin)}"')
    return 0


def run(args: argparse.Namespace) -> int:
    if args.hash_pin:
        return _hash_pin()
    if args.out is None:
        print("sentinel screens: --out DIR is required (or --hash-pin)", file=sys.stderr)
        return 2
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # no window: surfaces only
    logging.getLogger("ui.technician").setLevel(logging.WARNING + 1)  # the menu samples' own log
    from sentinel.config import ASSETS
    from ui.fonts import FontNotFoundError

    try:
        from ui.render import Renderer
    except ImportError as e:
        print(f"sentinel screens: pygame is needed ({e}): pip install pygame, or apt install python3-pygame", file=sys.stderr)
        return 1
    import pygame

    from ui.preview import Preview
    from ui.samples import SAMPLE_NOW, samples, stress_samples, vehicle_samples, vehicle_stress_samples

    try:
        renderer = Renderer()
    except FontNotFoundError as e:
        print(f"sentinel screens: {e}", file=sys.stderr)
        return 1
    if args.only:  # a name that matches nothing is a typo, not "write nothing"
        known = {s.name for language in PAIR for s in samples(language) + stress_samples(language)
                 + vehicle_samples(language) + vehicle_stress_samples(language)}
        unknown = sorted(set(args.only) - known)
        if unknown:
            print(f"sentinel screens: no screen named {', '.join(unknown)}; the screens are: {', '.join(sorted(known))}",
                  file=sys.stderr)
            return 2
        wanted = {s.name for language in PAIR for s in samples(language)
                  + (stress_samples(language) if args.stress else [])
                  + (vehicle_samples(language) + (vehicle_stress_samples(language) if args.stress else [])
                     if args.handheld else [])}
        if not set(args.only) & wanted:
            print(f"sentinel screens: {', '.join(args.only)} need --stress or --handheld", file=sys.stderr)
            return 2
    preview = Preview(mirror=True, smooth=True)
    preview.frame = _preview_frame(args.preview or ASSETS / "scenes" / "02_green.png")
    args.out.mkdir(parents=True, exist_ok=True)
    written = 0
    cut: list[str] = []
    for layout_name, size in _sizes(args.layout):
        surface = pygame.Surface(size)
        for language in args.language or PAIR:
            todo = samples(language) + (stress_samples(language) if args.stress else [])
            if getattr(args, "handheld", False):
                todo += vehicle_samples(language) + (vehicle_stress_samples(language) if args.stress else [])
            for sample in todo:
                if args.only and sample.name not in args.only:
                    continue
                renderer.draw(surface, sample.screen, sample.status, now=SAMPLE_NOW, preview=preview, menu=sample.menu, language=language)
                name = f"{layout_name}-{language}-{sample.name}.png"
                pygame.image.save(surface, str(args.out / name))
                written += 1
                cut += [f"{name}: {d.role} {d.text!r}" for d in renderer.drawn if d.truncated]
    print(f"sentinel screens: wrote {written} PNG files to {args.out}")
    for line in cut:
        print(f"  cut to fit: {line}")
    return 0

#!/usr/bin/env python3
"""Generate the handheld demo's camera scenes: sentinel/assets/vehicle_scenes/*.jpg and manifest.json.

One scripted vehicle at a drive-through checkpoint, seen by a handheld held up to the driver's
window: the car's door and window frame, the dark cabin behind, and one phone after another
held up to the glass:

    01 window  02 driver (green)  03 window  04 passenger 1 (an expired code, a screenshot)
    05 window  06 passenger 1's refreshed code (green)  07 window  08 passenger 2 (yellow)
    09 window  10 the driver's phone again (a duplicate)  11 window

The phones, hands and the camera's blur, glare and noise come from tools/make_demo_scenes.py
(same code, same look); only the backdrop is new. JPEG, as a camera's ISP delivers, and small.
Deterministic (fixed seed); at the end every scene must decode to its manifest payload with
zxing-cpp on the grey plane, or the script exits non-zero.

    python tools/make_vehicle_scenes.py [--out DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sentinel.commands.demo import DEMO_VEHICLE_REFRESHED  # noqa: E402
from sentinel.demo_data import demo_person  # noqa: E402
from sentinel.service.seed import DEMO_EXPIRED_PERSON  # noqa: E402
from tools import make_demo_scenes as mds  # noqa: E402
from tools.scene_files import parser, render_scenes, report  # noqa: E402

Hold, Scene = mds.Hold, mds.Scene
DEFAULT_OUT = REPO / "sentinel" / "assets" / "vehicle_scenes"
SEED = 20220613
QUALITY = 90


def _scenes() -> list:
    def window(file: str, exposure: float = 1.0):
        return Scene(file, None, exposure=exposure)

    def phone(file: str, person, hold) -> Scene:
        return Scene(file, person.payload, person, hold)

    driver = demo_person("green")
    yellow = demo_person("yellow")
    return [
        window("01_window.jpg"),
        phone("02_driver_green.jpg", driver, Hold(centre=(318, 262), height=330, angle=-9, yaw=0.12, pitch=0.05, blur=0.8, glare=(0.28, 0.25, 0.45, 0.22, 0.55), body=(28, 28, 32), coat=(36, 40, 52), skin=(222, 182, 156), hair=(28, 22, 20))),
        window("03_window.jpg", 0.98),
        phone("04_passenger1_expired.jpg", DEMO_EXPIRED_PERSON, Hold(centre=(352, 268), height=318, angle=7, yaw=-0.1, pitch=-0.06, blur=0.9, glare=(0.72, 0.6, 0.38, 0.25, 0.45), body=(210, 210, 214), coat=(120, 60, 80), skin=(232, 196, 172), hair=(50, 30, 24))),
        window("05_window.jpg", 1.02),
        phone("06_passenger1_refreshed.jpg", DEMO_VEHICLE_REFRESHED, Hold(centre=(338, 266), height=326, angle=4, yaw=-0.08, pitch=-0.04, blur=0.8, glare=(0.3, 0.7, 0.4, 0.25, 0.45), body=(210, 210, 214), coat=(120, 60, 80), skin=(232, 196, 172), hair=(50, 30, 24))),
        window("07_window.jpg", 0.99),
        phone("08_passenger2_yellow.jpg", yellow, Hold(centre=(300, 270), height=310, angle=-12, yaw=0.08, pitch=0.1, blur=1.0, glare=(0.24, 0.68, 0.4, 0.3, 0.5), body=(38, 42, 58), coat=(70, 90, 60), skin=(200, 156, 122), hair=(18, 16, 16))),
        window("09_window.jpg", 1.01),
        phone("10_driver_again.jpg", driver, Hold(centre=(330, 258), height=336, angle=-4, yaw=0.1, pitch=0.02, blur=0.8, glare=(0.5, 0.3, 0.45, 0.2, 0.5), body=(28, 28, 32), coat=(36, 40, 52), skin=(222, 182, 156), hair=(28, 22, 20))),
        window("11_window.jpg", 0.97),
    ]


def _backdrop(rng: np.random.Generator) -> np.ndarray:
    """A car at the checkpoint seen through its open driver's window: the door and the frame of
    the window, the cabin dark behind, a seat's headrest, a lit road and sky beyond the far
    window. Float RGB at the supersampled size, out of focus (the phone is what is in focus)."""
    s = mds.SUPERSAMPLE
    W, H = mds.SIZE[0] * s, mds.SIZE[1] * s
    img = Image.new("RGB", (W, H), (30, 32, 36))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, W, 60 * s), fill=(196, 206, 214))  # overcast sky above the roof
    draw.rectangle((0, 60 * s, W, 95 * s), fill=(120, 126, 134))  # the roof's edge, body colour
    draw.polygon([(40 * s, 95 * s), (600 * s, 95 * s), (640 * s, 370 * s), (0, 370 * s)], fill=(22, 24, 28))  # the cabin
    draw.polygon([(470 * s, 110 * s), (590 * s, 110 * s), (615 * s, 250 * s), (455 * s, 250 * s)], fill=(150, 170, 182))  # far window
    draw.rectangle((455 * s, 200 * s, 615 * s, 250 * s), fill=(98, 102, 96))  # the road beyond it
    draw.rounded_rectangle((150 * s, 120 * s, 270 * s, 230 * s), radius=30 * s, fill=(48, 46, 44))  # a headrest
    draw.rectangle((185 * s, 225 * s, 235 * s, 260 * s), fill=(60, 60, 62))
    draw.rounded_rectangle((80 * s, 250 * s, 330 * s, 380 * s), radius=26 * s, fill=(44, 42, 40))  # the seat back
    draw.ellipse((380 * s, 250 * s, 520 * s, 390 * s), outline=(70, 72, 76), width=14 * s)  # steering wheel
    draw.polygon([(0, 370 * s), (W, 370 * s), (W, H), (0, H)], fill=(128, 134, 142))  # the door below the window
    draw.rectangle((0, 362 * s, W, 378 * s), fill=(40, 40, 44))  # window seal
    draw.rectangle((0, 420 * s, W, 426 * s), fill=(100, 106, 114))  # a crease in the door panel
    draw.rectangle((0, 60 * s, 36 * s, 378 * s), fill=(34, 34, 38))  # the B-pillar at the left
    img = img.filter(ImageFilter.GaussianBlur(6 * s))
    base = np.asarray(img, np.float32)
    mottle = rng.normal(0.0, 1.0, (9, 12)).astype(np.float32)
    mottle = np.asarray(Image.fromarray(mottle, "F").resize((W, H), Image.BICUBIC))
    return base * (1.0 + 0.05 * mottle[..., None])


def generate(out: Path) -> dict[str, str | None]:
    return render_scenes(out, _scenes(), _backdrop(np.random.default_rng(SEED)), mds._render, SEED, quality=QUALITY, optimize=True)


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__, DEFAULT_OUT).parse_args(argv)
    manifest = generate(args.out)
    return report(args.out, manifest, mds.check(args.out, manifest), lambda payload: payload or "-", name_width=28, size_width=5)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Generate the demo's camera scenes: sentinel/assets/scenes/*.png and manifest.json.

The demo replays these through the same pipeline as a kiosk, so they must look like what a kiosk
camera sees: a fixed view of a mall entrance, and now and then a person holding up a phone that
shows a health-code page (a coloured QR code, as the apps in China showed green, yellow or red
codes). Flat QR images would prove nothing about decoding: the codes here are warped, rotated,
blurred, partly washed out by glare and noisy, as on a phone held up by hand.

Deterministic (fixed seed), so regenerating gives the same files. The script checks at the end
that every scene decodes to its expected payload with zxing-cpp, on the grey plane the pipeline
uses, and exits non-zero if one does not.

    python tools/make_demo_scenes.py [--out DIR]
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import segno
from PIL import Image, ImageDraw, ImageFilter, ImageFont

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sentinel.demo_data import (  # noqa: E402
    DEMO_NOT_FOUND_PERSON,
    DEMO_UNKNOWN_PAYLOAD,
    DemoPerson,
    demo_person,
)
from tools.scene_files import parser, render_scenes, report  # noqa: E402

DEFAULT_OUT = REPO / "sentinel" / "assets" / "scenes"
SIZE = (640, 480)
SUPERSAMPLE = 2  # composed at 2× and scaled down, as a sensor averages, so edges are not jagged
SEED = 20220601

# Code colours dark enough that the grey plane (what decoders see) keeps its contrast.
CODE_COLOURS = {"green": (10, 125, 50), "yellow": (176, 120, 0), "red": (192, 22, 28)}
APP_BLUE = (24, 104, 204)
PROMO_MAGENTA = (194, 24, 91)
PROMO_INK = (58, 12, 120)

PHONE_W, PHONE_H = 360, 740  # the phone's texture, in its own pixels
SCREEN_INSET = 14


@dataclass(frozen=True)
class Hold:
    """How one person holds their phone up to the camera: where, how big, how askew, how sharp."""

    centre: tuple[float, float]  # in the 640×480 frame
    height: float  # phone height in frame pixels
    angle: float  # degrees, in the image plane
    yaw: float  # -0.2..0.2: one long edge nearer the camera than the other
    pitch: float  # -0.2..0.2: top or bottom nearer the camera
    blur: float  # Gaussian radius in frame pixels (focus, hand shake)
    glare: tuple[float, float, float, float, float]  # centre u, v (0..1 of the screen), radii u, v, strength
    body: tuple[int, int, int]
    coat: tuple[int, int, int]
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]


@dataclass(frozen=True)
class Scene:
    file: str
    payload: str | None
    person: DemoPerson | None = None  # a health-code page for this person; None with a payload: the promo
    hold: Hold | None = None
    exposure: float = 1.0


def _scenes() -> list[Scene]:
    def health(file: str, key: str, hold: Hold) -> Scene:
        person = demo_person(key)
        return Scene(file, person.payload, person, hold)

    return [
        Scene("01_empty.png", None, exposure=1.0),
        health("02_green.png", "green", Hold(centre=(330, 275), height=340, angle=-6, yaw=0.10, pitch=0.04, blur=0.7, glare=(0.30, 0.22, 0.45, 0.20, 0.55), body=(28, 28, 32), coat=(40, 62, 110), skin=(226, 186, 160), hair=(30, 24, 22))),
        Scene("03_empty.png", None, exposure=0.97),
        health("04_yellow.png", "yellow", Hold(centre=(290, 280), height=325, angle=8, yaw=-0.12, pitch=-0.05, blur=0.9, glare=(0.70, 0.62, 0.35, 0.25, 0.40), body=(38, 42, 58), coat=(150, 40, 45), skin=(204, 160, 126), hair=(20, 18, 18))),
        Scene("05_empty.png", None, exposure=1.03),
        health("06_red.png", "red", Hold(centre=(360, 272), height=350, angle=-13, yaw=0.06, pitch=0.10, blur=1.0, glare=(0.22, 0.70, 0.40, 0.30, 0.50), body=(22, 22, 24), coat=(70, 72, 60), skin=(186, 140, 108), hair=(45, 35, 30))),
        Scene("07_empty.png", None, exposure=0.99),
        Scene("08_unknown.png", DEMO_UNKNOWN_PAYLOAD, None, Hold(centre=(300, 278), height=330, angle=4, yaw=-0.05, pitch=-0.10, blur=0.8, glare=(0.75, 0.28, 0.40, 0.22, 0.50), body=(60, 30, 40), coat=(200, 190, 170), skin=(230, 196, 170), hair=(80, 50, 30))),
        Scene("09_empty.png", None, exposure=1.02),
        health("10_stale_nat.png", "stale_nat", Hold(centre=(345, 284), height=320, angle=11, yaw=0.14, pitch=-0.03, blur=1.1, glare=(0.45, 0.85, 0.50, 0.18, 0.60), body=(30, 34, 44), coat=(30, 30, 34), skin=(214, 172, 140), hair=(60, 40, 36))),
        # after the face scenes (11-13, sentinel/assets/face_scenes): someone the service does not know
        Scene("14_empty.png", None, exposure=1.01),
        Scene("15_not_found.png", DEMO_NOT_FOUND_PERSON.payload, DEMO_NOT_FOUND_PERSON, Hold(centre=(318, 276), height=335, angle=-3, yaw=-0.08, pitch=0.06, blur=0.8, glare=(0.60, 0.40, 0.38, 0.22, 0.45), body=(34, 30, 28), coat=(90, 110, 70), skin=(220, 178, 150), hair=(25, 22, 20))),
    ]


# --- the phone -----------------------------------------------------------------------------------


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the small bitmap font
        return ImageFont.load_default()


def _qr_image(payload: str, ink: tuple[int, int, int], width: int) -> Image.Image:
    """The code at whole pixels per module, dark modules in the code's colour."""
    qr = segno.make(payload, error="m")
    modules = np.array([list(row) for row in qr.matrix], dtype=bool)
    modules = np.pad(modules, 2)  # a little white margin of its own; the screen is white around it
    scale = width // modules.shape[0]
    rgb = np.where(modules[..., None], np.array(ink, np.uint8), np.array((255, 255, 255), np.uint8))
    return Image.fromarray(rgb.astype(np.uint8), "RGB").resize(
        (modules.shape[1] * scale, modules.shape[0] * scale), Image.NEAREST
    )


DARK, GREY = (40, 44, 52), (120, 126, 136)
CODE_TOP = 200  # where the code starts on the page, below the header and the identity lines


def _screen_page(scene: Scene) -> Image.Image:
    """The app page: status bar, a coloured header, then the page's own content."""
    w, h = PHONE_W - 2 * SCREEN_INSET, PHONE_H - 2 * SCREEN_INSET
    page = Image.new("RGB", (w, h), (246, 247, 249))
    draw = ImageDraw.Draw(page)
    draw.text((22, 14), "08:31", fill=DARK, font=_font(17))
    draw.rounded_rectangle((w - 54, 17, w - 24, 31), radius=3, outline=DARK, width=2)
    draw.rectangle((w - 51, 20, w - 33, 28), fill=DARK)
    if scene.person is None:
        _promo_page(page, draw, scene.payload)
    else:
        _health_page(page, draw, scene.person)
    draw.rounded_rectangle((w // 2 - 60, h - 16, w // 2 + 60, h - 10), radius=3, fill=(30, 30, 30))
    return page


def _header(draw: ImageDraw.ImageDraw, width: int, colour: tuple[int, int, int], title: str, subtitle: str) -> None:
    draw.rectangle((0, 44, width, 128), fill=colour)
    draw.text((width // 2, 72), title, fill="white", font=_font(30), anchor="mm")
    draw.text((width // 2, 106), subtitle, fill=(225, 232, 245), font=_font(16), anchor="mm")


def _paste_code(page: Image.Image, payload: str, ink: tuple[int, int, int]) -> int:
    """Pastes the code centred below the header; returns the y just below it."""
    code = _qr_image(payload, ink, page.width - 40)
    page.paste(code, ((page.width - code.width) // 2, CODE_TOP))
    return CODE_TOP + code.height + 14


def _health_page(page: Image.Image, draw: ImageDraw.ImageDraw, person: DemoPerson) -> None:
    """Like the city apps: masked identity, the code in its colour, its colour named, test results."""
    w = page.width
    _header(draw, w, APP_BLUE, "Health Code", "Shanghai")
    draw.text((24, 148), "Name", fill=DARK, font=_font(18))
    draw.rounded_rectangle((84, 152, 84 + 26 * len(person.name), 166), radius=4, fill=(160, 164, 172))
    masked_id = f"{person.id_number[:3]}***********{person.id_number[-4:]}"
    draw.text((24, 172), f"ID    {masked_id}", fill=GREY, font=_font(15))
    ink = CODE_COLOURS[person.colour]
    below = _paste_code(page, person.payload, ink)
    draw.rounded_rectangle((70, below, w - 70, below + 40), radius=20, fill=ink)
    draw.text((w // 2, below + 20), f"{person.colour.upper()} CODE", fill="white", font=_font(20), anchor="mm")
    card = below + 56
    draw.rounded_rectangle((18, card, w - 18, card + 96), radius=12, fill=(232, 235, 240))
    hours = f"{person.nat_hours_ago:.0f} h ago" if person.nat_hours_ago is not None else "-"
    draw.text((34, card + 14), f"Nucleic acid test: {person.nat_result or 'none'}", fill=DARK, font=_font(17))
    draw.text((34, card + 40), f"Sampled {hours}", fill=GREY, font=_font(16))
    draw.text((34, card + 64), f"Vaccination: {person.doses} doses", fill=GREY, font=_font(16))


def _promo_page(page: Image.Image, draw: ImageDraw.ImageDraw, payload: str) -> None:
    """A mall's coupon page: a QR code a visitor might well show by mistake, but no health code."""
    w = page.width
    _header(draw, w, PROMO_MAGENTA, "AUTUMN SALE", "Grand Mall members")
    draw.text((w // 2, 160), "-30% on everything", fill=PROMO_MAGENTA, font=_font(24), anchor="mm")
    below = _paste_code(page, payload, PROMO_INK)
    draw.text((w // 2, below + 16), "Scan for your coupon", fill=DARK, font=_font(20), anchor="mm")
    draw.rounded_rectangle((40, below + 44, w - 40, below + 92), radius=24, fill=PROMO_MAGENTA)
    draw.text((w // 2, below + 68), "Get it now", fill="white", font=_font(20), anchor="mm")


def _phone(scene: Scene) -> Image.Image:
    """The phone as an RGBA texture: dark rounded body, bright screen, glare on the glass."""
    hold = scene.hold
    phone = Image.new("RGBA", (PHONE_W, PHONE_H), (0, 0, 0, 0))
    draw = ImageDraw.Draw(phone)
    rim = tuple(min(255, c + 45) for c in hold.body)
    draw.rounded_rectangle((0, 0, PHONE_W - 1, PHONE_H - 1), radius=52, fill=hold.body + (255,), outline=rim + (255,),
                           width=3)
    screen_box = (SCREEN_INSET, SCREEN_INSET, PHONE_W - SCREEN_INSET, PHONE_H - SCREEN_INSET)
    mask = Image.new("L", phone.size, 0)
    ImageDraw.Draw(mask).rounded_rectangle(screen_box, radius=38, fill=255)
    screen = Image.new("RGB", phone.size)
    screen.paste(_screen_page(scene), screen_box[:2])
    phone.paste(screen, (0, 0), mask)
    draw.ellipse((PHONE_W // 2 - 7, 24, PHONE_W // 2 + 7, 38), fill=(12, 12, 14, 255))  # front camera

    u, v, ru, rv, strength = hold.glare
    ys, xs = np.mgrid[0:PHONE_H, 0:PHONE_W].astype(np.float32)
    sx, sy = PHONE_W - 2 * SCREEN_INSET, PHONE_H - 2 * SCREEN_INSET
    dx = (xs - SCREEN_INSET - u * sx) / (ru * sx)
    dy = (ys - SCREEN_INSET - v * sy) / (rv * sy)
    streak = 0.15 * np.exp(-(((dx + dy) * 2.5) ** 2))  # a faint band of reflected ceiling light
    glare = (strength * np.exp(-(dx**2 + dy**2) * 2.0) + streak) * (np.asarray(mask, np.float32) / 255.0)
    rgba = np.asarray(phone, np.float32)
    rgba[..., :3] += glare[..., None] * (255.0 - rgba[..., :3])
    return Image.fromarray(np.clip(rgba, 0, 255).astype(np.uint8), "RGBA")


# --- the camera's view ---------------------------------------------------------------------------


def _backdrop(rng: np.random.Generator) -> np.ndarray:
    """A mall entrance behind the person, out of focus: ceiling lights, glass doors, a shop sign,
    a plant, a tiled floor. Float RGB at the supersampled size."""
    W, H = SIZE[0] * SUPERSAMPLE, SIZE[1] * SUPERSAMPLE
    img = Image.new("RGB", (W, H))
    draw = ImageDraw.Draw(img)
    for y in range(H):  # ceiling → wall → floor
        t = y / H
        if t < 0.22:
            c = (214 - 40 * t, 212 - 40 * t, 205 - 40 * t)
        elif t < 0.68:
            c = (176 - 30 * (t - 0.22), 182 - 30 * (t - 0.22), 186 - 20 * (t - 0.22))
        else:
            c = (150 + 40 * (t - 0.68), 138 + 40 * (t - 0.68), 118 + 30 * (t - 0.68))
        draw.line([(0, y), (W, y)], fill=tuple(int(x) for x in c))
    s = SUPERSAMPLE
    for x in (60, 240, 420, 600):  # ceiling light strips
        draw.rounded_rectangle((x * s, 30 * s, (x + 110) * s, 44 * s), radius=6 * s, fill=(252, 250, 240))
    for x0 in (150, 330):  # glass doors: dark frames, bluish glass, the bright street beyond
        draw.rectangle((x0 * s, 110 * s, (x0 + 160) * s, 330 * s), fill=(70, 76, 84))
        draw.rectangle(((x0 + 8) * s, 118 * s, (x0 + 76) * s, 330 * s), fill=(168, 192, 206))
        draw.rectangle(((x0 + 84) * s, 118 * s, (x0 + 152) * s, 330 * s), fill=(160, 186, 202))
    draw.rectangle((200 * s, 70 * s, 440 * s, 100 * s), fill=(150, 28, 36))  # shop sign
    draw.text((320 * s, 85 * s), "GRAND MALL", fill=(250, 236, 210), font=_font(20 * s), anchor="mm")
    draw.rectangle((0, 100 * s, 70 * s, 340 * s), fill=(196, 190, 180))  # a pillar
    draw.ellipse((560 * s, 230 * s, 640 * s, 330 * s), fill=(52, 96, 56))  # a plant
    draw.rectangle((585 * s, 320 * s, 615 * s, 350 * s), fill=(110, 80, 60))
    for i in range(-8, 9):  # floor tile joints, converging on the doors
        draw.line([((320 + i * 22) * s, 330 * s), ((320 + i * 110) * s, 480 * s)], fill=(132, 122, 106), width=2 * s)
    img = img.filter(ImageFilter.GaussianBlur(7 * s))  # the backdrop is far beyond the focus plane
    base = np.asarray(img, np.float32)
    mottle = rng.normal(0.0, 1.0, (9, 12)).astype(np.float32)  # uneven light, dirty glass
    mottle = np.asarray(Image.fromarray(mottle, "F").resize((W, H), Image.BICUBIC))
    return base * (1.0 + 0.06 * mottle[..., None])


def _perspective_coeffs(dst: np.ndarray, src: np.ndarray) -> list[float]:
    """Pillow's PERSPECTIVE data: maps each output pixel (on `dst`) back to the texture (`src`)."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    return np.linalg.solve(np.array(rows, float), np.array(rhs, float)).tolist()


def _phone_quad(hold: Hold) -> np.ndarray:
    """Where the phone's corners land in the supersampled frame (TL, TR, BR, BL)."""
    s = SUPERSAMPLE
    h = hold.height * s
    w = h * PHONE_W / PHONE_H
    left, right = 1 - hold.yaw, 1 + hold.yaw  # the nearer edge looks longer
    top, bottom = 1 - hold.pitch, 1 + hold.pitch
    corners = np.array([
        (-w / 2 * top, -h / 2 * left),
        (w / 2 * top, -h / 2 * right),
        (w / 2 * bottom, h / 2 * right),
        (-w / 2 * bottom, h / 2 * left),
    ])
    a = math.radians(hold.angle)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return corners @ rot.T + np.array(hold.centre) * s


def _blob(size: tuple[int, int], box: tuple[float, ...], blur: float) -> np.ndarray:
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).ellipse(box, fill=255)
    return np.asarray(mask.filter(ImageFilter.GaussianBlur(blur)), np.float32)[..., None] / 255.0


def _over(img: np.ndarray, colour: tuple[int, int, int], alpha: np.ndarray) -> np.ndarray:
    return img * (1 - alpha) + np.array(colour, np.float32) * alpha


def _person(img: np.ndarray, hold: Hold, quad: np.ndarray) -> np.ndarray:
    """The person behind the phone, a little out of focus: head above it, coat below."""
    s = SUPERSAMPLE
    size = (img.shape[1], img.shape[0])
    cx = hold.centre[0] * s
    top = quad[:, 1].min()
    img = _over(img, hold.coat, _blob(size, (cx - 230 * s, top + 60 * s, cx + 230 * s, top + 900 * s), 10 * s))
    neck = (cx - 34 * s, top - 10 * s, cx + 34 * s, top + 80 * s)
    img = _over(img, _shade(hold.skin, 0.85), _blob(size, neck, 6 * s))
    head = (cx - 64 * s, top - 150 * s, cx + 64 * s, top + 20 * s)
    img = _over(img, hold.skin, _blob(size, head, 5 * s))
    hair = (head[0] - 6 * s, head[1] - 12 * s, head[2] + 6 * s, head[1] + 70 * s)
    return _over(img, hold.hair, _blob(size, hair, 6 * s))


def _palm(img: np.ndarray, hold: Hold, quad: np.ndarray) -> np.ndarray:
    """The hand behind the phone's lower half and the forearm leaving the frame below it."""
    size = (img.shape[1], img.shape[0])
    s = SUPERSAMPLE
    tl, tr, br, bl = quad
    x, y = bl + (br - bl) * 0.6
    img = _over(img, hold.coat, _blob(size, (x - 50 * s, y + 40 * s, x + 60 * s, y + 400 * s), 4 * s))  # sleeve
    return _over(img, _shade(hold.skin, 0.92), _blob(size, (x - 80 * s, y - 70 * s, x + 75 * s, y + 60 * s), 3 * s))


def _fingers(img: np.ndarray, hold: Hold, quad: np.ndarray) -> np.ndarray:
    """Fingers curled round the right edge and a thumb on the left, well below the code."""
    size = (img.shape[1], img.shape[0])
    s = SUPERSAMPLE
    tl, tr, br, bl = quad
    for t, shade in ((0.70, 0.95), (0.79, 0.9), (0.88, 0.86)):
        x, y = tr + (br - tr) * t
        box = (x - 10 * s, y - 11 * s, x + 16 * s, y + 11 * s)
        img = _over(img, _shade(hold.skin, shade), _blob(size, box, 1.2 * s))
    x, y = tl + (bl - tl) * 0.84
    return _over(img, hold.skin, _blob(size, (x - 15 * s, y - 34 * s, x + 9 * s, y + 24 * s), 1.2 * s))


def _shade(colour: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    return tuple(int(c * factor) for c in colour)


def _render(scene: Scene, backdrop: np.ndarray, rng: np.random.Generator) -> Image.Image:
    img = backdrop * scene.exposure
    if scene.hold is not None:
        hold = scene.hold
        quad = _phone_quad(hold)
        img = _palm(_person(img, hold, quad), hold, quad)
        src = np.array([(0, 0), (PHONE_W, 0), (PHONE_W, PHONE_H), (0, PHONE_H)], float)
        size = (img.shape[1], img.shape[0])
        warped = _phone(scene).transform(size, Image.PERSPECTIVE, _perspective_coeffs(quad, src), Image.BICUBIC)
        rgba = np.asarray(warped, np.float32)
        img = img * (1 - rgba[..., 3:] / 255.0) + rgba[..., :3] * (rgba[..., 3:] / 255.0)
        img = _fingers(img, hold, quad)
    frame = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB").resize(SIZE, Image.BOX)
    blur = scene.hold.blur if scene.hold is not None else 0.6
    frame = frame.filter(ImageFilter.GaussianBlur(blur))
    # Sensor noise as it leaves a camera's ISP: chroma noise filtered out, luma grainy rather than
    # per-pixel (which also keeps the PNGs small).
    w, h = SIZE
    grain = rng.normal(0.0, 2.0, (h // 2, w // 2)).astype(np.float32)
    grain = np.asarray(Image.fromarray(grain, "F").resize(SIZE, Image.BILINEAR))[..., None]
    noisy = np.asarray(frame, np.float32) + grain
    return Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8), "RGB")


# --- output and self-check -----------------------------------------------------------------------


def generate(out: Path) -> dict[str, str | None]:
    """Write every scene and the manifest into `out`; returns the manifest."""
    return render_scenes(out, _scenes(), _backdrop(np.random.default_rng(SEED)), _render, SEED, optimize=True)


def check(out: Path, manifest: dict[str, str | None]) -> list[str]:
    """Problems found decoding each scene's grey plane with zxing-cpp; [] when all is well."""
    import zxingcpp

    problems = []
    for name, expected in manifest.items():
        grey = np.asarray(Image.open(out / name).convert("L"))
        found = [b.text for b in zxingcpp.read_barcodes(grey)]
        wanted = [] if expected is None else [expected]
        if found != wanted:
            problems.append(f"{name}: expected {wanted}, decoded {found}")
    return problems


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__, DEFAULT_OUT).parse_args(argv)
    manifest = generate(args.out)
    return report(args.out, manifest, check(args.out, manifest), lambda payload: payload or "-")


if __name__ == "__main__":
    sys.exit(main())

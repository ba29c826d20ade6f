#!/usr/bin/env python3
"""Generate the demo's face scenes and the demo person's enrolled encoding.

Writes
- `sentinel/assets/faces/astronaut.json`: the face encoding of the shipped portrait
  (`sentinel/assets/faces/astronaut.jpg`, NASA, public domain; see the README there), computed as
  `sentinel faces enroll` would; the reference service's demo seed enrols it for the demo site;
- `sentinel/assets/face_scenes/*.png` and `manifest.json`: 640×480 camera frames of the mall
  entrance the QR scenes show, with nobody (11), the portrait's person standing at the kiosk (12:
  let in by face) and two of them at once (13: "one person at a time"). The person is cut out of
  the portrait (head and shoulders, the studio background and the suit's patches left behind),
  scaled, turned a little, darker and bluer than the studio photo, blurred and grainy as a camera
  sees them, so the demo matches a camera frame against a studio portrait, not a file against itself.

Deterministic (fixed seed). At the end it checks every scene with the kiosk's face matcher (the
default [faces] settings, on the grey plane the kiosk has and on colour) and exits non-zero if a
scene does not give what the manifest says.

    python tools/make_face_scenes.py [--out DIR] [--encoding-out FILE]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sentinel.config import FacesConfig  # noqa: E402
from sentinel.faces.engine import FaceEngine, load_rgb  # noqa: E402
from sentinel.faces.enrol import read_enrolment_image  # noqa: E402
from sentinel.faces.gallery import Gallery  # noqa: E402
from sentinel.faces.matcher import FaceMatcher, ObservationKind  # noqa: E402
from tools.scene_files import parser, report, write_manifest  # noqa: E402

ASSETS = REPO / "sentinel" / "assets"
PORTRAIT = ASSETS / "faces" / "astronaut.jpg"
DEFAULT_ENCODING = ASSETS / "faces" / "astronaut.json"
DEFAULT_OUT = ASSETS / "face_scenes"
BACKDROP = ASSETS / "scenes" / "01_empty.png"  # the QR scenes' empty entrance, when present
SIZE = (640, 480)
SEED = 20220602
#: the demo person's ids at the reference service (sentinel/service/seed.py uses the same)
PERSON_KEY = "astronaut"
#: a scene must match the portrait at least this much nearer than the default tolerance
MATCH_MARGIN = 0.1

#: (file, expected observation, cut-outs: (face centre x, y, face width px, turn degrees, mirrored))
SCENES = [
    ("11_empty.png", "no_face", []),
    ("12_face.png", "match", [(322, 196, 138, -3.0, False)]),
    ("13_two_people.png", "several", [(176, 236, 112, 4.0, True), (458, 190, 132, -2.0, False)]),
]


def encoding_of_portrait(engine: FaceEngine) -> dict:
    _, box, encoding = read_enrolment_image(engine, PORTRAIT)
    return {
        "image": PORTRAIT.name,
        "person": PERSON_KEY,
        "box": box.as_dict(),
        "encoding": [round(float(v), 8) for v in encoding],
    }


def _backdrop(rng: np.random.Generator) -> np.ndarray:
    if BACKDROP.exists():
        return np.asarray(Image.open(BACKDROP).convert("RGB"), np.float32)
    y = np.linspace(0, 1, SIZE[1], dtype=np.float32)[:, None, None]  # a plain wall, ceiling to floor
    return np.broadcast_to(200 - 60 * y + rng.normal(0, 1, (1, 1, 3)), (SIZE[1], SIZE[0], 3)).astype(np.float32)


def _cutout(face_box: dict) -> tuple[Image.Image, tuple[float, float]]:
    """Head and shoulders out of the portrait, as RGBA, and the face centre in it."""
    portrait = Image.open(PORTRAIT).convert("RGB")
    fx = face_box["left"] + face_box["width"] / 2
    fy = face_box["top"] + face_box["height"] / 2
    fw = face_box["width"]
    left, top = round(fx - 1.45 * fw), max(0, round(fy - 1.35 * fw))
    right, bottom = round(fx + 1.45 * fw), round(fy + 2.2 * fw)  # above the suit's patches
    crop = portrait.crop((left, top, right, bottom))
    mask = Image.new("L", crop.size, 0)
    draw = ImageDraw.Draw(mask)
    cx, cy = fx - left, fy - top
    draw.ellipse((cx - 0.66 * fw, cy - 1.0 * fw, cx + 0.66 * fw, cy + 0.15 * fw), fill=255)  # hair
    draw.ellipse((cx - 0.55 * fw, cy - 0.6 * fw, cx + 0.55 * fw, cy + 0.78 * fw), fill=255)  # face
    draw.rectangle((cx - 0.30 * fw, cy + 0.3 * fw, cx + 0.30 * fw, cy + 1.2 * fw), fill=255)  # neck
    draw.ellipse((cx - 1.45 * fw, cy + 0.95 * fw, cx + 1.45 * fw, cy + 3.6 * fw), fill=255)  # shoulders
    mask = mask.filter(ImageFilter.GaussianBlur(fw * 0.04))
    crop.putalpha(mask)
    return crop, (cx, cy)


def _place(img: np.ndarray, cut: Image.Image, centre: tuple[float, float], src_face_w: int, spec) -> np.ndarray:
    x, y, face_w, turn, mirrored = spec
    scale = face_w / src_face_w
    person = cut.transpose(Image.FLIP_LEFT_RIGHT) if mirrored else cut
    cx = person.width - centre[0] if mirrored else centre[0]
    person = person.resize((round(person.width * scale), round(person.height * scale)), Image.LANCZOS)
    px, py = cx * scale, centre[1] * scale
    person = person.rotate(turn, resample=Image.BICUBIC, center=(px, py), expand=False)
    layer = Image.new("RGBA", SIZE, (0, 0, 0, 0))
    layer.paste(person, (round(x - px), round(y - py)), person)
    rgba = np.asarray(layer, np.float32)
    alpha = rgba[..., 3:] / 255.0
    lit = rgba[..., :3] * np.array([0.90, 0.93, 1.02], np.float32)  # the entrance's cooler, dimmer light
    return img * (1 - alpha) + lit * alpha


def _camera(img: np.ndarray, rng: np.random.Generator) -> Image.Image:
    frame = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB").filter(ImageFilter.GaussianBlur(0.7))
    grain = rng.normal(0.0, 2.5, (SIZE[1] // 2, SIZE[0] // 2)).astype(np.float32)
    grain = np.asarray(Image.fromarray(grain, "F").resize(SIZE, Image.BILINEAR))[..., None]
    return Image.fromarray(np.clip(np.rint(np.asarray(frame, np.float32) + grain), 0, 255).astype(np.uint8), "RGB")


def generate(out: Path, encoding_out: Path, engine: FaceEngine) -> dict:
    enrolled = encoding_of_portrait(engine)
    encoding_out.parent.mkdir(parents=True, exist_ok=True)
    encoding_out.write_text(json.dumps(enrolled, indent=1) + "\n", encoding="utf-8")
    out.mkdir(parents=True, exist_ok=True)
    cut, centre = _cutout(enrolled["box"])
    manifest = {}
    for index, (name, expected, people) in enumerate(SCENES):
        rng = np.random.default_rng(SEED + index)
        img = _backdrop(rng) * (1.0 + 0.02 * index)
        for spec in people:
            img = _place(img, cut, centre, enrolled["box"]["width"], spec)
        _camera(img, rng).save(out / name, optimize=True)
        manifest[name] = {"expect": expected, **({"person": PERSON_KEY} if expected == "match" else {})}
    write_manifest(out, manifest, ensure_ascii=True)
    return manifest


def check(out: Path, encoding_file: Path, engine: FaceEngine) -> list[str]:
    """Problems found matching each scene as the kiosk would; [] when all is well."""
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    enrolled = json.loads(encoding_file.read_text(encoding="utf-8"))
    config = FacesConfig(enabled=True)
    problems = []
    with Gallery(None) as gallery:
        gallery.enrol(PERSON_KEY, "demo", [enrolled["encoding"]])
        matcher = FaceMatcher(gallery, config, engine=engine)
        for name, want in manifest.items():
            rgb = load_rgb(out / name)
            grey = np.asarray(Image.fromarray(rgb).convert("L"))
            for label, colour in (("grey", None), ("colour", rgb)):
                seen = matcher.analyse(grey, colour)
                if seen.kind != ObservationKind(want["expect"]):
                    problems.append(f"{name} ({label}): expected {want['expect']}, got {seen.kind.value}")
                elif seen.kind is ObservationKind.MATCH and seen.distance > config.tolerance - MATCH_MARGIN:
                    problems.append(f"{name} ({label}): distance {seen.distance:.3f} is too near the tolerance {config.tolerance}")
    return problems


def main(argv: list[str] | None = None) -> int:
    cli = parser(__doc__, DEFAULT_OUT, "scene folder")
    cli.add_argument("--encoding-out", type=Path, default=DEFAULT_ENCODING, help=f"encoding file (default {DEFAULT_ENCODING})")
    args = cli.parse_args(argv)
    engine = FaceEngine()
    manifest = generate(args.out, args.encoding_out, engine)
    problems = check(args.out, args.encoding_out, engine)
    return report(args.out, manifest, problems, lambda want: want["expect"], name_width=20)


if __name__ == "__main__":
    sys.exit(main())

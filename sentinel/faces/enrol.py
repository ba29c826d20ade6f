"""Enrolment from image files, for technicians: `sentinel faces enroll --person-id ID --name NAME IMAGE...`.

Each image must show exactly one face, big enough to encode well; otherwise the whole enrolment is
refused with one line per problem, so a bad photo never becomes a bad gallery entry. Several
photos of one person must look like one person, and a new person must not look like someone
already enrolled (a duplicate, or a look-alike the kiosk could not tell apart), unless the
technician says so. Images are read, encoded and dropped; only `keep_images` keeps a crop of the
face, next to the gallery, removed with the person.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sentinel.faces.engine import FaceBox, ImageError, as_rgb, load_rgb, resize
from sentinel.faces.matcher import identify

if TYPE_CHECKING:
    import numpy as np

    from sentinel.faces.gallery import Gallery

#: still images are searched at up to this width, with the detector upsampling once: a face of
#: 36 px at that width is found (in a 4000-px phone photo, faces from about 140 px)
STILL_DETECT_WIDTH = 1024
STILL_UPSAMPLE = 1
#: detector score a face in a photo needs: the astronaut's mission patch scores 0.1, faces 0.7+
STILL_MIN_SCORE = 0.3
#: enrolment photos need a face at least this wide (pixels of the photo): the encoder works on a
#: 150-px face chip, and a smaller face gives a blurrier, less reliable encoding
MIN_ENROL_FACE_PX = 80


class EnrolmentRefused(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class StillFace:
    """What a still image shows: every face box (image pixels) and, for one face, its encoding."""

    boxes: tuple[FaceBox, ...]
    encoding: "np.ndarray | None" = None


def detect_still(engine: Any, rgb: "np.ndarray", min_score: float = STILL_MIN_SCORE) -> tuple[FaceBox, ...]:
    """Every face in a photo, largest first, in the photo's pixels."""
    h, w = rgb.shape[:2]
    width = min(w, STILL_DETECT_WIDTH)
    small = resize(rgb, width) if width != w else rgb
    found = engine.detect(as_rgb(small), STILL_UPSAMPLE, min_score)
    fx, fy = w / small.shape[1], h / small.shape[0]
    return tuple(sorted((b.scaled(fx, fy).clipped(w, h) for b in found), key=lambda b: -b.width))


def read_enrolment_image(engine: Any, path: str | Path, min_face_px: int = MIN_ENROL_FACE_PX) -> tuple["np.ndarray", FaceBox, "np.ndarray"]:
    """(rgb, box, encoding) of the one face in `path`; EnrolmentRefused with the reason otherwise."""
    try:
        rgb = load_rgb(path)
    except ImageError as e:
        raise EnrolmentRefused([str(e)]) from None
    boxes = detect_still(engine, rgb)
    if not boxes:
        raise EnrolmentRefused([
            f"{path}: no face found; use a sharp, well-lit photo of one person facing the camera, "
            f"the face at least {min_face_px} px wide"
        ])
    if len(boxes) > 1:
        raise EnrolmentRefused([
            f"{path}: {len(boxes)} faces found; enrolment needs a photo of exactly one person (crop the others out)"
        ])
    box = boxes[0]
    if box.width < min_face_px:
        raise EnrolmentRefused([
            f"{path}: the face is only {box.width} px wide; enrolment needs at least {min_face_px} px (a closer or larger photo)"
        ])
    (encoding,) = engine.encode(rgb, [box])
    return rgb, box, encoding


def enrol_images(
    gallery: "Gallery",
    engine: Any,
    person_id: str,
    name: str,
    paths: list[str | Path],
    *,
    face_id: str | None = None,
    tolerance: float = 0.5,
    keep_images: bool = False,
    allow_similar: bool = False,
) -> list[dict[str, Any]]:
    """Enrol `person_id` from `paths`, all or nothing. Returns one dict per image (path, box)."""
    import numpy as np

    problems: list[str] = []
    read: list[tuple[str, Any, FaceBox, Any]] = []
    for path in paths:
        try:
            rgb, box, encoding = read_enrolment_image(engine, path)
        except EnrolmentRefused as e:
            problems += e.problems
            continue
        read.append((str(path), rgb, box, encoding))
    if problems:
        raise EnrolmentRefused(problems)

    for i, (path_a, _, _, enc_a) in enumerate(read):  # one person in every photo
        for path_b, _, _, enc_b in read[i + 1:]:
            d = float(np.linalg.norm(np.asarray(enc_a) - np.asarray(enc_b)))
            if d > tolerance:
                problems.append(f"{path_a} and {path_b} do not look like the same person (distance {d:.2f} > tolerance {tolerance})")
    if not allow_similar:  # nobody else enrolled looks like this person
        entries, matrix = gallery.matrix()
        others = [k for k, e in enumerate(entries) if e.person_id != person_id]
        if others:
            entries, matrix = [entries[k] for k in others], matrix[others]
            for path, _, _, encoding in read:
                who = identify(entries, matrix, encoding, tolerance)
                if who.entry is not None and who.distance is not None and who.distance <= tolerance:
                    problems.append(
                        f"{path}: looks like {who.entry.person_id} ({who.entry.name_masked}), already enrolled "
                        f"(distance {who.distance:.2f}); if they are different people, enrol with --allow-similar"
                    )
    if problems:
        raise EnrolmentRefused(problems)

    images: list[str | None] = [None] * len(read)
    if keep_images:
        images = [_keep_face(gallery, person_id, rgb, box) for _, rgb, box, _ in read]
    try:
        gallery.enrol(person_id, name, [encoding for *_, encoding in read], face_id=face_id, images=images)
    except Exception:
        for name_ in images:
            if name_:
                gallery.image_path(name_).unlink(missing_ok=True)
        raise
    return [{"image": path, "box": box.as_dict()} for path, _, box, _ in read]


def _keep_face(gallery: "Gallery", person_id: str, rgb: "np.ndarray", box: FaceBox) -> str:
    """A JPEG of the face with a margin of half its size (not the whole photo), 0600, created in
    the images folder through its descriptor (a linked folder is refused)."""
    from PIL import Image

    h, w = rgb.shape[:2]
    mx, my = box.width // 2, box.height // 2
    crop = FaceBox(box.left - mx, box.top - my, box.right + mx, box.bottom + my).clipped(w, h)
    name = f"{person_id}-{secrets.token_hex(4)}.jpg"
    gallery.image_path(name)  # the name's rules
    from sentinel.state_files import create_file

    images = gallery.open_images_dir(create=True)  # 0700, never through a link
    try:
        fd = create_file(images, name, exclusive=True)  # 0600 whatever the umask, never through a link
    finally:
        os.close(images)
    with os.fdopen(fd, "wb") as f:
        Image.fromarray(rgb[crop.top:crop.bottom, crop.left:crop.right]).save(f, format="JPEG", quality=90)
    return name

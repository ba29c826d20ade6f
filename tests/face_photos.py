"""The shared photos of faces (../shared/data/faces) as a kiosk camera sees them: the largest 4:3
view around the person, resized to the camera's frame size. One home for where the face is in each
photo, used by tests/test_faces_engine.py and bench/faces.py alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

#: where the face is in each photo (fractions of width and height): the camera points at the person
FACE_AT = {
    "obama.jpg": (0.53, 0.24), "obama2.jpg": (0.49, 0.35), "obama3.jpg": (0.55, 0.19), "obama-480p.jpg": (0.52, 0.5),
    "obama_small.jpg": (0.5, 0.5), "obama_partial_face.jpg": (0.5, 0.22), "obama_partial_face2.jpg": (0.5, 0.22),
    "biden.jpg": (0.60, 0.18), "two_people.jpg": (0.53, 0.5),
}  # fmt: skip


def camera_rgb(path: Path, size: tuple[int, int] = (640, 480)) -> np.ndarray:
    """The largest 4:3 view of the photo around the face, resized to `size`; a picture not in
    FACE_AT (a scene already framed as a camera would, e.g. sentinel/assets/face_scenes) is only
    resized."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        if path.name not in FACE_AT:
            return np.asarray(im.resize(size, Image.BILINEAR))
        w, h = im.size
        cw = min(w, round(h * 4 / 3))
        ch = round(cw * 3 / 4)
        fx, fy = FACE_AT[path.name]
        left = min(max(0, round(fx * w - cw / 2)), w - cw)
        top = min(max(0, round(fy * h - ch / 2)), h - ch)
        return np.asarray(im.crop((left, top, left + cw, top + ch)).resize(size, Image.BILINEAR))

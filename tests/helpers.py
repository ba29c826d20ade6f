"""Test tools: a settable clock, an executor that runs inline, and real QR frames made with segno."""

from __future__ import annotations

import io
from concurrent.futures import Executor, Future
from functools import lru_cache

import numpy as np
import segno
from PIL import Image

from sentinel.frames import Frame


class FakeClock:
    def __init__(self, start: float = 1000.0):
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class InlineExecutor(Executor):
    """Runs the verifier on the caller's thread, so a fake clock fully decides the timing."""

    def submit(self, fn, /, *args, **kwargs):
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as e:  # noqa: BLE001 - handed to the future like a real executor
            future.set_exception(e)
        return future


@lru_cache(maxsize=64)
def _qr_grey(payload: str, size: tuple[int, int]) -> bytes:
    canvas = Image.new("L", size, 200)
    buf = io.BytesIO()
    segno.make(payload, error="m", micro=False).save(buf, kind="png", scale=5, border=4)
    code = Image.open(buf).convert("L")
    canvas.paste(code, ((size[0] - code.width) // 2, (size[1] - code.height) // 2))
    return canvas.tobytes()


def qr_frame(payload: str | None, sequence: int = 0, timestamp: float = 0.0, size=(320, 240)) -> Frame:
    """A camera frame showing `payload` as a QR code, or an empty scene for None."""
    if payload is None:
        grey = np.full((size[1], size[0]), 200, np.uint8)
    else:
        grey = np.frombuffer(_qr_grey(payload, size), np.uint8).reshape(size[1], size[0])
    return Frame(grey=grey, timestamp=timestamp, sequence=sequence)

"""A camera frame as the pipeline sees it.

Decoders only need the grey plane (on the Pi it is the lores YUV420 stream's Y plane, free), so
colour is optional and only filled when a consumer (preview, face matching) asks for it. A camera
with a larger stream of the same view (the Pi camera's main stream) offers it as `detail`, fetched
only when asked: the decoders read a code located but not decoded in the grey plane again from
there (sentinel/decoding/detail.py), which costs nothing on the frames that do not need it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy is only a type here; the core must import without it being loaded
    import numpy as np


@dataclass(frozen=True, slots=True)
class Frame:
    grey: "np.ndarray"  # H×W uint8, C-contiguous
    timestamp: float  # seconds on the source's monotonic clock
    sequence: int  # increases by one per frame delivered by the source
    colour: "np.ndarray | None" = None  # H×W×3 uint8 RGB, when the source was asked for colour
    origin: Any = None  # where the frame came from (file name for replays), for logs only
    # the same view at the camera's full resolution, grey (H'×W' uint8), fetched on demand; None
    # (or a call answering None: asked too late, the camera has its buffer back) where there is none
    detail: "Callable[[], np.ndarray | None] | None" = None

    @property
    def size(self) -> tuple[int, int]:
        h, w = self.grey.shape[:2]
        return w, h

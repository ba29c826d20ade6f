"""A camera frame as the pipeline sees it.

Decoders only need the grey plane (on the Pi it is the lores YUV420 stream's Y plane, free), so
colour is optional and only filled when a consumer (preview, face matching) asks for it.
"""

from __future__ import annotations

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

    @property
    def size(self) -> tuple[int, int]:
        h, w = self.grey.shape[:2]
        return w, h

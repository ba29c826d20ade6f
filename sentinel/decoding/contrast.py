"""Local contrast for zxing-cpp's second looks: a located region's own adaptive threshold, then
its contrast-limited histogram equalisation (CLAHE).

A code under a lamp's bright spot, in glare or behind a blurred lens can be located by zxing-cpp
and still not read: its LocalAverage binarizer and its GlobalHistogram one split modules where
the light changes across the code. A threshold against each pixel's own 15 px neighbourhood, or
the region equalised tile by tile, separates them again. On BoofCV's hard photos these two looks
read what the region's GlobalHistogram look read and more (docs/benchmarks.md, "Hard photos",
fourth round), and the frames they read no longer need the slower backends. They run only on a
located region that nothing else read, so a frame without a code pays nothing for them.

How it fails: without OpenCV (a plain `pip install` has none; the Pi gets python3-opencv from
apt, the dev venv the contrib wheel) there are no versions to look at, and the second looks are
what they were without them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# The adaptive threshold: the mean of a 15 px neighbourhood less 2 grey levels. A module of a
# phone's code in a 640-px frame is 3-8 px wide, so the neighbourhood spans two to five of them
# (31 and 61 px read fewer codes on the hard photos).
THRESHOLD_BLOCK = 15
THRESHOLD_OFFSET = 2
# CLAHE: OpenCV's usual clip limit, 8×8 tiles over the region.
CLAHE_CLIP = 2.0
CLAHE_TILES = (8, 8)


def local_contrast(region: "np.ndarray") -> Iterator["np.ndarray"]:
    """The region thresholded against its own neighbourhoods, then equalised tile by tile; each
    is made only when asked for (the second is skipped when the first was read). Nothing
    without OpenCV, and nothing more once OpenCV refuses the region: an error here must not cost
    the frame the codes zxing-cpp has already read in it."""
    try:
        import cv2
    except ImportError:
        return
    try:
        yield cv2.adaptiveThreshold(region, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, THRESHOLD_BLOCK, THRESHOLD_OFFSET)
        yield cv2.createCLAHE(CLAHE_CLIP, CLAHE_TILES).apply(region)
    except cv2.error:
        return

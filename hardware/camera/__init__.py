"""Camera sources: the frame-source seam and its backends.

`import hardware.camera` stays cheap and safe on any machine: the backends are loaded on first
use, and each imports its device library (OpenCV, picamera2) or numpy/Pillow only when it starts.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from hardware.camera.base import CameraError, FrameSource

if TYPE_CHECKING:
    from sentinel.config import CameraConfig

__all__ = ["CameraError", "FrameSource", "open_camera", "OpenCVSource", "Picamera2Source", "ReplaySource", "RetryingSource"]

_BACKENDS = {
    "ReplaySource": "hardware.camera.replay",
    "OpenCVSource": "hardware.camera.opencv",
    "Picamera2Source": "hardware.camera.picamera2",
    "RetryingSource": "hardware.camera.retry",
}


def __getattr__(name: str) -> Any:
    module = _BACKENDS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def open_camera(config: "CameraConfig", *, colour: bool = False) -> FrameSource:
    """The frame source a config's `[camera]` section names by its `type` key (not started yet;
    its `start()` raises CameraError when the device cannot be used: the kiosk wraps it in
    `RetryingSource`, which keeps trying instead). `colour`: frames carry an RGB picture besides
    the grey one the decoders read, for a screen that shows the camera's view (the kiosk asks
    for it when it has a touchscreen; without it the view is drawn grey)."""
    if config.type == "replay":
        from hardware.camera.replay import ReplaySource

        return ReplaySource(config.path, fps=config.fps, frames_per_image=config.frames_per_image, loop=config.loop,
                            colour=colour)
    if config.type == "opencv":
        from hardware.camera.opencv import OpenCVSource

        return OpenCVSource(config.device, width=config.width, height=config.height, fps=config.fps, colour=colour)
    if config.type == "picamera2":
        from hardware.camera.picamera2 import Picamera2Source

        return Picamera2Source(
            main_size=(config.main_width, config.main_height),
            lores_size=(config.lores_width, config.lores_height),
            frame_timeout=config.frame_timeout_s,
            colour=colour,
        )
    raise CameraError(f"unknown camera type {config.type!r}")

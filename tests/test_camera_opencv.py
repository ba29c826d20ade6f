"""OpenCVSource against a real video file (cv2.VideoCapture opens a path the way it opens a
device), so the reader thread, newest-frame semantics and reopening run for real without a camera."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from hardware.camera import CameraError, OpenCVSource  # noqa: E402
from tests.helpers import wait_until

FRAMES = 20
W, H = 160, 120


def _level(i):
    return 10 + 10 * i


@pytest.fixture
def video(tmp_path):
    """Frame i is grey level 10 + 10·i, with a red square in the top-left corner."""
    path = tmp_path / "camera.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (W, H))
    for i in range(FRAMES):
        image = np.full((H, W, 3), _level(i), np.uint8)
        image[:32, :32] = (0, 0, 255)  # BGR
        writer.write(image)
    writer.release()
    return path



def _level_of(frame):
    return float(frame.grey[60:, 60:].mean())


def test_frames_are_grey_of_the_device_size(video):
    with OpenCVSource(str(video), retry_initial=10) as source:
        frame = source.read(2.0)
    assert frame is not None
    assert frame.grey.shape == (H, W) and frame.grey.dtype == np.uint8
    assert frame.colour is None


def test_colour_frames_are_rgb(video):
    with OpenCVSource(str(video), colour=True, retry_initial=10) as source:
        frame = source.read(2.0)
    red, green, blue = frame.colour[8:24, 8:24].reshape(-1, 3).mean(axis=0)
    assert frame.colour.shape == (H, W, 3)
    assert red > 200 and green < 60 and blue < 60


def test_a_slow_consumer_gets_the_newest_frame_and_then_waits_for_a_newer_one(video):
    with OpenCVSource(str(video), retry_initial=10) as source:
        assert wait_until(lambda: not source.healthy)  # the thread has read the whole file meanwhile
        frame = source.read(1.0)
        started = time.monotonic()
        again = source.read(0.2)
        waited = time.monotonic() - started
    assert frame.sequence == FRAMES - 1
    assert _level_of(frame) == pytest.approx(_level(FRAMES - 1), abs=4)
    assert again is None  # the same frame is never handed out twice
    assert 0.15 <= waited < 1.0


def test_a_lost_device_is_reported_retried_with_capped_backoff_and_recovered(video):
    away = video.with_name("unplugged.avi")
    with OpenCVSource(str(video), retry_initial=0.02, retry_max=0.08) as source:
        assert source.read(2.0) is not None
        video.rename(away)  # unplugged
        assert wait_until(lambda: source.retry_delay == 0.08)  # 0.02, 0.04, 0.08, 0.08 …
        assert not source.healthy
        assert "cannot open camera" in source.last_error and str(video) in source.last_error
        away.rename(video)  # plugged back in
        frames = [source.read(2.0) for _ in range(3)]
    assert all(frame is not None for frame in frames)
    assert frames[-1].sequence >= FRAMES  # frames from after the reopening


@pytest.mark.parametrize("device", ["missing.avi", "/dev/video99"])
def test_a_device_that_cannot_be_opened_is_a_camera_error(tmp_path, device):
    if device == "missing.avi":
        device = str(tmp_path / device)
    source = OpenCVSource(device)
    with pytest.raises(CameraError) as caught:
        source.start()
    assert device in str(caught.value)
    with pytest.raises(CameraError):
        source.read(0.1)


def test_close_stops_the_reader_thread(video):
    source = OpenCVSource(str(video), retry_initial=0.01)
    source.start()
    assert source.read(2.0) is not None
    source.close()
    source.close()  # twice is fine
    assert not [t for t in threading.enumerate() if t.name.startswith("camera ")]
    with pytest.raises(CameraError):
        source.read(0.1)

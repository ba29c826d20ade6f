"""ReplaySource: files and videos played back as a camera, for the demo and for pipeline tests."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from hardware.camera import CameraError, ReplaySource


def _write(path, level, size=(32, 24), rgb=None):
    colour = rgb if rgb is not None else (level, level, level)
    Image.new("RGB", size, colour).save(path)
    return path


@pytest.fixture
def folder(tmp_path):
    """Three images whose name order differs from their creation order, plus files to ignore."""
    _write(tmp_path / "10_c.png", 150)
    _write(tmp_path / "01_a.gif", 50)
    _write(tmp_path / "02_b.bmp", 100)
    (tmp_path / "manifest.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


def _drain(source, timeout=0.0, limit=100):
    frames = []
    for _ in range(limit):
        frame = source.read(timeout)
        if frame is None:
            break
        frames.append(frame)
    return frames


class FakeTime:
    """A monotonic clock that only moves when the source sleeps (or the test says so)."""

    def __init__(self, now=100.0):
        self.now = now
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


def test_folder_plays_images_in_name_order_and_skips_other_files(folder):
    with ReplaySource(folder, realtime=False) as source:
        frames = _drain(source)
    assert [f.origin for f in frames] == ["01_a.gif", "02_b.bmp", "10_c.png"]
    assert [int(f.grey.mean()) for f in frames] == [50, 100, 150]
    assert all(f.grey.shape == (24, 32) and f.grey.dtype == np.uint8 for f in frames)


def test_each_image_is_held_for_frames_per_image_frames_then_the_clip_ends(folder):
    with ReplaySource(folder, fps=5, frames_per_image=2, realtime=False) as source:
        frames = _drain(source)
        assert source.finished
        assert source.read(1.0) is None  # and stays over
    assert [f.origin for f in frames] == ["01_a.gif"] * 2 + ["02_b.bmp"] * 2 + ["10_c.png"] * 2
    assert [f.sequence for f in frames] == [0, 1, 2, 3, 4, 5]
    assert [f.timestamp for f in frames] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])


def test_loop_starts_over_and_keeps_counting(folder):
    with ReplaySource(folder, loop=True, realtime=False) as source:
        frames = [source.read(0.0) for _ in range(7)]
        assert not source.finished
    assert [f.origin for f in frames] == ["01_a.gif", "02_b.bmp", "10_c.png"] * 2 + ["01_a.gif"]
    assert [f.sequence for f in frames] == list(range(7))


def test_realtime_waits_one_frame_interval_across_short_reads(folder):
    fake = FakeTime()
    with ReplaySource(folder, fps=10, realtime=True, clock=fake.clock, sleep=fake.sleep) as source:
        first = source.read(1.0)
        assert (first.origin, first.timestamp, fake.sleeps) == ("01_a.gif", 100.0, [])
        results = [source.read(0.03) for _ in range(4)]
    assert results[:3] == [None, None, None]  # each gave up after its own timeout
    assert results[3].origin == "02_b.bmp"
    assert results[3].timestamp == pytest.approx(100.1)
    assert all(s <= 0.03 + 1e-12 for s in fake.sleeps)
    assert math.fsum(fake.sleeps) == pytest.approx(0.1)


def test_realtime_slow_consumer_gets_the_newest_frame_not_a_backlog(tmp_path):
    for i in range(6):
        _write(tmp_path / f"{i}.png", 20 * i)
    fake = FakeTime()
    with ReplaySource(tmp_path, fps=10, realtime=True, clock=fake.clock, sleep=fake.sleep) as source:
        source.read(1.0)
        fake.now += 0.35  # the pipeline was busy with a check
        frame = source.read(1.0)
    assert (frame.sequence, frame.origin, fake.sleeps) == (3, "3.png", [])


def test_realtime_finished_clip_idles_for_the_timeout_instead_of_spinning(tmp_path):
    fake = FakeTime()
    image = _write(tmp_path / "only.png", 80)
    with ReplaySource(image, fps=10, realtime=True, clock=fake.clock, sleep=fake.sleep) as source:
        assert source.read(1.0) is not None
        assert source.read(1.0) is None  # the end, found one frame interval later
        assert source.finished
        fake.sleeps.clear()
        assert source.read(0.5) is None
    assert fake.sleeps == [0.5]


def test_colour_only_when_asked(tmp_path):
    image = _write(tmp_path / "red.png", 0, rgb=(200, 10, 20))
    with ReplaySource(image, realtime=False) as grey_only:
        assert grey_only.read(0).colour is None
    with ReplaySource(image, realtime=False, colour=True) as source:
        frame = source.read(0)
    assert frame.colour.shape == (24, 32, 3)
    assert tuple(frame.colour[0, 0]) == (200, 10, 20)
    assert frame.grey[0, 0] == round(0.299 * 200 + 0.587 * 10 + 0.114 * 20)


def test_a_held_image_cannot_be_scribbled_on_by_a_consumer(tmp_path):
    image = _write(tmp_path / "a.png", 40)
    with ReplaySource(image, frames_per_image=2, realtime=False) as source:
        frame = source.read(0)
        with pytest.raises(ValueError):
            frame.grey[0, 0] = 255
        assert source.read(0).grey[0, 0] == 40


def test_video_file_plays_every_frame_in_order(tmp_path):
    cv2 = pytest.importorskip("cv2")
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    levels = [30, 80, 130, 180, 230]
    for level in levels:
        writer.write(np.full((48, 64, 3), level, np.uint8))
    writer.release()
    with ReplaySource(path, realtime=False) as source:
        frames = _drain(source)
        assert source.finished
    assert [f.origin for f in frames] == [f"clip.avi#{i}" for i in range(5)]
    assert [f.grey.mean() for f in frames] == pytest.approx(levels, abs=3)


@pytest.mark.parametrize(
    "make, problem",
    [
        (lambda tmp: tmp / "missing", "not found"),
        (lambda tmp: (tmp / "empty").mkdir() or tmp / "empty", "no images"),
        (lambda tmp: (tmp / "broken.png").write_bytes(b"not a png") and tmp / "broken.png", "cannot read image"),
        (lambda tmp: (tmp / "broken.mp4").write_bytes(b"not a video") and tmp / "broken.mp4", "video"),
    ],
    ids=["missing", "empty-folder", "unreadable-image", "unreadable-video"],
)
def test_unusable_paths_are_camera_errors_naming_the_path(tmp_path, make, problem):
    path = make(tmp_path)
    with pytest.raises(CameraError) as caught:
        ReplaySource(path).start()
    assert problem in str(caught.value)
    assert str(path) in str(caught.value)


def test_a_folder_of_many_pictures_costs_the_memory_of_one(tmp_path):
    """A benchmark's 40 people or a technician's test set: a replay holds the picture on show, not
    the whole folder (numpy's buffers are counted by tracemalloc)."""
    import tracemalloc

    for i in range(30):
        _write(tmp_path / f"{i:02d}.png", 4 * i, size=(640, 480))
    one_picture = 640 * 480 * 4  # grey + RGB
    tracemalloc.start()
    try:
        seen = []
        with ReplaySource(tmp_path, realtime=False, colour=True, frames_per_image=2) as source:
            while (frame := source.read(0.0)) is not None:  # a consumer that lets each frame go
                seen.append((frame.origin, round(frame.grey.mean()), frame.colour.shape))
            _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == [(f"{i:02d}.png", 4 * i, (480, 640, 3)) for i in range(30) for _ in range(2)]
    assert peak < 4 * one_picture  # all 30 held would be 30 pictures


def test_a_picture_whose_pixels_are_broken_is_a_camera_error_when_it_comes_up(tmp_path):
    _write(tmp_path / "01.jpg", 40)
    noisy = np.random.default_rng(1).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    Image.fromarray(noisy).save(tmp_path / "02.jpg")
    whole = (tmp_path / "02.jpg").read_bytes()
    (tmp_path / "02.jpg").write_bytes(whole[: len(whole) // 2])  # header fine, pixels cut off
    with ReplaySource(tmp_path, realtime=False) as source:
        assert source.read(0.0).origin == "01.jpg"
        with pytest.raises(CameraError, match="02.jpg"):
            source.read(0.0)


def test_read_before_start_is_an_error_not_a_hang(folder):
    with pytest.raises(CameraError):
        ReplaySource(folder).read(0.1)


def test_importing_the_cameras_loads_no_device_or_image_library():
    code = (
        "import sys, hardware.camera as c\n"
        "c.ReplaySource, c.OpenCVSource, c.Picamera2Source\n"
        "print(sorted(m for m in ('numpy', 'cv2', 'PIL', 'picamera2') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

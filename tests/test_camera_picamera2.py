"""Picamera2Source against a scripted stand-in for the `picamera2` module: lores YUV420 buffers
whose rows are wider than the image (as on real hardware), and cameras that hang or vanish."""

from __future__ import annotations

import sys
import time
import types

import numpy as np
import pytest

from hardware.camera import CameraError, Picamera2Source

LORES = (100, 60)  # width, height: the fake pads rows to a 128-byte stride
STRIDE = 128
MAIN = (200, 120)
MAIN_STRIDE = 256


def _main_y_plane(n):
    rows, cols = np.mgrid[0:MAIN[1], 0:MAIN[0]]
    return ((rows * 5 + cols + n) % 250).astype(np.uint8)


def _y_plane(n):
    rows, cols = np.mgrid[0:LORES[1], 0:LORES[0]]
    return ((rows * 7 + cols * 3 + n) % 200).astype(np.uint8)


class FakeRequest:
    def __init__(self, camera, n):
        self._camera = camera
        self._n = n

    def make_buffer(self, name):
        assert not self._camera.released_requests.count(self), "a buffer read after it went back to the camera"
        if name == "main":  # YUV420 main stream (no colour asked): its Y plane, rows padded too
            w, h = MAIN
            y = np.full((h, MAIN_STRIDE), 255, np.uint8)
            y[:, :w] = _main_y_plane(self._n)
            return np.concatenate([y.ravel(), np.full(h * MAIN_STRIDE // 2, 128, np.uint8)])
        assert name == "lores"
        w, h = LORES
        y = np.full((h, STRIDE), 255, np.uint8)  # padding that must not reach the decoder
        y[:, :w] = _y_plane(self._n)
        chroma = np.full(h * STRIDE // 2, 128, np.uint8)  # U and V planes, half size
        return np.concatenate([y.ravel(), chroma])

    def make_array(self, name):
        assert name == "main"
        w, h = self._camera.config["main"]["size"]
        bgr = np.zeros((h, w, 3), np.uint8)
        bgr[...] = (10, 20, 30)  # picamera2's "RGB888" is B, G, R in memory
        return bgr

    def release(self):
        assert self not in self._camera.released_requests, "released twice"
        self._camera.released_requests.append(self)
        self._camera.released += 1


class FakeJob:
    def __init__(self, ready_at):
        self.ready_at = ready_at


class FakeCamera:
    """One opened camera. `behaviour`: seconds until a frame is ready, or "hang"."""

    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.config = None
        self.started = self.closed = self.flushed = False
        self.captures = self.delivered = self.released = 0
        self.released_requests = []

    def create_video_configuration(self, main=None, lores=None, **kwargs):
        return {"main": dict(main), "lores": dict(lores)}

    def configure(self, config):
        self.config = config
        assert config["lores"]["format"] == "YUV420"
        config["lores"]["stride"] = STRIDE
        # as picamera2 does, every stream gets its stride (RGB888: 3 bytes a pixel, unpadded here)
        config["main"]["stride"] = MAIN_STRIDE if config["main"].get("format") == "YUV420" else MAIN[0] * 3

    def stream_configuration(self, name):
        return self.config[name]

    def start(self):
        self.started = True

    def stop(self):
        self.started = False

    def close(self):
        self.closed = True

    def cancel_all_and_flush(self):
        self.flushed = True

    def capture_request(self, wait=None):
        assert wait is False, "a blocking capture can hang the kiosk"
        self.captures += 1
        delay = self.behaviour
        return FakeJob(float("inf") if delay == "hang" else time.monotonic() + delay)

    def wait(self, job, timeout=None):
        remaining = job.ready_at - time.monotonic()
        if remaining > timeout:
            time.sleep(timeout)
            raise TimeoutError
        time.sleep(max(0.0, remaining))
        self.delivered += 1
        return FakeRequest(self, self.delivered - 1)


@pytest.fixture
def cameras(monkeypatch):
    """Install a fake `picamera2`; returns (plan, opened): each Picamera2() takes the next plan
    entry (a FakeCamera behaviour, or an exception to raise), the last one repeating."""
    plan, opened = [0.0], []

    def picamera2(camera_num=0):
        step = plan.pop(0) if len(plan) > 1 else plan[0]
        if isinstance(step, Exception):
            raise step
        camera = FakeCamera(step)
        opened.append(camera)
        return camera

    module = types.ModuleType("picamera2")
    module.Picamera2 = picamera2
    monkeypatch.setitem(sys.modules, "picamera2", module)
    return plan, opened


#: a read returns about when its timeout says; this margin is for a busy machine, and still far
#: from the "never" of a capture that hangs
HANG_MARGIN_S = 1.0


def _timed_read(source, timeout):
    started = time.monotonic()
    frame = source.read(timeout)
    return frame, time.monotonic() - started


def test_grey_is_the_lores_y_plane_without_the_stride_padding(cameras):
    with Picamera2Source(lores_size=LORES, main_size=MAIN) as source:
        frames = [source.read(1.0) for _ in range(3)]
    for n, frame in enumerate(frames):
        assert frame.grey.shape == (LORES[1], LORES[0])
        assert frame.grey.flags["C_CONTIGUOUS"]
        np.testing.assert_array_equal(frame.grey, _y_plane(n))
        assert frame.colour is None
    assert [f.sequence for f in frames] == [0, 1, 2]


def test_colour_comes_from_the_main_stream_as_rgb(cameras):
    _, opened = cameras
    with Picamera2Source(lores_size=LORES, main_size=MAIN, colour=True) as source:
        frame = source.read(1.0)
    assert opened[0].config["main"]["format"] == "RGB888"
    assert frame.colour.shape == (MAIN[1], MAIN[0], 3)
    assert tuple(frame.colour[0, 0]) == (30, 20, 10)


def test_the_detail_is_the_main_streams_y_plane_until_the_next_read(cameras):
    """The decoders read a located, unread code again from the main stream (Frame.detail): its Y
    plane without the padding, while the frame is the current one; then its buffer is back."""
    _, opened = cameras
    with Picamera2Source(lores_size=LORES, main_size=MAIN) as source:
        first = source.read(1.0)
        assert opened[0].config["main"]["format"] == "YUV420"
        detail = first.detail()
        assert detail.shape == (MAIN[1], MAIN[0]) and detail.flags["C_CONTIGUOUS"]
        np.testing.assert_array_equal(detail, _main_y_plane(0))
        assert opened[0].released == 0  # held while the frame is the current one
        second = source.read(1.0)
        assert opened[0].released == 1
        assert first.detail() is None  # asked too late: no read of a buffer the camera has back
        np.testing.assert_array_equal(second.detail(), _main_y_plane(1))
    assert opened[0].released == opened[0].delivered == 2  # close gives the held one back


def test_with_colour_the_detail_is_the_colour_frames_grey(cameras):
    _, opened = cameras
    with Picamera2Source(lores_size=LORES, main_size=MAIN, colour=True) as source:
        frame = source.read(1.0)
        assert opened[0].released == 1  # nothing to hold: the colour copy is the frame's
    detail = frame.detail()
    assert detail.shape == (MAIN[1], MAIN[0])
    assert int(detail[0, 0]) == int(0.299 * 30 + 0.587 * 20 + 0.114 * 10)


def test_every_request_goes_back_to_the_camera(cameras):
    _, opened = cameras
    with Picamera2Source(lores_size=LORES) as source:
        for _ in range(5):
            assert source.read(1.0) is not None
    assert opened[0].released == opened[0].delivered == 5


def test_a_late_frame_is_delivered_by_the_next_read_not_leaked(cameras):
    plan, opened = cameras
    plan[:] = [2.0]  # far later than two short reads, even on a busy machine
    with Picamera2Source(lores_size=LORES, frame_timeout=10.0) as source:
        assert source.read(0.03) is None
        assert source.read(0.03) is None
        frame = source.read(10.0)
    assert frame is not None
    assert opened[0].captures == 1  # one capture waited for across reads, none abandoned
    assert opened[0].released == 1
    assert source.timeouts == 2
    assert len(opened) == 1


def test_a_hung_camera_returns_none_within_the_timeout_and_is_reopened(cameras):
    plan, opened = cameras
    plan[:] = ["hang", 0.0]
    with Picamera2Source(lores_size=LORES, frame_timeout=0.1, reopen_after=2) as source:
        for _ in range(20):
            frame, took = _timed_read(source, 0.04)
            assert frame is None and took < 0.04 + HANG_MARGIN_S
            if len(opened) == 2:
                break
        assert not source.healthy
        assert "no frame from the camera" in source.last_error
        frame = source.read(1.0)
        assert source.healthy
    assert frame is not None
    hung = opened[0]
    assert hung.flushed and hung.closed and not hung.started
    assert source.reopens == 1
    assert source.timeouts >= 2  # every read that came back empty is counted for the heartbeat


def test_a_camera_that_cannot_be_reopened_is_retried_while_reads_keep_returning(cameras):
    plan, opened = cameras
    plan[:] = ["hang", RuntimeError("Failed to acquire camera: Device or resource busy"), 0.0]
    with Picamera2Source(lores_size=LORES, frame_timeout=0.05, reopen_after=1) as source:
        frame, saw_error = None, False
        deadline = time.monotonic() + 5
        while frame is None and time.monotonic() < deadline:
            frame, took = _timed_read(source, 0.03)
            assert took < 0.03 + HANG_MARGIN_S
            saw_error = saw_error or "resource busy" in (source.last_error or "")
    assert frame is not None
    assert saw_error
    assert len(opened) == 2 and opened[0].closed


def test_missing_picamera2_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # makes `import picamera2` fail
    with pytest.raises(CameraError, match=r"sudo apt install python3-picamera2"):
        Picamera2Source().start()


def test_no_camera_attached_is_a_camera_error(cameras):
    plan, _ = cameras
    plan[:] = [IndexError("list index out of range")]
    with pytest.raises(CameraError, match="no Raspberry Pi camera"):
        Picamera2Source().start()

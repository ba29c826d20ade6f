"""Test tools shared by the test modules: settable clocks (monotonic and wall), polling with a
timeout that survives a busy 2-core machine, a reader that never loses a child process's lines, an
executor that runs inline, real QR frames made with segno, the demo device's service client, and
a loopback HTTP handler that answers every POST with canned JSON.

Every component a test builds gets one of these clocks: a fixture date is never compared with the
real clock (the suite passes with the system clock a year off, see README)."""

from __future__ import annotations

import io
import json
import queue
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from http.server import BaseHTTPRequestHandler

import numpy as np
import segno
from PIL import Image

from sentinel.client import ServiceClient
from sentinel.frames import Frame
from sentinel.service.seed import DEMO_DEVICE_ID, DEMO_DEVICE_TOKEN, DEMO_SITE

# Polls give up after this long: far past anything a healthy run needs, so a loaded machine does not
# turn a slow pass into a failure, while a real hang still fails the test.
PATIENCE_S = 15.0

# A fixed instant for the wall clock of tests (a weekday morning): only ever used through WallClock.
T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


class FakeClock:
    """A monotonic clock that moves only when told; safe to read from other threads."""

    def __init__(self, start: float = 1000.0):
        self._lock = threading.Lock()
        self._t = start

    @property
    def t(self) -> float:
        with self._lock:
            return self._t

    @t.setter
    def t(self, value: float) -> None:
        with self._lock:
            self._t = value

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._t += seconds


class WallClock:
    """A wall clock (aware UTC datetimes) that moves only when told: what `wall=` parameters take."""

    def __init__(self, start: datetime = T0):
        self.t = start

    def __call__(self) -> datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


def wall_following(clock: FakeClock, start: datetime = T0) -> Callable[[], datetime]:
    """A wall clock that moves with a monotonic FakeClock: `start` at the clock's current reading."""
    origin = clock()
    return lambda: start + timedelta(seconds=clock() - origin)


def wait_until(condition: Callable[[], object], timeout: float = PATIENCE_S, what: str = "condition") -> bool:
    """Poll until `condition()` is true; fail the test with `what` when it is not within `timeout`."""
    end = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.005)


def drain_datagrams(sock: socket.socket) -> list[str]:
    """Every datagram waiting on `sock` (a stand-in for systemd's notification socket, with a short
    timeout set), decoded, oldest first."""
    out = []
    while True:
        try:
            out.append(sock.recv(4096).decode())
        except (TimeoutError, socket.timeout):
            return out


class LineReader:
    """Reads a child process's text pipe on its own thread, so no line is lost to a buffer that a
    later `communicate()` would skip, and a full pipe never stalls the child."""

    def __init__(self, stream):
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream) -> None:
        for line in iter(stream.readline, ""):
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def next_line(self, timeout: float = PATIENCE_S) -> str | None:
        """The next line; None at the end of the stream. Fails the test when none comes in time."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no line from the child within {timeout:.0f} s (so far: {self.seen[-5:]})") from None
        if line is not None:
            self.seen.append(line)
        else:
            self._lines.put(None)  # stays at the end for every later call
        return line

    def rest(self, timeout: float = PATIENCE_S) -> list[str]:
        """Every line until the stream ends."""
        out = []
        while (line := self.next_line(timeout)) is not None:
            out.append(line)
        return out


class RunningKiosk:
    """`kiosk.run()` on a thread, as `sentinel run` runs it; `close()` stops it, joins it, and fails
    the test if it did not stop or ended with an error."""

    def __init__(self, kiosk):
        self.kiosk = kiosk
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.kiosk.run(stop=self.stop)
        except BaseException as e:  # noqa: BLE001 - reported by close()
            self.error = e

    def screen(self):
        """The screen shown last (a ConsoleDisplay keeps them in `shown`)."""
        shown = self.kiosk.display.shown
        return shown[-1] if shown else None

    def showing(self, kind, part: str | None = None) -> bool:
        s = self.screen()
        return s is not None and s.kind == kind and (part is None or s.failed_part == part)

    def kinds(self) -> set[str]:
        return {str(s.kind) for s in self.kiosk.display.shown}

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive(), "the kiosk did not stop"
        assert self.error is None, repr(self.error)


def run_reading(args: list[str], **popen) -> tuple[subprocess.Popen, LineReader, LineReader]:
    """Start a child with both pipes read by LineReaders."""
    child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)
    return child, LineReader(child.stdout), LineReader(child.stderr)


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


def device_client(url: str, token: str = DEMO_DEVICE_TOKEN, *, device_id: str = DEMO_DEVICE_ID, site_id: str = DEMO_SITE.id,
                  **kw) -> ServiceClient:
    """The demo device's client of the service at `url` (close it, e.g. with contextlib.closing)."""
    return ServiceClient(url, token, device_id=device_id, site_id=site_id, **kw)


def json_answering(answer: dict | Callable[[bytes], dict], status: int = 200,
                   protocol: str = "HTTP/1.0") -> type[BaseHTTPRequestHandler]:
    """An http.server handler that reads each POST's body and answers `status` with `answer` as
    JSON (or with `answer(body)` when it is callable); it logs nothing."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = protocol

        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = json.dumps(answer(raw) if callable(answer) else answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    return Handler


def too_small_code_view(payload: str) -> tuple[np.ndarray, np.ndarray]:
    """(a 1280×960 view as the Pi camera's main stream, the 640×480 grey plane its lores stream
    gives) with `payload`'s code so small and slightly out of focus that the kiosk's decoder
    locates it in the grey plane but cannot read it, and reads it at full resolution: the premise,
    checked (the test fails where no module size gives it)."""
    import pytest

    from sentinel.decoding import make_decoder

    decoder = make_decoder(["zxing-cpp", "pyzbar"], fallback_every=1)
    for module_px in (2.8, 3.0, 2.6):
        full, lores = _small_code_view(payload, module_px)
        small, big = decoder.scan(lores), decoder.scan(full)
        if not small.codes and small.located and [c.text for c in big.codes] == [payload]:
            return full, lores
    pytest.fail("no module size gave a code located but unread at 640 px and read at 1280 px")


def _small_code_view(payload: str, module_px: float) -> tuple[np.ndarray, np.ndarray]:
    from PIL import ImageFilter

    code = _code_image(payload, module_px)
    view = Image.new("L", (1280, 960), 170)
    view.paste(code, (501, 403))
    view = view.filter(ImageFilter.GaussianBlur(0.8))
    lores = view.resize((640, 480), Image.Resampling.BOX)  # the ISP's downscale
    return np.ascontiguousarray(np.asarray(view)), np.ascontiguousarray(np.asarray(lores))


def glared_code_view(payload: str) -> np.ndarray:
    """A 640×480 grey frame of `payload`'s code under a lamp's reflection (a bright spot over part
    of it, the light falling off across the frame) that the kiosk's decoder locates, and reads
    only with its contrast looks (sentinel/decoding/contrast.py): the premise, checked (the test
    fails where no reflection gives it)."""
    from unittest import mock

    import pytest

    from sentinel.decoding import make_decoder

    for spot_px, falloff, spot_at in ((40, 0.35, (0.5, 0.5)), (40, 0.6, (0.5, 0.3)), (40, 0.6, (0.7, 0.5))):
        grey = _glared_code_view(payload, spot_px, falloff, spot_at)
        with mock.patch("sentinel.decoding.zxing.local_contrast", lambda region: iter(())):
            without = make_decoder(["zxing-cpp", "pyzbar"], fallback_every=1).scan(grey)
        read = make_decoder(["zxing-cpp", "pyzbar"], fallback_every=1).scan(grey)
        if not without.codes and without.located and [c.text for c in read.codes] == [payload]:
            return grey
    pytest.fail("no reflection gave a code located but read only with the contrast looks")


def _glared_code_view(payload: str, spot_px: float, falloff: float, spot_at: tuple[float, float]) -> np.ndarray:
    code = np.asarray(_code_image(payload, 4), np.float32)
    view = np.full((480, 640), 170, np.float32)
    top, left = (480 - code.shape[0]) // 2, (640 - code.shape[1]) // 2
    view[top : top + code.shape[0], left : left + code.shape[1]] = code
    ys, xs = np.mgrid[0:480, 0:640]
    view *= falloff + (1 - falloff) * xs / 640  # darker to the left
    sx, sy = left + spot_at[0] * code.shape[1], top + spot_at[1] * code.shape[0]
    view += 250 * np.exp(-((xs - sx) ** 2 + (ys - sy) ** 2) / (2 * spot_px**2))  # the lamp's reflection
    return np.ascontiguousarray(np.clip(view, 0, 255).astype(np.uint8))


def _code_image(payload: str, module_px: float) -> Image.Image:
    """`payload`'s QR code (error level M, quiet zone of 4 modules) with modules `module_px` wide."""
    buf = io.BytesIO()
    segno.make(payload, error="m", micro=False).save(buf, kind="png", scale=1, border=4)
    code = Image.open(buf).convert("L")
    return code.resize((round(code.width * module_px), round(code.height * module_px)), Image.Resampling.BILINEAR)

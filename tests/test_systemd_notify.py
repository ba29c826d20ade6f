"""sd_notify over a real unix datagram socket, the watchdog's ping rule, and the credential copy."""

import os
import socket
import uuid

import pytest

from sentinel.systemd_credentials import resolve_token_file
from sentinel.notify import Notifier, WatchedSource, Watchdog, watchdog_interval_s
from tests.helpers import FakeClock, drain_datagrams


@pytest.fixture
def systemd(tmp_path):
    """A stand-in for systemd's notification socket: (address, receive())."""
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.01)

    def receive():
        return drain_datagrams(sock)

    yield str(path), receive
    sock.close()


def test_messages_arrive_as_datagrams(systemd):
    address, receive = systemd
    n = Notifier(env={"NOTIFY_SOCKET": address})
    assert n.enabled
    assert n.ready("checking")
    assert n.watchdog()
    assert n.status("camera\nreconnecting")
    assert n.stopping()
    assert receive() == ["READY=1\nSTATUS=checking", "WATCHDOG=1", "STATUS=camera reconnecting", "STOPPING=1"]


def test_abstract_socket_address():
    name = f"sentinel-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(1)
    try:
        assert Notifier(env={"NOTIFY_SOCKET": "@" + name}).ready()
        assert sock.recv(100) == b"READY=1"
    finally:
        sock.close()


def test_outside_systemd_everything_is_a_no_op():
    n = Notifier(env={})
    assert not n.enabled
    assert n.ready() is False and n.watchdog() is False
    assert not Watchdog(n, None).enabled


def test_a_full_socket_drops_the_message_instead_of_blocking(systemd):
    address, receive = systemd
    n = Notifier(env={"NOTIFY_SOCKET": address})
    results = [n.watchdog() for _ in range(2000)]  # far more than the socket queues
    assert results[0] and not results[-1]
    assert receive()  # what was queued arrives


def test_a_vanished_socket_is_logged_not_raised(tmp_path, caplog):
    n = Notifier(env={"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert n.watchdog() is False
    assert n.watchdog() is False
    assert sum("cannot notify systemd" in r.message for r in caplog.records) == 1


def test_watchdog_interval_from_the_environment():
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000"}) == 30.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}) == 30.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, pid=2) is None
    assert watchdog_interval_s({}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "junk"}) is None


def test_pings_only_while_camera_and_uploader_are_healthy(systemd):
    address, receive = systemd
    clock = FakeClock()
    dog = Watchdog(Notifier(env={"NOTIFY_SOCKET": address}), interval_s=20.0, clock=clock)
    assert dog.ping_if_healthy(True, True)
    assert not dog.ping_if_healthy(True, True)  # not due yet: every interval/4 = 5 s
    clock.advance(5)
    assert dog.ping_if_healthy(True, True)
    clock.advance(5)
    assert not dog.ping_if_healthy(False, True)
    clock.advance(5)
    assert not dog.ping_if_healthy(True, False)
    clock.advance(5)
    assert not dog.ping_if_healthy(False, False)
    assert dog.problem == "camera delivers no frames; uploader stopped"
    assert dog.ping_if_healthy(True, True)  # overdue: at once
    messages = receive()
    assert messages.count("WATCHDOG=1") == 3
    statuses = [m for m in messages if m.startswith("STATUS=")]
    assert statuses == [
        "STATUS=unhealthy: camera delivers no frames; systemd restarts the kiosk if this lasts",
        "STATUS=unhealthy: uploader stopped; systemd restarts the kiosk if this lasts",
        "STATUS=unhealthy: camera delivers no frames; uploader stopped; systemd restarts the kiosk if this lasts",
        "STATUS=checking",
    ]


class ScriptedSource:
    """A frame source whose reads return what the test queues (None: no frame in time)."""

    def __init__(self):
        self.script = []
        self.started = self.closed = False
        self.healthy = True

    name = "scripted"
    paused = finished = False  # the rest of the frame-source interface (sentinel.ports.CameraLike)
    last_error = None
    reconnect_attempts = 0

    def start(self):
        self.started = True

    def read(self, timeout):
        item = self.script.pop(0) if self.script else None
        if isinstance(item, Exception):
            raise item
        return item

    def close(self):
        self.closed = True


def _watched(address, clock, **kw):
    source = ScriptedSource()
    dog = Watchdog(Notifier(env={"NOTIFY_SOCKET": address}), interval_s=4.0, clock=clock)
    return source, dog, WatchedSource(source, dog, clock=clock, camera_grace_s=10.0, **kw)


def test_the_wrapped_source_sends_ready_pings_and_stopping(systemd):
    address, receive = systemd
    clock = FakeClock()
    source, dog, watched = _watched(address, clock)
    with watched:
        assert source.started
        source.script = ["frame"]
        assert watched.read(0.1) == "frame"
        assert receive() == ["READY=1\nSTATUS=checking", "WATCHDOG=1"]
        assert watched.healthy is True  # passed through to the source
        pings = 0
        for _ in range(5):
            clock.advance(1.0)
            source.script = ["frame"]
            watched.read(0.1)
            pings += receive().count("WATCHDOG=1")
        assert pings == 5
    assert source.closed
    assert receive() == ["STOPPING=1\nSTATUS=stopping"]


def test_a_silent_camera_stops_the_pings_after_the_grace(systemd):
    address, receive = systemd
    clock = FakeClock()
    source, dog, watched = _watched(address, clock)
    watched.start()
    source.script = ["frame"]
    watched.read(0.1)
    sent = receive()
    for _ in range(9):  # 9 s of nothing: within the 10 s grace (a USB camera reconnecting)
        clock.advance(1.0)
        watched.read(0.1)
        sent += receive()
    assert dog.healthy
    for _ in range(5):
        clock.advance(1.0)
        watched.read(0.1)
        sent += receive()
    assert not dog.healthy and dog.problem == "camera delivers no frames"
    assert sent.count("WATCHDOG=1") == 11  # at 0 s, and each second up to the 10 s grace
    last_ping = max(i for i, m in enumerate(sent) if m == "WATCHDOG=1")
    assert sent[last_ping + 1].startswith("STATUS=unhealthy: camera")
    source.script = ["frame"]
    clock.advance(1.0)
    watched.read(0.1)
    assert receive()[-1] == "WATCHDOG=1"  # frames again: pings resume


def test_a_camera_that_never_delivers_is_unhealthy_after_the_grace(systemd):
    address, receive = systemd
    clock = FakeClock()
    source, dog, watched = _watched(address, clock)
    watched.start()
    watched.read(0.1)
    assert receive() == ["READY=1\nSTATUS=checking", "WATCHDOG=1"]  # started: ready, within grace
    clock.advance(11)
    watched.read(0.1)
    assert not dog.healthy


def test_a_read_that_raises_still_counts_towards_the_watchdog(systemd):
    address, receive = systemd
    clock = FakeClock()
    source, dog, watched = _watched(address, clock)
    watched.start()
    source.script = [OSError("gone")]
    with pytest.raises(OSError):
        watched.read(0.1)
    assert receive()[0].startswith("READY=1")


def test_a_dead_uploader_stops_the_pings(systemd):
    address, receive = systemd
    clock = FakeClock()
    alive = {"uploader": True}
    source, dog, watched = _watched(address, clock, uploader_ok=lambda: alive["uploader"])
    watched.start()
    source.script = ["frame", "frame"]
    watched.read(0.1)
    alive["uploader"] = False
    clock.advance(2)
    watched.read(0.1)
    assert dog.problem == "uploader stopped"
    assert receive().count("WATCHDOG=1") == 1


def test_a_broken_uploader_probe_counts_as_unhealthy(systemd):
    address, _ = systemd
    clock = FakeClock()

    def probe():
        raise RuntimeError("bug")

    source, dog, watched = _watched(address, clock, uploader_ok=probe)
    watched.start()
    source.script = ["frame"]
    watched.read(0.1)
    assert dog.problem == "uploader stopped"


# --- LoadCredential= --------------------------------------------------------------------------


def test_the_token_comes_from_systemds_copy_when_there_is_one(tmp_path):
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "device-token").write_text("secret")
    configured = tmp_path / "etc" / "device-token"
    assert resolve_token_file(configured, {"CREDENTIALS_DIRECTORY": str(creds)}) == creds / "device-token"


def test_the_configured_token_file_otherwise(tmp_path):
    configured = tmp_path / "device-token"
    assert resolve_token_file(configured, {}) == configured
    assert resolve_token_file(configured, {"CREDENTIALS_DIRECTORY": str(tmp_path / "empty")}) == configured


def test_the_new_core_modules_import_no_hardware_or_ui_library():
    import subprocess
    import sys
    from pathlib import Path

    modules = ["sentinel.notify", "sentinel.systemd_credentials", "sentinel.commands.doctor"]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print([m for m in ('picamera2', 'RPi', 'lgpio', 'gpiozero', 'pygame', 'cv2', 'evdev', 'serial') if m in sys.modules])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stderr


def test_a_camera_paused_on_purpose_keeps_the_pings_going(systemd):
    """A handheld's GatedSource turns the camera off between trigger presses and says `paused`."""
    address, receive = systemd
    clock = FakeClock()
    source, dog, watched = _watched(address, clock)
    watched.start()
    source.paused = True
    pings = 0
    for _ in range(30):  # 30 s without a frame, all of it paused
        clock.advance(1.0)
        watched.read(0.1)
        pings += receive().count("WATCHDOG=1")
    assert dog.healthy and pings == 30
    source.paused = False
    for _ in range(11):
        clock.advance(1.0)
        watched.read(0.1)
    assert not dog.healthy  # no longer paused, and silent past the grace

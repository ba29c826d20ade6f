"""The kiosk as `sentinel run` builds it (a TOML config through `load_config`, `build_kiosk`, the
gpio gate on gpiozero's MockFactory) keeps running through faults at start: a missing camera, a
full or read-only state directory, a record key that cannot be written. It starts, tells systemd
READY=1, shows the fault with the relay closed, and recovers by itself once the fault clears. A part
that cannot be opened at all releases what was opened before it, the relay closed.

Full and read-only disks are real: small tmpfs mounts (we run as root here); the tests that need
them skip with the reason when mounting is not permitted."""

from __future__ import annotations

import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sentinel.config import ASSETS, load_config
from sentinel.kiosk import build_kiosk
from sentinel.records import load_or_create_key
from sentinel.screens import ScreenKind
from sentinel.service.seed import DEMO_DEVICE_ID, DEMO_DEVICE_TOKEN, DEMO_SITE
from sentinel.state_lock import StateLock
from tests.helpers import RunningKiosk
from tests.helpers import wait_until as _wait_until

ROOT = Path(__file__).resolve().parents[1]
RELAY_PIN = 17
#: a whole kiosk starting on a busy 2-core machine gets longer than the suite's usual patience
wait_until = functools.partial(_wait_until, timeout=20.0)


def write_config(tmp_path: Path, *, state_dir: Path, camera: str, offline: str = "deny", gate: str = "gpio") -> Path:
    """A config file as a technician writes it; `camera` is the TOML body of [camera]."""
    token = tmp_path / "device-token"
    if not token.exists():
        fd = os.open(token, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(DEMO_DEVICE_TOKEN)
    gate_toml = (f'type = "gpio"\npin = {RELAY_PIN}\npin_factory = "mock"\npulse_s = 0.2\n' if gate == "gpio"
                 else 'type = "fake"\n')
    path = tmp_path / "sentinel.toml"
    path.write_text(
        f'[device]\nid = "{DEMO_DEVICE_ID}"\nsite_id = "{DEMO_SITE.id}"\nlanguage = "en"\nstate_dir = "{state_dir}"\n'
        f"[camera]\n{camera}\n"
        f'[verifier]\ntype = "http"\nurl = "http://127.0.0.1:9"\ntoken_file = "{token}"\ndeadline_s = 0.3\n'
        f'[policy]\noffline = "{offline}"\ncached_ttl_min = 120\n'
        f"[gate]\n{gate_toml}"
        '[display]\ntype = "console"\nresult_s = 0.5\n'
    )
    return path


def replay(path: Path) -> str:
    return f'type = "replay"\npath = "{path}"\nfps = 10\nloop = true\n'


@pytest.fixture
def relay(mock_pins):
    """The relay pin on the shared mock pin factory (tests/conftest.py)."""
    return mock_pins.pin(RELAY_PIN)


@pytest.fixture
def systemd(tmp_path, monkeypatch):
    """$NOTIFY_SOCKET and $WATCHDOG_USEC as the unit gives them; returns a reader of what was sent."""
    address = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(address))
    sock.settimeout(0.02)
    monkeypatch.setenv("NOTIFY_SOCKET", str(address))
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    got: list[str] = []

    def received() -> list[str]:
        while True:
            try:
                got.append(sock.recv(4096).decode())
            except (TimeoutError, socket.timeout, BlockingIOError):
                return got

    yield received
    sock.close()



# --- a camera missing at start ---------------------------------------------------------------------


@pytest.mark.slow
def test_a_camera_missing_at_start_shows_the_fault_with_the_relay_closed_then_recovers(tmp_path, relay, systemd):
    scenes = tmp_path / "camera"
    kiosk = build_kiosk(load_config(write_config(tmp_path, state_dir=tmp_path / "state", camera=replay(scenes))))
    running = RunningKiosk(kiosk)
    try:
        wait_until(lambda: running.showing(ScreenKind.FAULT, "camera"), what="the camera fault screen")
        assert relay.state == 0
        wait_until(lambda: "READY=1" in "".join(systemd()), what="READY=1")
        wait_until(lambda: any("camera fault, retrying" in m for m in systemd()), what="STATUS= naming the camera fault")
        pings = systemd().count("WATCHDOG=1")
        wait_until(lambda: systemd().count("WATCHDOG=1") > pings + 2, what="watchdog pings while the camera is retried")
        shutil.copytree(ASSETS / "scenes", scenes)  # the camera appears
        appeared = time.monotonic()
        wait_until(lambda: running.showing(ScreenKind.IDLE) or kiosk.pipeline.frames_seen > 0, what="frames again")
        assert time.monotonic() - appeared < 15  # generous; the back-off itself waits at most 4 s
        assert kiosk.source.healthy
    finally:
        running.close()
    assert relay.state == 0


@pytest.mark.slow
def test_no_video_device_at_start_is_a_camera_fault_not_an_exit(tmp_path, relay):
    pytest.importorskip("cv2")
    config = load_config(write_config(tmp_path, state_dir=tmp_path / "state", camera='type = "opencv"\ndevice = "/dev/video99"\n'))
    kiosk = build_kiosk(config)
    running = RunningKiosk(kiosk)
    try:
        wait_until(lambda: running.showing(ScreenKind.FAULT, "camera"), what="the camera fault screen")
        assert relay.state == 0
        assert "/dev/video99" in (kiosk.source.last_error or "")
    finally:
        running.close()


@pytest.mark.slow
@pytest.mark.parametrize("broken", ["missing", "corrupt"])
def test_sentinel_run_with_a_broken_camera_starts_and_says_ready(tmp_path, broken):
    """`sentinel run` under a stand-in for systemd: READY=1, no traceback, exit 0 on SIGTERM."""
    scenes = tmp_path / "scene.png"
    if broken == "corrupt":
        scenes.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    config = write_config(tmp_path, state_dir=tmp_path / "state", camera=replay(scenes), gate="fake")
    address = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(address))
    sock.settimeout(0.1)
    env = dict(os.environ, NOTIFY_SOCKET=str(address), WATCHDOG_USEC="2000000")
    env.pop("WATCHDOG_PID", None)
    proc = subprocess.Popen([sys.executable, "-m", "sentinel", "run", "--config", str(config)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    messages: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while messages.count("WATCHDOG=1") < 2 and time.monotonic() < deadline and proc.poll() is None:
            try:
                messages.append(sock.recv(4096).decode())
            except (TimeoutError, socket.timeout):
                pass
        assert proc.poll() is None, "the kiosk exited"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()
    assert messages and messages[0].startswith("READY=1"), messages
    assert messages.count("WATCHDOG=1") >= 2
    assert proc.returncode == 0, err[-2000:]
    assert "Traceback" not in err and "cannot start" not in err


# --- full and read-only state directories ------------------------------------------------------------


def _mount(path: Path, options: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root and mount permission): {result.stderr.strip()}")


def _remount(path: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True)


@pytest.fixture
def disk(tmp_path):
    """A small real file system of its own for the state directory: `full()` fills it, `free()`
    empties it again, `read_only()` / `writable()` remount it."""
    mount = tmp_path / "disk"
    _mount(mount, "size=256k,mode=0755")

    class Disk:
        state = mount / "state"
        filler = mount / "filler"

        def full(self):
            fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                for block in (65536, 4096, 512, 1):
                    try:
                        while True:
                            os.write(fd, b"\0" * block)
                    except OSError:
                        pass
            finally:
                os.close(fd)

        def free(self):
            self.filler.unlink()

        def read_only(self):
            _remount(mount, "ro")

        def writable(self):
            _remount(mount, "rw")

    Disk.state.mkdir()
    try:
        yield Disk()
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _earlier_start(tmp_path: Path, state: Path) -> None:
    """What a first start leaves: the lock file, the record key, an outbox."""
    kiosk = build_kiosk(load_config(write_config(tmp_path, state_dir=state, camera=replay(ASSETS / "scenes"), gate="fake")))
    kiosk.close()
    assert (state / "record.key").exists() and (state / "sentinel.lock").exists()


@pytest.mark.slow
def test_pillar_profile_on_a_full_disk_starts_with_alarms_and_checks(tmp_path, relay, disk):
    """offline = "cached" (config/pillar.toml): the status cache could not be opened on a full disk
    (sqlite3.OperationalError out of build_kiosk). Now: memory-only with an alarm, checks go on."""
    load_or_create_key(disk.state / "record.key")
    disk.full()
    config = load_config(write_config(tmp_path, state_dir=disk.state, camera=replay(ASSETS / "scenes"), offline="cached"))
    assert config.policy.offline == "cached"
    kiosk = build_kiosk(config)
    running = RunningKiosk(kiosk)
    try:
        assert kiosk.status_cache.problem and kiosk.pipeline is not None
        alarms = kiosk.alarm_messages("en") + kiosk.outbox.health().messages("en")
        assert any("status cache" in a and "memory" in a for a in alarms), alarms
        wait_until(lambda: kiosk.pipeline.frames_seen > 20, what="frames being checked")
        assert kiosk.status_fields()["alarm"]  # the status bar says something is wrong
        assert not running.showing(ScreenKind.FAULT)
        assert relay.state == 0
    finally:
        running.close()


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["full", "read_only"])
def test_no_record_key_and_no_room_for_one_pauses_checks_until_it_can_be_written(tmp_path, relay, disk, systemd, fault):
    """A new device whose SD card is full (or mounted read-only): no key, so no check; the kiosk runs,
    says READY=1, shows the storage fault with the relay closed, and starts checking by itself
    once the key can be written."""
    if fault == "full":
        disk.full()
    else:
        disk.read_only()
    kiosk = build_kiosk(load_config(write_config(tmp_path, state_dir=disk.state, camera=replay(ASSETS / "scenes"))))
    running = RunningKiosk(kiosk)
    try:
        assert kiosk.pipeline is None
        wait_until(lambda: running.showing(ScreenKind.FAULT, "storage"), what="the storage fault screen")
        assert "device key" in kiosk.status_fields()["alarm"]
        wait_until(lambda: "READY=1" in "".join(systemd()), what="READY=1")
        pings = systemd().count("WATCHDOG=1")
        wait_until(lambda: systemd().count("WATCHDOG=1") > pings + 2, what="watchdog pings: the loop is alive")
        time.sleep(1.0)
        assert relay.state == 0 and kiosk.pipeline is None and not (disk.state / "record.key").exists()
        disk.free() if fault == "full" else disk.writable()
        cleared = time.monotonic()
        wait_until(lambda: kiosk.pipeline is not None and running.showing(ScreenKind.IDLE), what="checks to start")
        assert time.monotonic() - cleared < 15  # KEY_RETRY_S is 2 s; generous for a loaded machine
        assert (disk.state / "record.key").stat().st_size == 32
        assert "device key" not in kiosk.status_fields()["alarm"]
    finally:
        running.close()
    assert relay.state == 0


@pytest.mark.slow
def test_a_read_only_state_directory_starts_and_checks_with_the_alarm(tmp_path, relay, disk):
    """Used to be "cannot start" (the lock file could not be opened for writing)."""
    _earlier_start(tmp_path, disk.state)
    disk.read_only()
    kiosk = build_kiosk(load_config(write_config(tmp_path, state_dir=disk.state, camera=replay(ASSETS / "scenes"))))
    running = RunningKiosk(kiosk)
    try:
        assert kiosk.pipeline is not None  # the key from the earlier start is read
        wait_until(lambda: kiosk.pipeline.frames_seen > 20, what="frames being checked")
        assert not running.showing(ScreenKind.FAULT)
        assert relay.state == 0
        from sentinel.state_lock import StateLockHeld

        with pytest.raises(StateLockHeld):  # still one kiosk per state directory
            build_kiosk(load_config(write_config(tmp_path, state_dir=disk.state, camera=replay(ASSETS / "scenes"), gate="fake")))
    finally:
        running.close()


# --- a part that cannot be opened releases the others ---------------------------------------------------

#: (module, attribute) of everything build_kiosk opens, in the order it opens them
PARTS = [
    ("sentinel.kiosk", "make_client"),
    ("sentinel.kiosk", "lock_state_dir"),
    ("sentinel.kiosk", "open_outbox"),
    ("sentinel.kiosk", "open_status_cache"),
    ("sentinel.kiosk", "make_uploader"),
    ("hardware.gate", "open_gate"),
    ("sentinel.faces.kiosk", "open_faces"),
    ("ui.display", "open_display"),
    ("hardware.scanner", "open_scanner"),
    ("sentinel.kiosk", "make_pipeline"),
    ("hardware.camera", "open_camera"),
    ("hardware.camera.retry", "RetryingSource"),
    ("sentinel.notify", "WatchedSource"),
]
CLOSERS = ("close", "release", "stop")


@pytest.mark.parametrize("failing", PARTS, ids=[f"{m.rsplit('.', 1)[-1]}.{a}" for m, a in PARTS])
def test_a_part_that_fails_to_open_releases_the_rest_and_closes_the_relay(tmp_path, relay, systemd, monkeypatch, failing):
    """Each part in turn fails to open (for make_client: the uploader's, the second one); every part
    opened before it is closed again, the gate among them, and the state lock is free."""
    import importlib

    config = load_config(write_config(tmp_path, state_dir=tmp_path / "state", camera=replay(ASSETS / "scenes")))
    opened: list[str] = []
    closed: list[str] = []
    calls: dict[str, int] = {}

    def spy(module: str, attr: str, real):
        def opener(*args, **kwargs):
            calls[attr] = calls.get(attr, 0) + 1
            if (module, attr) == failing and (attr != "make_client" or calls[attr] == 2):
                raise RuntimeError(f"{attr} cannot be opened")
            part = real(*args, **kwargs)
            for closer in CLOSERS:
                method = getattr(part, closer, None)
                if part is None or not callable(method):
                    continue
                name = f"{attr}#{calls[attr]}"

                def closing(*a, _method=method, _name=name, **kw):
                    closed.append(_name)
                    return _method(*a, **kw)

                try:
                    setattr(part, closer, closing)
                except AttributeError:
                    continue
                opened.append(name)
                break
            return part

        return opener

    for module, attr in PARTS:
        mod = importlib.import_module(module)
        monkeypatch.setattr(mod, attr, spy(module, attr, getattr(mod, attr)))
    with pytest.raises(RuntimeError, match="cannot be opened"):
        build_kiosk(config)
    assert opened, "nothing was opened before the failing part"
    left_open = [name for name in opened if name not in closed]
    assert not left_open, f"left open after {failing[1]} failed: {left_open}"
    assert relay.state == 0
    if any(name.startswith("open_gate") for name in opened):
        assert closed.index(next(n for n in opened if n.startswith("open_gate"))) == 0  # the gate closes first
    StateLock(tmp_path / "state").acquire().release()  # the lock is free again

"""systemd service notification (sd_notify) and the watchdog, in the standard library.

The unit is `Type=notify` with `WatchdogSec=`: systemd counts the kiosk as started when it sends
READY=1, and kills and restarts it when WATCHDOG=1 stops arriving. Pings are therefore sent only
from the kiosk loop (a loop stuck anywhere stops them) and only while the camera and the
uploader are alive, so a wedged camera driver or a dead upload thread ends in a restart rather
than a kiosk that looks alive and checks nobody. READY=1 goes out on the first read of the
camera, whether or not it delivers: a kiosk that shows a fault screen has started. Outside systemd ($NOTIFY_SOCKET unset: a laptop,
the demo, tests) every call is a no-op.

- `Notifier`: READY=1, STATUS=…, WATCHDOG=1, STOPPING=1 as datagrams to $NOTIFY_SOCKET (a path,
  or an abstract socket written `@name`).
- `Watchdog.ping_if_healthy(camera_ok, uploader_ok)`: pings at a quarter of the watchdog interval
  while both are true, and says in STATUS= what is wrong when one is not.
- `WatchedSource`: wraps the kiosk's frame source, so the loop that reads frames drives the
  watchdog without the pipeline knowing: READY=1 on the first read, pings after each read while
  the camera is alive (below) and `uploader_ok()` holds, STOPPING=1 on close.

The watchdog policy for the camera, and how it agrees with the reconnect policy. A restart
helps only against what the process cannot fix itself: a loop stuck somewhere, a driver wedged
inside a read. It does not help against an unplugged camera; it would even hurt (each restart
costs the screen, the uploader's state and seconds of start-up, and used to give up the camera's
back-off schedule). So "the camera is alive" means: a frame arrived, **or the camera backend
made another attempt to reopen the device** (`source.reconnect_attempts` grew), within
`CAMERA_GRACE_S` (60 s). The backends retry at most `hardware.camera.base.RECONNECT_MAX_S`
(4 s) apart, so while they retry the watchdog never gives up, however long the camera is away,
and a returning camera is used within about 5 s, with no restart. Only a backend that neither
delivers nor retries for 60 s (a reader thread stuck in the driver, a hung picamera2 open) stops
the pings; systemd then aborts the kiosk `WatchdogSec` (30 s, systemd/sentinel.service) later,
and the restart reopens the device from scratch. (Counting the grace from the last frame only,
with a back-off capped at 30 s, got a kiosk whose camera was unplugged for 85 s killed at ~98 s
although the camera had been back since 85 s: the reopen was due only at 101 s.)
While the camera is being retried the kiosk shows the camera fault screen (the pipeline) and
STATUS= says "camera fault, retrying: <why>".
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from sentinel.ports import CameraLike

log = logging.getLogger("sentinel.notify")

#: seconds without a frame *and* without a reopen attempt after which the camera counts as wedged
#: and the watchdog stops pinging (module docstring): 15 reconnect intervals
CAMERA_GRACE_S = 60.0


class Notifier:
    """Sends sd_notify messages; `enabled` is False (and sends are no-ops) outside systemd."""

    def __init__(self, address: str | None = None, env: Mapping[str, str] | None = None):
        env = os.environ if env is None else env
        address = address if address is not None else env.get("NOTIFY_SOCKET", "")
        self.address = address
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._warned = False
        self.sent: list[str] = []  # the last messages, for `sentinel doctor` and tests
        if address:
            if address.startswith("@"):
                self._target: str | bytes = "\0" + address[1:]
            elif address.startswith("/"):
                self._target = address
            else:  # vsock and other exotic addresses are not for a kiosk
                log.warning("NOTIFY_SOCKET=%s is not a unix socket; notifications disabled", address)
                self.address = ""

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, *fields: str) -> bool:
        if not self.enabled:
            return False
        message = "\n".join(fields)
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                    self._sock.setblocking(False)  # a backlogged systemd must never stall the kiosk loop
                self._sock.sendto(message.encode("utf-8"), self._target)
            except OSError as e:
                if not self._warned:  # systemd gone or restarted: say it once
                    log.warning("cannot notify systemd at %s: %s", self.address, e)
                    self._warned = True
                return False
            self.sent = (self.sent + [message])[-20:]
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.send("READY=1", *([f"STATUS={_one_line(status)}"] if status else []))

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={_one_line(text)}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        return self.send("STOPPING=1", *([f"STATUS={_one_line(status)}"] if status else []))

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


def _one_line(text: str) -> str:
    return " ".join(str(text).split())[:200]


def watchdog_interval_s(env: Mapping[str, str] | None = None, pid: int | None = None) -> float | None:
    """WatchdogSec= as systemd passes it ($WATCHDOG_USEC, for $WATCHDOG_PID when set), or None."""
    env = os.environ if env is None else env
    usec = env.get("WATCHDOG_USEC")
    if not usec:
        return None
    wanted_pid = env.get("WATCHDOG_PID")
    if wanted_pid and wanted_pid != str(os.getpid() if pid is None else pid):
        return None  # meant for another process (the unit's main process is not us)
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 1e6 if value > 0 else None


class Watchdog:
    """Pings systemd's watchdog while the kiosk is healthy; call `ping_if_healthy` from the loop.

    Pings go out at most every `interval_s / 4` (WatchdogSec=30 → every 7.5 s), which leaves
    three missed chances before systemd acts. `enabled` is False outside a watchdog unit, and
    then nothing is sent; the health bookkeeping (`healthy`, `problem`) works the same.
    """

    def __init__(
        self,
        notifier: Notifier | None = None,
        interval_s: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.notifier = notifier if notifier is not None else Notifier()
        self.interval_s = interval_s if interval_s is not None else watchdog_interval_s()
        self._clock = clock
        self._last_ping: float | None = None
        self.pings = 0
        self.healthy = True
        self.problem = ""

    @classmethod
    def from_environment(cls) -> "Watchdog":
        return cls(Notifier(), watchdog_interval_s())

    @property
    def enabled(self) -> bool:
        return self.notifier.enabled and self.interval_s is not None

    @property
    def ping_every_s(self) -> float:
        return (self.interval_s or 4.0) / 4

    def due(self) -> bool:
        """Worth asking the health questions now (a ping would go out if all is well)."""
        return self._last_ping is None or self._clock() - self._last_ping >= self.ping_every_s

    def ping_if_healthy(self, camera_ok: bool, uploader_ok: bool) -> bool:
        """Ping when both are healthy and a ping is due; returns whether one was sent."""
        problems = [p for p, ok in (("camera delivers no frames", camera_ok), ("uploader stopped", uploader_ok)) if not ok]
        problem = "; ".join(problems)
        if problem != self.problem:
            if problem:
                log.error("not pinging the watchdog: %s", problem)
                self.notifier.status(f"unhealthy: {problem}; systemd restarts the kiosk if this lasts")
            else:
                log.info("healthy again: watchdog pings resume")
                self.notifier.status("checking")
            self.problem = problem
        self.healthy = not problems
        if problems or not self.due():
            return False
        self._last_ping = self._clock()
        if not self.enabled:
            return False
        sent = self.notifier.watchdog()
        self.pings += sent
        return sent


class WatchedSource:
    """A frame source wrapped so that reading frames drives READY=1 and the watchdog.

    `camera_ok` is "a frame arrived, or the source made a reopen attempt, within
    `camera_grace_s`" (counted from start until the first of either): a camera being retried
    costs no restart however long it is away; one whose backend is stuck (neither frames nor
    attempts) does. A source that says it is `paused` (hardware.camera.gated: a handheld's camera
    off between trigger presses) counts as healthy. `uploader_ok` is asked only when a ping is
    due. `healthy`, `last_error`, `reconnect_attempts`, `paused` and `finished` are the wrapped
    source's.
    """

    def __init__(
        self,
        source: CameraLike,
        watchdog: Watchdog,
        *,
        uploader_ok: Callable[[], bool] = lambda: True,
        camera_grace_s: float = CAMERA_GRACE_S,
        ready_status: str = "checking",
        clock: Callable[[], float] = time.monotonic,
    ):
        self.source = source
        self.watchdog = watchdog
        self._uploader_ok = uploader_ok
        self.camera_grace_s = camera_grace_s
        self._ready_status = ready_status
        self._clock = clock
        self._started_at: float | None = None
        self._last_frame_at: float | None = None
        self._last_attempt_at: float | None = None
        self._attempts_seen = 0
        self._camera_note = ""
        self._ready_sent = False

    @property
    def name(self) -> str:
        return self.source.name

    # What the kiosk, the pipeline and the technician's panel read of a frame source, passed on
    # (no catch-all pass-through: `sentinel.ports.CameraLike` names every member).

    @property
    def healthy(self) -> bool:
        return bool(self.source.healthy)

    @property
    def last_error(self) -> str | None:
        return self.source.last_error

    @property
    def reconnect_attempts(self) -> int:
        return int(self.source.reconnect_attempts or 0)

    @property
    def paused(self) -> bool:
        return bool(self.source.paused)

    @property
    def finished(self) -> bool:
        return bool(self.source.finished)

    def start(self) -> None:
        self.source.start()
        self._started_at = self._clock()

    def read(self, timeout: float) -> Any:
        try:
            frame = self.source.read(timeout)
        except Exception:
            self._after_read(None)
            raise
        self._after_read(frame)
        return frame

    def _after_read(self, frame: Any) -> None:
        now = self._clock()
        if self._started_at is None:
            self._started_at = now
        if frame is not None or self.paused:
            # a camera paused on purpose (a handheld between trigger presses) is not a silent one
            self._last_frame_at = now
        try:
            attempts = self.reconnect_attempts
        except Exception:  # noqa: BLE001 - a broken probe: no evidence of retrying
            attempts = self._attempts_seen
        if attempts != self._attempts_seen:
            self._attempts_seen = attempts
            self._last_attempt_at = now
        if not self._ready_sent:
            self._ready_sent = True
            self.watchdog.notifier.ready(self._ready_status)
        self._say_camera_state(frame is not None)
        if not self.watchdog.due():
            return
        since = max(t for t in (self._last_frame_at, self._last_attempt_at, self._started_at) if t is not None)
        camera_ok = now - since <= self.camera_grace_s
        try:
            uploader_ok = bool(self._uploader_ok())
        except Exception:  # noqa: BLE001 - a broken health probe counts as unhealthy
            log.exception("uploader health probe failed")
            uploader_ok = False
        self.watchdog.ping_if_healthy(camera_ok, uploader_ok)

    def _say_camera_state(self, got_frame: bool) -> None:
        """STATUS= names a camera fault that is being retried (systemctl status shows it)."""
        healthy = got_frame or self.healthy
        note = "" if healthy else f"camera fault, retrying: {self.last_error or '?'}"
        if note != self._camera_note:
            self._camera_note = note
            self.watchdog.notifier.status(note or "checking")

    def close(self) -> None:
        try:
            self.watchdog.notifier.stopping("stopping")
        finally:
            self.source.close()

    def __enter__(self) -> "WatchedSource":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

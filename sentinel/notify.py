"""systemd service notification (sd_notify) and the watchdog, in the standard library.

The unit is `Type=notify` with `WatchdogSec=`: systemd counts the kiosk as started when it sends
READY=1, and kills and restarts it when WATCHDOG=1 stops arriving. Pings are therefore sent only
from the kiosk loop (a loop stuck anywhere stops them) and only while the camera and the
uploader are healthy, so a wedged camera driver or a dead upload thread ends in a restart rather
than a kiosk that looks alive and checks nobody. Outside systemd ($NOTIFY_SOCKET unset: a laptop,
the demo, tests) every call is a no-op.

- `Notifier`: READY=1, STATUS=…, WATCHDOG=1, STOPPING=1 as datagrams to $NOTIFY_SOCKET (a path,
  or an abstract socket written `@name`).
- `Watchdog.ping_if_healthy(camera_ok, uploader_ok)`: pings at a quarter of the watchdog interval
  while both are true, and says in STATUS= what is wrong when one is not.
- `WatchedSource`: wraps the kiosk's frame source, so the loop that reads frames drives the
  watchdog without the pipeline knowing: READY=1 on the first read, pings after each read while
  a frame came within `camera_grace_s` and `uploader_ok()` holds, STOPPING=1 on close.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger("sentinel.notify")


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

    `camera_ok` is "a frame arrived within `camera_grace_s`" (the first frame is waited for that
    long after start): a camera that reconnects by itself within the grace costs no restart;
    one that stays silent (unplugged, wedged driver) does. A source that says it is `paused`
    (hardware.camera.gated: a handheld's camera off between trigger presses) counts as healthy. `uploader_ok` is asked only when a
    ping is due. Everything else is passed through to the wrapped source.
    """

    def __init__(
        self,
        source: Any,
        watchdog: Watchdog,
        *,
        uploader_ok: Callable[[], bool] = lambda: True,
        camera_grace_s: float = 60.0,
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
        self._ready_sent = False

    @property
    def name(self) -> str:
        return getattr(self.source, "name", repr(self.source))

    def __getattr__(self, name: str) -> Any:  # healthy, last_error, finished, …
        return getattr(self.source, name)

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
        if frame is not None or getattr(self.source, "paused", False):
            # a camera paused on purpose (a handheld between trigger presses) is not a silent one
            self._last_frame_at = now
        if not self._ready_sent:
            self._ready_sent = True
            self.watchdog.notifier.ready(self._ready_status)
        if not self.watchdog.due():
            return
        since = self._last_frame_at if self._last_frame_at is not None else self._started_at
        camera_ok = now - since <= self.camera_grace_s
        try:
            uploader_ok = bool(self._uploader_ok())
        except Exception:  # noqa: BLE001 - a broken health probe counts as unhealthy
            log.exception("uploader health probe failed")
            uploader_ok = False
        self.watchdog.ping_if_healthy(camera_ok, uploader_ok)

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

"""A throwaway Mosquitto broker, from Debian's `mosquitto` package: what `sentinel demo --fleet N`
starts when no broker is given, and what the fleet tests and benches run against (tests/mosquitto.py
imports it from here: one implementation).

`MosquittoBroker` writes a config into a temporary directory (a listener on 127.0.0.1 at a free
port, no persistence, anonymous clients unless a password file is given, optional extra config such
as a TLS listener) and runs `mosquitto -c` as a child process; `stop()` ends it and removes the
directory, and `restart()` stops and starts it on the same port (a broker that goes away and comes
back). As root, mosquitto would drop to the `mosquitto` user, which cannot write the directory; the
config says `user root` then, so the broker stays the user that made the directory (it reads and
writes nothing outside it). It listens on loopback only: it is a demo and test broker, never a
site's broker (docs/fleet.md says how to run one).

How it fails: `find_mosquitto()` answers None (and why) when the broker is not installed, so callers
can skip or print that reason instead of failing; `start()` raises RuntimeError with mosquitto's
last words when it exits or does not listen within START_TIMEOUT_S.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

START_TIMEOUT_S = 20.0


def find_mosquitto() -> tuple[str | None, str]:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate, ""
    return None, "Mosquitto broker not installed: apt-get install mosquitto (install.sh --dev does)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MosquittoBroker:
    """`with MosquittoBroker() as broker: client.connect("127.0.0.1", broker.port)`"""

    def __init__(self, *, password_file: Path | None = None, extra_config: str = "") -> None:
        binary, why = find_mosquitto()
        if binary is None:
            raise RuntimeError(why)
        self.binary = binary
        self.password_file = password_file
        self.extra_config = extra_config
        self.dir: Path | None = None
        self.port = 0
        self.process: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def start(self) -> Self:
        if self.dir is None:
            self.dir = Path(tempfile.mkdtemp(prefix="sentinel-mqtt-"))
            os.chmod(self.dir, 0o755)
            self.port = free_port()
        lines = [
            f"listener {self.port} 127.0.0.1",
            "persistence false",
            f"log_dest file {self.dir / 'mosquitto.log'}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "max_queued_messages 10000",
        ]
        if self.password_file is not None:
            lines += ["allow_anonymous false", f"password_file {self.password_file}"]
        else:
            lines.append("allow_anonymous true")
        if os.geteuid() == 0:
            lines.append("user root")  # stay the user that made the directory; nothing outside it is read or written
        conf = self.dir / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n" + self.extra_config)
        self.process = subprocess.Popen([self.binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                raise RuntimeError(f"mosquitto exited with {self.process.returncode}: {err[-500:]}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen on {self.port} within {START_TIMEOUT_S:.0f} s")

    def _end_process(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def pause(self) -> None:
        """Stop the broker but keep its port and directory: `start()` brings it back."""
        self._end_process()

    def restart(self) -> None:
        self._end_process()
        self.start()

    @property
    def address(self) -> str:
        """HOST:PORT, as `--broker` takes it."""
        return f"{self.host}:{self.port}"

    def cpu_s(self) -> float | None:
        """CPU time (user + system, seconds) the broker process has used, from /proc."""
        if self.process is None:
            return None
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return None

    def rss_kb(self) -> int | None:
        """The broker process's resident memory (kB), from /proc."""
        if self.process is None:
            return None
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            return None
        return None

    def stop(self) -> None:
        self._end_process()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

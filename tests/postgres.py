"""A throwaway PostgreSQL server for tests and benches, from Debian's packages.

`initdb` and `pg_ctl` (postgresql-NN in /usr/lib/postgresql/NN/bin) build a cluster in a temporary
directory, listening on 127.0.0.1 at a free port and on a Unix socket in that directory only, with
trust authentication for the local test user: nothing outside the directory is touched and nothing
is left behind (`stop` removes it). PostgreSQL refuses to run as root, so as root the cluster is
run as the unprivileged `nobody` user (`runuser`). Durability is off (fsync) since the data is
thrown away; `new_database()` gives each test its own empty database in the one cluster.

`find_binaries()` answers None (and why) when the server packages are not installed, so callers
can skip with that reason instead of failing.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Self

#: the superuser initdb creates; trust authentication, loopback and the private socket only
USER = "sentinel_test"
START_TIMEOUT_S = 30.0


def find_binaries() -> tuple[Path | None, str]:
    """The newest /usr/lib/postgresql/NN/bin holding initdb and pg_ctl, or None and why not."""
    for bindir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0, reverse=True):
        if os.access(Path(bindir) / "initdb", os.X_OK) and os.access(Path(bindir) / "pg_ctl", os.X_OK):
            return Path(bindir), ""
    on_path = shutil.which("initdb"), shutil.which("pg_ctl")
    if all(on_path):
        return Path(on_path[0]).parent, ""
    return None, "PostgreSQL server binaries (initdb, pg_ctl) not installed: apt-get install postgresql (install.sh --dev does)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_processes(procs: list[subprocess.Popen], timeout: float = 10.0) -> None:
    """SIGTERM every process (service processes started against the server), then wait; kill what
    does not stop in time."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class PostgresServer:
    """`with PostgresServer() as pg: url = pg.new_database()`

    `home`: keep the cluster there between runs (the bench's generated databases) instead of a
    temporary directory removed on `stop`; started again, it keeps its databases."""

    def __init__(self, home: Path | None = None) -> None:
        bindir, why = find_binaries()
        if bindir is None:
            raise RuntimeError(why)
        self.bindir = bindir
        self.home = home
        self.dir: Path | None = None
        self.port = 0
        self._as: list[str] = []

    def _run(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run([*self._as, *args], check=True, capture_output=True, text=True, **kwargs)

    def start(self) -> PostgresServer:
        if self.home is None:
            self.dir = Path(tempfile.mkdtemp(prefix="sentinel-pg-"))
        else:
            self.dir = self.home
            self.dir.mkdir(parents=True, exist_ok=True)
        data = self.dir / "data"
        if os.geteuid() == 0:
            # postgres will not run as root; nobody owns the directory and runs the cluster
            runuser = shutil.which("runuser") or shutil.which("setpriv")
            if runuser is None:
                raise RuntimeError("running as root without runuser/setpriv: cannot start PostgreSQL as another user")
            os.chown(self.dir, 65534, 65534)
            os.chmod(self.dir, 0o700)
            self._as = [runuser, "-u", "nobody", "--"] if runuser.endswith("runuser") else [runuser, "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
        if not (data / "PG_VERSION").exists():
            self._run(str(self.bindir / "initdb"), "-D", str(data), "-U", USER, "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C")
        for attempt in range(5):  # a free port can be taken between choosing and listening
            self.port = free_port()
            try:
                self._pg_ctl("start")
                return self
            except subprocess.CalledProcessError:
                if attempt == 4:
                    log = (self.dir / "log").read_text(errors="replace")[-2000:] if (self.dir / "log").exists() else ""
                    self.stop()
                    raise RuntimeError(f"PostgreSQL did not start: {log}") from None
        return self

    def _pg_ctl(self, action: str, *extra: str) -> None:
        options = f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.dir} -c fsync=off " \
                  "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"  # fmt: skip
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.dir / "data"), "-o", options, "-l", str(self.dir / "log"),
                  "-w", "-t", str(int(START_TIMEOUT_S)), *extra, action)  # fmt: skip

    def restart(self) -> None:
        """`pg_ctl restart` (fast: open connections are cut, as in an operator's restart)."""
        self._pg_ctl("restart", "-m", "fast")

    def halt(self) -> None:
        """Stop the server, keeping its data, until `resume()`."""
        self._pg_ctl("stop", "-m", "fast")

    def resume(self) -> None:
        self._pg_ctl("start")

    @property
    def url(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/postgres"

    def new_database(self) -> str:
        """A new empty database; its URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:16]
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")  # a generated name, never input
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.dir is None:
            return
        if (self.dir / "data" / "postmaster.pid").exists():
            try:  # a kept cluster shuts down cleanly, a throwaway one at once
                self._run(str(self.bindir / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate" if self.home is None else "fast", "-w", "stop")
            except subprocess.CalledProcessError:
                pass
        if self.home is None:
            shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

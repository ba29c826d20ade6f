"""An overall deadline for one HTTP exchange with `requests`.

`requests` timeouts bound each socket operation, not the exchange: a server (or a middlebox) that
sends one byte every few hundred milliseconds keeps a call going for as long as it likes, in the
status line, the headers or the body. So each call is also watched: at its deadline the socket
it uses is shut down, which ends any blocked read at once, and the call reports a timeout.
Measured cost: about 0.03 ms per call (bench/verify.py, old and new client alternated).

How it hooks in, and how that could break: `WatchedAdapter` gives urllib3's pool manager its own
pool classes (`pool_classes_by_scheme`), whose `ConnectionCls` registers each connection and its
socket with the call's `Watch`. Both are urllib3 internals of the 2.x line (pinned `urllib3>=2,<3`);
tests/test_http_deadline.py runs the hook against the installed urllib3, so a release that renames
either fails there. Through a SOCKS proxy the pools are urllib3's own and only the per-read
timeouts apply.
"""

from __future__ import annotations

import heapq
import itertools
import socket
import threading
import time

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import ProxyManager


class Watch:
    """One call's connection, as far as the watchdog is concerned."""

    __slots__ = ("conn", "done", "fired", "sock")

    def __init__(self) -> None:
        self.conn: HTTPConnection | None = None
        #: the connection's socket, kept: http.client drops `conn.sock` once a response that ends
        #: the connection (HTTP/1.0, `Connection: close`) is being read, and the body is read then
        self.sock: socket.socket | None = None
        self.done = False
        self.fired = False


current = threading.local()  # the Watch of the call running on this thread


def _register(conn) -> None:
    watch = getattr(current, "watch", None)
    if watch is not None:
        watch.conn = conn
        if conn.sock is not None:
            watch.sock = conn.sock


class _Registering:
    """Registers the connection (and, once connected, its socket) with the call's Watch."""

    sock: socket.socket | None

    def connect(self) -> None:
        _register(self)
        super().connect()  # type: ignore[misc]
        _register(self)  # now with its socket

    def request(self, *args, **kwargs):
        _register(self)
        return super().request(*args, **kwargs)  # type: ignore[misc]


class WatchedHTTPConnection(_Registering, HTTPConnection):
    pass


class WatchedHTTPSConnection(_Registering, HTTPSConnection):
    pass


class WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = WatchedHTTPConnection


class WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = WatchedHTTPSConnection


_WATCHED_POOLS = {"http": WatchedHTTPPool, "https": WatchedHTTPSPool}


class WatchedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_WATCHED_POOLS)

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if isinstance(manager, ProxyManager):  # not SOCKSProxyManager: its pools have their own classes
            manager.pool_classes_by_scheme = dict(_WATCHED_POOLS)
        return manager


class Watchdog:
    """One thread for the process: shuts down the socket of every call still running at its deadline."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Watch]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, watch: Watch, at: float) -> None:
        with self._cond:
            sooner = not self._heap or at < self._heap[0][0]
            heapq.heappush(self._heap, (at, next(self._seq), watch))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="verify-watchdog", daemon=True)
                self._thread.start()
            elif sooner:
                # Woken only when it must look sooner than it planned: a wake-up on every call put a
                # third thread on the GIL while the verifier's worker was sending its request.
                self._cond.notify()

    def disarm(self, watch: Watch) -> None:
        with self._cond:
            watch.done = True  # left in the heap; skipped when its time comes

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                _, _, watch = heapq.heappop(self._heap)
                watch.fired = True
                sock = watch.sock or getattr(watch.conn, "sock", None)
                if sock is not None:
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass


WATCHDOG = Watchdog()

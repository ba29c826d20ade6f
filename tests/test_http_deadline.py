"""sentinel/http_deadline.py hooks urllib3 internals (`ConnectionCls` on a pool class,
`pool_classes_by_scheme` on the pool manager). These tests run the hook against the installed
urllib3 over real loopback HTTP, so an urllib3 that renames or ignores either fails here, not on
a kiosk whose deadline silently stops working."""

import http.server
import socket
import threading
import time

import pytest
import urllib3
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.poolmanager import PoolManager

from sentinel.client import overall_deadline, watched_session
from sentinel.http_deadline import Watch, Watchdog, WatchedHTTPConnection, WatchedHTTPPool
from tests.helpers import PATIENCE_S


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        if self.path == "/trickle":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            try:
                for _ in range(1000):  # one byte every 50 ms: 50 s in all, far past any deadline here
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                pass  # the client cut the connection: what the deadline is for
            return
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_the_installed_urllib3_has_the_seams_the_hook_uses():
    assert int(urllib3.__version__.split(".")[0]) == 2, "http_deadline.py was written against urllib3 2.x"
    assert "ConnectionCls" in vars(HTTPConnectionPool)
    assert WatchedHTTPPool.ConnectionCls is WatchedHTTPConnection
    assert isinstance(PoolManager().pool_classes_by_scheme, dict)


def test_a_watched_session_makes_its_calls_through_the_watched_connection(server):
    session = watched_session()
    try:
        with overall_deadline(30.0) as watch:
            response = session.get(f"{server}/ok", timeout=10)
        assert response.text == "ok"
        assert isinstance(watch.conn, WatchedHTTPConnection)  # urllib3 used the class the hook put in
        assert not watch.fired
    finally:
        session.close()


def test_the_deadline_ends_a_body_that_trickles(server):
    session = watched_session()
    started = time.monotonic()
    try:
        with overall_deadline(0.5) as watch, pytest.raises(Exception):  # noqa: B017 - whichever requests raises
            response = session.get(f"{server}/trickle", timeout=10, stream=True)
            response.content  # noqa: B018 - reads until the deadline cuts it
        assert watch.fired
    finally:
        session.close()
    # each byte arrives well within the 10 s read timeout: only the overall deadline can end it
    assert time.monotonic() - started < 30


def _armed(watchdog: Watchdog, in_s: float) -> tuple[Watch, socket.socket]:
    """A watch on one end of a socket pair, due in `in_s`; the other end says when it is shut down."""
    mine, theirs = socket.socketpair()
    watch = Watch()
    watch.sock = mine
    watchdog.arm(watch, time.monotonic() + in_s)
    theirs.settimeout(PATIENCE_S)
    return watch, theirs


def test_each_call_is_cut_at_its_own_deadline_whichever_was_armed_first():
    """The watchdog is woken only for a deadline sooner than the one it waits for; a later one is
    found when that one comes (done or not)."""
    watchdog = Watchdog()
    late, late_end = _armed(watchdog, 60.0)  # the watchdog now waits a minute
    soon, soon_end = _armed(watchdog, 0.1)  # sooner: it must wake for this one
    assert soon_end.recv(1) == b""  # shut down: the read ends at once
    assert soon.fired and not late.fired
    first, first_end = _armed(watchdog, 0.1)
    watchdog.disarm(first)  # that call finished in time
    behind, behind_end = _armed(watchdog, 0.3)  # armed behind it: no wake-up, found when it comes
    assert behind_end.recv(1) == b""
    assert behind.fired and not first.fired
    watchdog.disarm(late)
    for watch in (late, soon, first, behind):
        watch.sock.close()
    for end in (late_end, soon_end, first_end, behind_end):
        end.close()

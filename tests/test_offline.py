"""Offline operation end to end: the pipeline on real QR frames, the real client and uploader, the
reference service on a real socket with its faults standing in for a network that comes and goes.

- offline policies as a table (deny, allow_and_flag, cached: fresh, stale, unknown, after a restart)
- network down for a while, then up: the backlog drains oldest first, every record once
- lost acknowledgements: stored by the service, resent, still stored once
- the outbox at its cap and a full disk: checks go on, the gate does not open unseen, nothing lost
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hardware.gate import FakeGate
from sentinel.client import ServiceClient
from sentinel.config import CredentialConfig, PolicyConfig
from sentinel.credentials import CredentialRules
from sentinel.decoding import make_decoder
from sentinel.demo_data import demo_person
from sentinel.health import HealthStatus, Status
from sentinel.outbox import Outbox, OutboxLimits
from sentinel.pipeline import Pipeline
from sentinel.records import RecordMaker
from sentinel.service.faults import Faults
from sentinel.service.seed import DEMO_DEVICE_ID, DEMO_DEVICE_TOKEN, DEMO_SITE
from sentinel.service.server import ReferenceServer
from sentinel.status_cache import StatusCache
from sentinel.uploader import Backoff, Uploader
from tests.helpers import FakeClock, InlineExecutor, qr_frame, wait_until
from ui.console import ConsoleDisplay

GREEN, YELLOW, RED, STALE = (demo_person(k) for k in ("green", "yellow", "red", "stale_nat"))
KEY = b"offline-test-record-key-32bytes!"
DOWN = Faults(status=503)


@pytest.fixture
def server(tmp_path):
    with ReferenceServer(tmp_path / "svc.sqlite3", seed="demo", fault_injection=True) as srv:
        yield srv


@pytest.fixture(scope="module")
def decoder():
    d = make_decoder(["zxing-cpp", "pyzbar"])
    d.decode(qr_frame(GREEN.payload).grey)
    return d


def client(url: str, cls=ServiceClient):
    return cls(url, DEMO_DEVICE_TOKEN, device_id=DEMO_DEVICE_ID, site_id=DEMO_SITE.id)


# Every fault here answers at once (503, 401): a long deadline costs nothing, and a loopback
# answer that is slow on a busy or emulated machine (qemu at load 15+) is not taken for offline.
DEADLINE_S = 15.0


class Kiosk:
    """The kiosk's parts, as build_kiosk wires them, with a fake clock for the loop and an inline
    verifier call (the real HTTP client underneath), so that each `show` is exactly one check."""

    def __init__(self, tmp_path: Path, url: str, decoder, *, policy: PolicyConfig, wall=None, limits=OutboxLimits(), cache=None):
        self.clock = FakeClock()
        self.wall = wall or (lambda: datetime.now(UTC))
        self.gate = FakeGate(pulse_s=0.5, clock=self.clock)
        self.display = ConsoleDisplay()
        self.outbox = Outbox(tmp_path / "outbox.sqlite3", limits=limits, wall=self.wall)
        self.verifier = client(url)
        self.cache = cache if cache is not None else StatusCache(tmp_path / "status-cache.sqlite3", ttl_s=policy.cached_ttl_min * 60)
        self.outcomes = []
        self.seq = 0
        self.pipeline = Pipeline(
            decoder=decoder,
            rules=CredentialRules(CredentialConfig()),
            verifier=self.verifier,
            policy=policy,
            records=RecordMaker(DEMO_DEVICE_ID, DEMO_SITE.id, KEY),
            outbox=self.outbox,
            gate=self.gate,
            display=self.display,
            language="en",
            debounce_s=0.5,
            deadline_s=DEADLINE_S,
            result_s=0.5,
            clock=self.clock,
            wall=self.wall,
            executor=InlineExecutor(),
            status_cache=self.cache,
            on_outcome=self.outcomes.append,
        )

    def check(self, person) -> tuple[str, str, bool]:
        before = len(self.outcomes)
        self.seq += 1
        self.pipeline.step(qr_frame(person.payload, self.seq))
        self.screen = self.display.shown[-1]  # the verdict's screen, before it fades back to idle
        self.clock.advance(1.0)  # past the debounce: the next showing is a new check
        self.pipeline.step(qr_frame(None, self.seq))
        assert len(self.outcomes) == before + 1
        o = self.outcomes[-1]
        return o.verdict.kind.value, o.verdict.reason, o.offline

    def close(self):
        self.pipeline.close()
        self.verifier.close()
        self.cache.close()
        self.outbox.close()


def server_records(srv: ReferenceServer) -> list[dict]:
    c = client(srv.url)
    try:
        return c.list_records()
    finally:
        c.close()


# --- offline policies as a table -----------------------------------------------------------------

WALL0 = datetime.now(UTC)


@pytest.mark.parametrize(
    "policy, seen_online, minutes_later, person, expected, gate_opens",
    [
        # the service is down for every check below; `seen_online` was checked while it was up
        ("deny", GREEN, 1, GREEN, ("deny", "offline_denied"), False),
        ("allow_and_flag", None, 1, RED, ("pass", "offline_allowed"), True),
        ("cached", GREEN, 10, GREEN, ("pass", "ok"), True),  # seen green 10 min ago, TTL 60
        ("cached", RED, 10, RED, ("deny", "red_code"), False),  # a cached red stays red
        ("cached", YELLOW, 10, YELLOW, ("manual_check", "yellow_code"), False),
        ("cached", GREEN, 61, GREEN, ("deny", "offline_no_cache"), False),  # older than the TTL
        ("cached", GREEN, 10, RED, ("deny", "offline_no_cache"), False),  # never seen: nothing to go on
    ],
    ids=["deny", "allow_and_flag", "cached-green", "cached-red", "cached-yellow", "cached-too-old", "cached-unknown"],
)
def test_offline_policy_table(tmp_path, server, decoder, policy, seen_online, minutes_later, person, expected, gate_opens):
    wall = [WALL0]
    k = Kiosk(tmp_path, server.url, decoder, policy=PolicyConfig(offline=policy, cached_ttl_min=60), wall=lambda: wall[0])
    if seen_online is not None:
        assert k.check(seen_online)[2] is False  # online
    pulses_before = len(k.gate.pulses)
    server.fault_state.set(DOWN)
    wall[0] = WALL0 + timedelta(minutes=minutes_later)
    verdict, reason, offline = k.check(person)
    assert (verdict, reason) == expected
    assert offline
    assert (len(k.gate.pulses) > pulses_before) == gate_opens
    # a device that cannot ask is not the person's fault: an offline refusal is drawn as a staff check
    shown = {"offline_denied": "manual_check", "offline_no_cache": "manual_check"}.get(reason, verdict)
    assert k.screen.kind.value == shown and k.screen.offline  # the screen says offline
    row = k.outbox.pending(100)[-1]
    assert (row["mode"], row["verdict"], row["reason"]) == ("offline", verdict, reason)
    assert row["status"] in ("verify_failed", "timeout", "green", "red", "yellow")
    k.close()


def test_the_cache_is_on_disk_and_survives_a_restart(tmp_path, server, decoder):
    policy = PolicyConfig(offline="cached", cached_ttl_min=60)
    k = Kiosk(tmp_path, server.url, decoder, policy=policy)
    assert k.check(GREEN) == ("pass", "ok", False)
    k.close()
    server.fault_state.set(DOWN)
    k = Kiosk(tmp_path, server.url, decoder, policy=policy)  # restarted while the network is down
    assert k.check(GREEN) == ("pass", "ok", True)
    assert k.check(RED) == ("deny", "offline_no_cache", True)
    k.close()
    # only the keyed hash is on disk, never the token
    for p in tmp_path.glob("status-cache.sqlite3*"):
        assert GREEN.token.encode() not in p.read_bytes()


def test_no_status_is_kept_unless_the_policy_is_cached(tmp_path, server, decoder):
    cache = StatusCache(None, ttl_s=3600)
    k = Kiosk(tmp_path, server.url, decoder, policy=PolicyConfig(offline="deny"), cache=cache)
    k.check(GREEN)
    assert len(cache) == 0
    k.close()


def test_cached_statuses_expire_and_are_purged(tmp_path):
    cache = StatusCache(tmp_path / "c.sqlite3", ttl_s=600)
    status = HealthStatus(status=Status.GREEN)
    cache.put("a" * 64, status, WALL0)
    assert cache.get("a" * 64, WALL0 + timedelta(minutes=9)) is not None
    assert cache.get("a" * 64, WALL0 + timedelta(minutes=11)) is None
    cache.put("b" * 64, status, WALL0 + timedelta(minutes=20))  # a later write purges the expired one
    assert len(cache) == 1
    assert cache.expire(WALL0 + timedelta(minutes=31)) == 1 and len(cache) == 0
    cache.close()


def test_a_damaged_cache_file_is_replaced(tmp_path):
    path = tmp_path / "c.sqlite3"
    path.write_bytes(b"not a database at all" * 300)
    cache = StatusCache(path, ttl_s=600)
    cache.put("a" * 64, HealthStatus(status=Status.GREEN), WALL0)
    assert cache.get("a" * 64, WALL0) is not None


# --- network down, then up -----------------------------------------------------------------------


@contextmanager
def running_uploader(outbox: Outbox, url: str, batch_size: int = 7) -> Iterator[Uploader]:
    """The uploader's thread sending `outbox` to the service at `url`; stopped, its client closed, on exit."""
    transport = client(url, ServiceClient)
    uploader = Uploader(outbox, transport, batch_size=batch_size, timeout_s=5, backoff=Backoff(0.05, 0.3), idle_s=0.5)
    uploader.start()
    try:
        yield uploader
    finally:
        uploader.stop()
        transport.close()


def drain(outbox: Outbox, url: str) -> None:
    """Runs the uploader until the outbox is empty (fails the test if it does not get there)."""
    with running_uploader(outbox, url):
        assert wait_until(lambda: outbox.health().depth == 0)


def test_network_down_then_up_the_backlog_drains_oldest_first(tmp_path, server, decoder):
    k = Kiosk(tmp_path, server.url, decoder, policy=PolicyConfig(offline="allow_and_flag"))
    with running_uploader(k.outbox, server.url) as uploader:
        online = [k.check(GREEN) for _ in range(3)]
        assert wait_until(lambda: k.outbox.health().depth == 0)
        server.fault_state.set(DOWN)  # the network goes
        offline = [k.check(p) for p in [GREEN, YELLOW, RED, STALE] * 10]
        assert all(o[2] for o in offline) and not any(o[2] for o in online)
        assert wait_until(lambda: uploader.status().consecutive_failures >= 2)
        st = uploader.status()
        assert st.state == "retrying" and st.queue_depth == 40 and st.last_error.startswith("server_error")
        assert st.oldest_record_age_s is not None
        server.fault_state.set(Faults())  # and comes back
        assert wait_until(lambda: k.outbox.health().depth == 0), uploader.status()
        assert uploader.status().consecutive_failures == 0
    stored = server_records(server)
    assert len(stored) == 43 and len({r["id"] for r in stored}) == 43
    assert sum(r["mode"] == "offline" for r in stored) == 40
    # oldest first: in id (= check time) order, the service received them in non-decreasing time,
    # and in more than one batch (7 at a time)
    received = [r["received_at"] for r in sorted(stored, key=lambda r: r["id"])][3:]
    assert received == sorted(received)
    assert len(set(received)) >= 40 // 7
    k.close()


def test_lost_acknowledgements_are_resent_and_stored_once(tmp_path, server):
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    maker = RecordMaker(DEMO_DEVICE_ID, DEMO_SITE.id, KEY)
    from sentinel.credentials import Credential, CredentialKind
    from sentinel.policy import Verdict, VerdictKind

    ids = []
    for i in range(25):
        r = maker.make(Credential(CredentialKind.HEALTH_CODE, f"tok-{i}-aaaaaaaaaaaa"), HealthStatus(status=Status.TIMEOUT),
                       Verdict(VerdictKind.DENY, "offline_denied"), True, datetime.now(UTC))
        outbox.add(r)
        ids.append(r.id)
    server.fault_state.set(Faults(drop=True))  # stored, then the answer is cut off
    with running_uploader(outbox, server.url, batch_size=10) as uploader:
        assert wait_until(lambda: uploader.status().consecutive_failures >= 3)
        assert outbox.health().depth == 25  # nothing acknowledged, so nothing deleted
        assert len(server_records_admin(server)) == 10  # ... although the service has the first batch
        server.fault_state.set(Faults())
        assert wait_until(lambda: outbox.health().depth == 0)
    stored = server_records(server)
    assert sorted(r["id"] for r in stored) == sorted(ids)
    outbox.close()


def server_records_admin(srv: ReferenceServer) -> list[dict]:
    import requests

    r = requests.get(f"{srv.url}/v1/records", params={"limit": 1000}, headers={"Authorization": f"Bearer {srv.admin_token}",
                                                                               "X-Sentinel-Fault": "none"}, timeout=5)
    r.raise_for_status()
    return r.json()["records"]


def test_a_revoked_device_keeps_its_records(tmp_path, server, decoder):
    import requests

    k = Kiosk(tmp_path, server.url, decoder, policy=PolicyConfig(offline="deny"))
    k.check(GREEN)
    r = requests.post(f"{server.url}/admin/devices/{DEMO_DEVICE_ID}/revoke", headers={"Authorization": f"Bearer {server.admin_token}"}, timeout=5)
    r.raise_for_status()
    with running_uploader(k.outbox, server.url) as uploader:
        assert wait_until(lambda: uploader.status().state == "unauthorized")
        assert k.outbox.health().depth == 1
    k.close()


# --- bounds: the cap and the full disk -----------------------------------------------------------


def test_at_the_cap_everyone_is_still_checked_and_recorded_but_staff_decide(tmp_path, server, decoder):
    k = Kiosk(tmp_path, server.url, decoder, policy=PolicyConfig(offline="deny"), limits=OutboxLimits(max_records=10, alarm_fraction=0.8))
    results = [k.check(GREEN) for _ in range(8)]
    assert k.outbox.health().alarms == ("outbox_near_cap",)  # logged and shown from 80 %
    results += [k.check(GREEN) for _ in range(4)]
    assert results[:10] == [("pass", "ok", False)] * 10
    assert results[10:] == [("manual_check", "outbox_full", False)] * 2  # at 10 and past it
    assert k.outbox.health().at_cap == "outbox_full"
    assert len(k.gate.pulses) == 10  # the gate did not open by itself at the cap
    assert k.outbox.health().depth == 12  # every check is a record, none dropped
    rows = k.outbox.pending(100)
    assert [(r["verdict"], r["reason"]) for r in rows[-2:]] == [("manual_check", "outbox_full")] * 2
    assert k.screen.kind.value == "manual_check" and k.screen.message == "Too many records waiting to upload"
    drain(k.outbox, server.url)
    assert k.check(GREEN) == ("pass", "ok", False)  # delivered: back to normal
    k.close()


def test_with_the_disk_full_checks_go_on_and_no_record_is_lost(tmp_path, server, decoder):
    k = Kiosk(tmp_path, server.url, decoder, policy=PolicyConfig(offline="deny"))
    k.check(GREEN)
    k.outbox._db.execute(f"PRAGMA max_page_count={k.outbox._db.execute('PRAGMA page_count').fetchone()[0]}")
    results = [k.check(p) for p in [GREEN, RED, GREEN, YELLOW] * 5]
    full = [r for r in results if r[1] == "record_failed"]
    assert full, "the page limit never filled the file"
    assert all(r[0] == "manual_check" for r in full)  # no gate on a record that is not durable
    h = k.outbox.health()
    assert h.spilled >= len(full) and "outbox_spilling" in h.alarms
    assert sum(not o.durable for o in k.outcomes) == h.spilled  # the outcome tells which records are only in memory
    spilled_rows = [r for r in k.outbox.pending(100) if r["reason"] == "record_failed"]
    assert spilled_rows and all(r["verdict"] == "manual_check" for r in spilled_rows)  # the record says what happened
    # delivered straight from memory while the disk is still full
    drain(k.outbox, server.url)
    stored = server_records(server)
    assert len(stored) == 21 and {r["id"] for r in stored} >= {o.record_id for o in k.outcomes}
    k.close()

"""Expired cached statuses leave the disk whatever the network does: on open (a kiosk stopped
past the TTL), on the read that meets them and on a timer from reads (a kiosk offline for hours,
where no online answer ever comes to trigger a purge). A real SQLite file, an injected wall
clock, and the file's bytes looked at: the credential hash must be gone from the database and
its -wal, not only from query results."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sentinel.health import HealthStatus, Status
from sentinel.status_cache import PURGE_EVERY_S, StatusCache

T0 = datetime(2022, 5, 1, 8, 0, tzinfo=UTC)
TTL = timedelta(hours=1)
OLD = "a1" * 32  # a keyed credential hash, as the pipeline stores it
OTHER = "b2" * 32
GREEN = HealthStatus(status=Status.GREEN)


def on_disk(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))


def test_a_kiosk_stopped_past_the_ttl_purges_on_open(tmp_path):
    path = tmp_path / "status-cache.sqlite3"
    cache = StatusCache(path, ttl_s=TTL.total_seconds(), wall=lambda: T0)
    cache.put(OLD, GREEN, T0)
    cache.close()
    assert OLD.encode() in on_disk(path)  # the test can see it when it is there
    later = StatusCache(path, ttl_s=TTL.total_seconds(), wall=lambda: T0 + TTL + timedelta(minutes=1))
    try:
        assert len(later) == 0
        assert OLD.encode() not in on_disk(path)
    finally:
        later.close()
    assert OLD.encode() not in on_disk(path)


def test_an_expired_entry_is_deleted_by_the_read_that_meets_it(tmp_path):
    path = tmp_path / "status-cache.sqlite3"
    cache = StatusCache(path, ttl_s=TTL.total_seconds())
    try:
        cache.put(OLD, GREEN, T0)
        assert cache.get(OLD, T0 + timedelta(minutes=59)) is not None
        assert cache.get(OLD, T0 + TTL + timedelta(seconds=1)) is None
        assert len(cache) == 0
        assert OLD.encode() not in on_disk(path)  # with the kiosk still running
    finally:
        cache.close()


def test_offline_reads_purge_every_expired_entry_on_a_timer(tmp_path):
    """Only other people are looked up while offline: no put, no read of the old entry."""
    path = tmp_path / "status-cache.sqlite3"
    cache = StatusCache(path, ttl_s=TTL.total_seconds())
    try:
        cache.put(OLD, GREEN, T0)
        cache.put(OTHER, GREEN, T0 + TTL)  # seen online just before the network went
        assert cache.get("c3" * 32, T0 + TTL + timedelta(seconds=PURGE_EVERY_S + 1)) is None
        assert len(cache) == 1 and cache.get(OTHER, T0 + TTL + timedelta(seconds=PURGE_EVERY_S + 1)) is not None
        assert OLD.encode() not in on_disk(path)
        assert OTHER.encode() in on_disk(path)
    finally:
        cache.close()


def test_the_timer_purges_at_most_every_interval(tmp_path, monkeypatch):
    cache = StatusCache(tmp_path / "c.sqlite3", ttl_s=TTL.total_seconds(), wall=lambda: T0)
    purges = []
    real = cache._purge
    monkeypatch.setattr(cache, "_purge", lambda now: purges.append(now) or real(now))
    try:
        start = T0 + TTL
        for i in range(30):  # a check every 5 s for 150 s
            cache.get(OTHER, start + timedelta(seconds=5 * i))
        assert 2 <= len(purges) <= 150 / PURGE_EVERY_S + 1
    finally:
        cache.close()

"""The kiosk as build_kiosk wires it: the uploader runs beside the loop, records reach the service,
one kiosk per state directory, and a status cache is kept only under the `cached` policy."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from sentinel.config import (
    ASSETS,
    DeviceConfig,
    DisplayConfig,
    FakeGateConfig,
    HttpVerifierConfig,
    OutboxConfig,
    PolicyConfig,
    ReplayCameraConfig,
    SentinelConfig,
)
from sentinel.kiosk import build_kiosk, open_status_cache
from sentinel.kiosk_technician import outbox_status_lines
from sentinel.outbox import Outbox
from sentinel.service.seed import DEMO_DEVICE_ID, DEMO_DEVICE_TOKEN, DEMO_SITE
from sentinel.service.server import ReferenceServer
from sentinel.state_lock import StateLockHeld


def config(tmp_path: Path, url: str, offline: str = "deny", *, frames_per_image: int = 12) -> SentinelConfig:
    token = tmp_path / "device-token"
    fd = os.open(token, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(DEMO_DEVICE_TOKEN)
    return SentinelConfig(
        device=DeviceConfig(id=DEMO_DEVICE_ID, site_id=DEMO_SITE.id, site_name=DEMO_SITE.name, language="en", state_dir=tmp_path / "state"),
        camera=ReplayCameraConfig(path=ASSETS / "scenes", fps=40, frames_per_image=frames_per_image, loop=False),
        verifier=HttpVerifierConfig(url=url, token_file=token),
        policy=PolicyConfig(nat_window_h=48, offline=offline),
        gate=FakeGateConfig(pulse_s=0.1),
        display=DisplayConfig(type="none", result_s=0.2),
        outbox=OutboxConfig(retry_initial_s=0.05, retry_max_s=0.2),
    )


def test_the_kiosk_delivers_its_records_while_it_runs(tmp_path):
    with ReferenceServer(tmp_path / "svc.sqlite3", seed="demo") as srv:
        outcomes = []
        # each scene in view for 1 s, not 0.3 s: every person is checked even on a slow machine
        # (an emulated arm64 at load 15 checked 4 of 5 at 0.3 s: the camera is real time)
        kiosk = build_kiosk(config(tmp_path, srv.url, frames_per_image=40), on_outcome=outcomes.append)
        with pytest.raises(StateLockHeld):  # a second kiosk on the same state directory
            build_kiosk(config(tmp_path, srv.url))
        kiosk.run(stop=threading.Event(), until_finished=True, drain_s=5)
        ids = {o.record_id for o in outcomes if o.record_id}
        assert len(ids) == 5  # the demo scenes: five people checked, one promotion QR refused
        left = Outbox(tmp_path / "state" / "outbox.sqlite3")
        waiting = {p["id"] for p in left.pending(100)}
        left.close()
        from sentinel.client import ServiceClient

        c = ServiceClient(srv.url, DEMO_DEVICE_TOKEN, device_id=DEMO_DEVICE_ID, site_id=DEMO_SITE.id)
        stored = {r["id"] for r in c.list_records()}
        c.close()
        assert stored == ids and not waiting  # delivered while running, the rest in the drain at the end
        fields = kiosk.status_fields()
        assert fields["site_name"] == DEMO_SITE.name and isinstance(fields["outbox_depth"], int)
        rows = dict(outbox_status_lines(kiosk, "en"))
        assert "Waiting" in rows
    # the lock went with the kiosk: it can start again
    build_kiosk(config(tmp_path, "http://127.0.0.1:9")).close()


def test_a_stop_does_not_wait_for_a_service_that_is_down(tmp_path):
    import time

    kiosk = build_kiosk(config(tmp_path, "http://127.0.0.1:9"))  # nothing listens there
    started = time.monotonic()
    kiosk.run(stop=threading.Event(), until_finished=True, drain_s=30)
    assert time.monotonic() - started < 15  # the replay, not the 30 s drain
    left = Outbox(tmp_path / "state" / "outbox.sqlite3")
    assert left.health().depth == 5  # offline denials, all kept for the next start
    assert {p["mode"] for p in left.pending()} == {"offline"}


def test_a_status_cache_is_kept_only_under_the_cached_policy(tmp_path):
    cfg = config(tmp_path, "http://127.0.0.1:9", offline="cached")
    cache = open_status_cache(cfg)
    from datetime import UTC, datetime

    from sentinel.health import HealthStatus, Status

    cache.put("a" * 64, HealthStatus(status=Status.GREEN), datetime.now(UTC))
    cache.close()
    path = tmp_path / "state" / "status-cache.sqlite3"
    assert path.exists()
    cache = open_status_cache(config(tmp_path, "http://127.0.0.1:9", offline="deny"))  # the site changed its policy
    assert not path.exists() and len(cache) == 0

"""The heartbeat: its contract (every field, refusals, older firmware still accepted), the real
device client against the real reference service (the ack, the admin view), and the clock offset
the next heartbeat carries."""

from __future__ import annotations

from contextlib import closing
from datetime import timedelta

import pytest
import requests
from pydantic import ValidationError

from sentinel.client import ClientError, clock_offset
from sentinel.contract import Heartbeat, HeartbeatAck
from sentinel.service.seed import DEMO_DEVICE_ID, DEMO_DEVICE_TOKEN
from sentinel.service.server import ReferenceServer
from tests.helpers import T0, WallClock, device_client

ADMIN = "sat_test-admin-token"
TIMEOUT = 10

FULL = {
    "version": "0.1.0",
    "uptime_s": 86400.5,
    "queue_depth": 12,
    "oldest_record_age_s": 310.0,
    "alarms": ["outbox_near_cap", "camera_fault"],
    "camera": "fault",
    "gate": "closed",
    "door": "closed",
    "clock_offset_s": -1.75,
    "last_check_at": "2026-11-25T07:59:30Z",
    "camera_ok": None,
}


def test_full_heartbeat_round_trips():
    beat = Heartbeat.model_validate(FULL)
    assert beat.model_dump(mode="json") == FULL
    assert beat.last_check_at == T0 - timedelta(seconds=30)
    assert Heartbeat.model_validate_json(beat.model_dump_json()) == beat


def test_a_minimal_heartbeat_and_one_from_older_firmware_are_accepted():
    minimal = Heartbeat(version="0.2.0", queue_depth=0)
    assert (minimal.uptime_s, minimal.alarms, minimal.camera, minimal.gate, minimal.door) == (None, [], "unknown", "unknown", None)
    assert (minimal.clock_offset_s, minimal.last_check_at, minimal.camera_ok) == (None, None, None)
    old = Heartbeat.model_validate({"queue_depth": 3, "oldest_record_age_s": 42.5, "camera_ok": True, "version": "0.1.0"})
    assert old.camera_ok is True and old.camera == "unknown"
    no_sensor = Heartbeat(version="0.2.0", queue_depth=0, camera="paused", gate="none", door=None)
    assert no_sensor.model_dump(mode="json")["door"] is None


@pytest.mark.parametrize(
    "change",
    [
        {"alarms": ["Outbox Full"]},
        {"alarms": ["x"] * 33},
        {"camera": "OK"},
        {"gate": ""},
        {"door": "half open"},
        {"uptime_s": -1},
        {"queue_depth": -1},
        {"last_check_at": "2026-11-25T07:59:30"},  # no time zone
        {"clock_offset_s": "soon"},
        {"temperature_c": 48.0},  # unknown field
        {"version": "v" * 65},
    ],
)
def test_heartbeat_refusals(change):
    with pytest.raises(ValidationError):
        Heartbeat.model_validate({**FULL, **change})
    with pytest.raises(ValidationError):
        Heartbeat.model_validate({k: v for k, v in FULL.items() if k not in ("version", "queue_depth")})  # required


def test_clock_offset_is_device_minus_service_at_the_middle_of_the_exchange():
    sent = T0
    answered = T0 + timedelta(seconds=2)
    assert clock_offset(sent, T0 + timedelta(seconds=1), answered) == 0.0
    assert clock_offset(sent, T0 - timedelta(seconds=9), answered) == 10.0  # device ahead
    assert clock_offset(sent, T0 + timedelta(minutes=1, seconds=1), answered) == -60.0  # device behind


# --- real client, real service ---------------------------------------------------------------------

SERVICE_NOW = T0 + timedelta(minutes=3)


@pytest.fixture
def srv(service_db):
    clock = WallClock(SERVICE_NOW)
    with ReferenceServer(service_db, seed="demo", admin_token=ADMIN, clock=clock) as server:
        server.test_clock = clock
        yield server


@pytest.fixture
def client(srv):
    with closing(device_client(srv.url)) as c:
        yield c


def admin_device(srv):
    response = requests.get(f"{srv.url}/admin/devices/{DEMO_DEVICE_ID}", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_heartbeat_is_acknowledged_and_shown_to_the_admin(srv, client):
    assert admin_device(srv)["last_heartbeat_at"] is None and admin_device(srv)["last_heartbeat"] is None
    beat = Heartbeat.model_validate(FULL)
    ack = client.heartbeat(beat)
    assert isinstance(ack, HeartbeatAck) and ack.received_at == SERVICE_NOW
    device = admin_device(srv)
    assert device["last_heartbeat_at"] == "2026-11-25T08:03:00Z"
    assert device["last_heartbeat"] == FULL

    # the next one, a minute later, replaces it; the ack gives the caller the offset to send next
    srv.test_clock.advance(60)
    nxt = beat.model_copy(update={"queue_depth": 0, "oldest_record_age_s": None, "alarms": [], "camera": "ok",
                                  "clock_offset_s": clock_offset(T0 + timedelta(minutes=4), ack.received_at, T0 + timedelta(minutes=4))})
    assert nxt.clock_offset_s == 60.0
    ack2 = client.heartbeat(nxt, timeout_s=5.0)
    assert ack2.received_at == SERVICE_NOW + timedelta(seconds=60)
    device = admin_device(srv)
    assert device["last_heartbeat_at"] == "2026-11-25T08:04:00Z"
    assert device["last_heartbeat"]["camera"] == "ok" and device["last_heartbeat"]["alarms"] == []
    assert device["last_heartbeat"]["clock_offset_s"] == 60.0


def test_a_heartbeat_for_another_device_or_after_revocation_is_refused(srv, tmp_path):
    with closing(device_client(srv.url, device_id="someone-else")) as other, pytest.raises(ClientError) as caught:
        other.heartbeat(Heartbeat(version="0.2.0", queue_depth=0))
    assert caught.value.code == "wrong_device"
    requests.post(f"{srv.url}/admin/devices/{DEMO_DEVICE_ID}/revoke", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=TIMEOUT)
    with closing(device_client(srv.url)) as revoked, pytest.raises(ClientError) as caught:
        revoked.heartbeat(Heartbeat(version="0.2.0", queue_depth=0))
    assert caught.value.code == "token_revoked"
    assert admin_device(srv)["last_heartbeat_at"] is None


def test_a_heartbeat_from_older_firmware_is_still_stored(srv):
    old = {"queue_depth": 3, "oldest_record_age_s": 42.5, "camera_ok": True, "version": "0.1.0"}
    response = requests.post(f"{srv.url}/v1/devices/{DEMO_DEVICE_ID}/heartbeat", json=old,
                             headers={"Authorization": f"Bearer {DEMO_DEVICE_TOKEN}"}, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    shown = admin_device(srv)["last_heartbeat"]
    assert shown["camera_ok"] is True and shown["queue_depth"] == 3 and shown["camera"] == "unknown"

"""Fault injection on a real server: each fault must look to a `requests` client exactly like the
real failure it stands for, and must never touch /admin or /healthz."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime

import pytest
import requests
import uuid6
from pydantic import ValidationError

from sentinel.contract import ApiError
from sentinel.demo_data import demo_person
from sentinel.health import HealthStatus
from sentinel.service.faults import DEFAULT_OVERSIZED_BYTES, FAULT_HEADER, FAULT_TOKEN_HEADER, Faults, FaultSpecError, parse_spec
from sentinel.service.seed import DEMO_DEVICE_ID, DEMO_DEVICE_TOKEN, DEMO_SITE
from sentinel.service.server import ReferenceServer

ADMIN = "sat_test-admin-token"
TIMEOUT = 10
GREEN = demo_person("green").token


@pytest.fixture
def srv(service_db):
    with ReferenceServer(service_db, seed="demo", admin_token=ADMIN, rng=random.Random(1234), fault_injection=True) as server:
        yield server


def verify(srv, fault: str | None = None, timeout: float = TIMEOUT):
    headers = {"Authorization": f"Bearer {DEMO_DEVICE_TOKEN}", **({FAULT_HEADER: fault, FAULT_TOKEN_HEADER: ADMIN} if fault is not None else {})}
    body = {"device_id": DEMO_DEVICE_ID, "site_id": DEMO_SITE.id, "credential": {"kind": "health_code", "value": GREEN},
            "scanned_at": datetime.now(UTC).isoformat()}  # fmt: skip
    return requests.post(f"{srv.url}/v1/verify", json=body, headers=headers, timeout=timeout)


def upload(srv, records, fault: str | None = None):
    headers = {"Authorization": f"Bearer {DEMO_DEVICE_TOKEN}", **({FAULT_HEADER: fault, FAULT_TOKEN_HEADER: ADMIN} if fault is not None else {})}
    return requests.post(f"{srv.url}/v1/records", json={"records": records}, headers=headers, timeout=TIMEOUT)


def a_record():
    return {"id": str(uuid6.uuid7()), "created_at": datetime.now(UTC).isoformat(), "device_id": DEMO_DEVICE_ID,
            "site_id": DEMO_SITE.id, "credential_kind": "health_code", "credential_hash": "0f" * 32, "person": None,
            "status": "timeout", "verdict": "deny", "reason": "offline_deny", "mode": "offline"}  # fmt: skip


def stored_ids(srv):
    page = requests.get(f"{srv.url}/v1/records", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=TIMEOUT).json()
    return [r["id"] for r in page["records"]]


def set_faults(srv, **faults):
    response = requests.put(f"{srv.url}/admin/faults", json=faults, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=TIMEOUT)
    assert response.status_code == 200, response.text


# the header's grammar --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("latency=2.5", (False, {"latency_s": "2.5"})),
        ("status=503", (False, {"status": "503"})),
        ("garbage", (False, {"garbage": True})),
        ("oversized", (False, {"oversized_bytes": DEFAULT_OVERSIZED_BYTES})),
        ("oversized=1000", (False, {"oversized_bytes": "1000"})),
        (" Drop ; error_rate=0.3 ;", (False, {"drop": True, "error_rate": "0.3"})),
        ("none", (True, {})),
        ("none; latency=1", (True, {"latency_s": "1"})),
        ("", (False, {})),
    ],
)
def test_parse_spec(spec, expected):
    assert parse_spec(spec) == expected


@pytest.mark.parametrize("spec", ["explode", "latency", "latency=abc", "latency=-1", "status=200", "status=5o3", "error_rate=2", "none=1"])
def test_parse_spec_rejects(spec):
    with pytest.raises(FaultSpecError):
        parse_spec(spec)


def test_bad_fault_header_is_a_clear_error(srv):
    response = verify(srv, "latency=soon")
    assert response.status_code == 400
    assert ApiError.model_validate(response.json()).error == "bad_fault_header"
    assert "latency" in response.json()["message"]


# each fault, seen from a client ----------------------------------------------------------------


def test_latency_delays_the_answer(srv):
    start = time.monotonic()
    response = verify(srv, "latency=0.6")
    assert time.monotonic() - start >= 0.6
    assert HealthStatus.model_validate(response.json()).status == "green"


def test_latency_past_the_client_deadline_is_a_timeout(srv):
    with pytest.raises(requests.Timeout):
        verify(srv, "latency=1", timeout=0.3)


def test_latency_does_not_hold_up_other_requests(srv):
    done = []
    slow = threading.Thread(target=lambda: done.append(("slow", verify(srv, "latency=3").status_code)))
    slow.start()
    time.sleep(0.1)
    try:
        assert requests.get(f"{srv.url}/healthz", timeout=TIMEOUT).status_code == 200
        assert verify(srv).json()["status"] == "green"
        done.append(("fast", 200))
    finally:
        slow.join()
    assert done == [("fast", 200), ("slow", 200)]  # answered while the slow one was still waiting


def test_fixed_status(srv):
    response = verify(srv, "status=503")
    assert response.status_code == 503
    assert ApiError.model_validate(response.json()).error == "injected_fault"


def test_a_refused_upload_stores_nothing(srv):
    one = a_record()
    assert upload(srv, [one], "status=503").status_code == 503
    assert stored_ids(srv) == []


def test_garbage_body(srv):
    response = verify(srv, "garbage")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    with pytest.raises(requests.JSONDecodeError):
        response.json()


def test_oversized_body(srv):
    response = verify(srv, "oversized")
    assert response.status_code == 200
    assert len(response.content) >= DEFAULT_OVERSIZED_BYTES
    assert response.json()["status"] == "green"  # well-formed, just far too big …
    with pytest.raises(ValidationError):
        HealthStatus.model_validate_json(response.content)  # … and not the contract
    assert 1000 <= len(verify(srv, "oversized=1000").content) < 2000


def test_dropped_connection_is_a_connection_error(srv, caplog):
    with pytest.raises((requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        verify(srv, "drop")
    assert verify(srv).json()["status"] == "green"  # the server is fine afterwards
    assert "Exception in ASGI application" not in caplog.text


def test_a_dropped_upload_was_stored_and_the_retry_is_acknowledged(srv):
    batch = [a_record(), a_record()]
    with pytest.raises((requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        upload(srv, batch, "drop")
    assert stored_ids(srv) == sorted(r["id"] for r in batch)  # stored, but the device never heard
    assert upload(srv, batch).json()["accepted"] == [r["id"] for r in batch]
    assert stored_ids(srv) == sorted(r["id"] for r in batch)


def test_error_rate(srv):
    assert all(verify(srv, "error_rate=1").status_code == 500 for _ in range(5))
    assert all(verify(srv, "error_rate=0").status_code == 200 for _ in range(5))
    codes = [verify(srv, "error_rate=0.5").status_code for _ in range(40)]
    assert set(codes) == {200, 500}
    assert 8 <= codes.count(500) <= 32


def test_several_faults_at_once(srv):
    start = time.monotonic()
    response = verify(srv, "latency=0.3;status=502")
    assert response.status_code == 502 and time.monotonic() - start >= 0.3


# server-wide faults ----------------------------------------------------------------------------


def test_server_faults_hit_v1_but_never_admin_or_healthz(srv):
    set_faults(srv, status=503, latency_s=2.0)
    start = time.monotonic()
    assert verify(srv).status_code == 503
    assert time.monotonic() - start >= 2.0
    start = time.monotonic()
    assert requests.get(f"{srv.url}/healthz", timeout=TIMEOUT).status_code == 200
    current = requests.get(f"{srv.url}/admin/faults", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=TIMEOUT)
    assert time.monotonic() - start < 2.0  # neither waited out the injected latency
    assert Faults.model_validate(current.json()) == Faults(status=503, latency_s=2.0)

    assert verify(srv, "none").status_code == 200  # one request without the server's faults
    assert verify(srv, "status=418").status_code == 418  # the header overrides the server

    set_faults(srv)
    assert verify(srv).status_code == 200


def test_fault_header_is_ignored_outside_v1(srv):
    for fault in ("drop", "status=503", "garbage", "latency=abc"):
        assert requests.get(f"{srv.url}/healthz", headers={FAULT_HEADER: fault}, timeout=TIMEOUT).json()["status"] == "ok"
        response = requests.get(
            f"{srv.url}/admin/people/demo-green", headers={"Authorization": f"Bearer {ADMIN}", FAULT_HEADER: fault}, timeout=TIMEOUT
        )
        assert response.status_code == 200 and response.json()["colour"] == "green"


def test_bad_server_faults_are_refused(srv):
    response = requests.put(f"{srv.url}/admin/faults", json={"error_rate": 3}, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=TIMEOUT)
    assert response.status_code == 422 and response.json()["error"] == "bad_request"


def test_faults_given_at_start(tmp_path):
    with ReferenceServer(tmp_path / "s.db", seed="demo", admin_token=ADMIN, faults=Faults(status=500), fault_injection=True) as server:
        assert verify(server).status_code == 500
        assert requests.get(f"{server.url}/healthz", timeout=TIMEOUT).status_code == 200

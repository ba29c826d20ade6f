"""Attacks on the reference service, each reproduced against a real server on loopback (or the
`sentinel service` process), from the issue "Nothing leaks, nobody gets in"."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import uuid6

from sentinel.service.limits import Limits, LimitSettings
from sentinel.service.seed import DEMO_DEVICE_ID, DEMO_DEVICE_TOKEN, DEMO_SITE
from sentinel.service.server import ReferenceServer

REPO = Path(__file__).resolve().parents[1]


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_device_revokes_its_own_token_idempotently(service_db, tmp_path):
    with ReferenceServer(service_db, seed="demo") as srv:
        url = f"{srv.url}/v1/devices/{DEMO_DEVICE_ID}/revoke"
        first = requests.post(url, headers=_auth(DEMO_DEVICE_TOKEN), timeout=5)
        assert first.status_code == 200 and first.json() == {"revoked": True}
        again = requests.post(url, headers=_auth(DEMO_DEVICE_TOKEN), timeout=5)
        assert again.status_code == 200 and again.json() == {"revoked": True}
        hb = requests.post(f"{srv.url}/v1/devices/{DEMO_DEVICE_ID}/heartbeat", headers=_auth(DEMO_DEVICE_TOKEN),
                           json={"version": "0", "queue_depth": 0}, timeout=5)  # fmt: skip
        assert hb.status_code == 401 and hb.json()["error"] == "token_revoked"
        assert requests.post(url, headers=_auth("sdt_nope"), timeout=5).status_code == 401
        assert requests.post(url, headers=_auth(srv.admin_token), timeout=5).status_code == 403


def test_device_cannot_revoke_another_device(service_db, tmp_path):
    with ReferenceServer(service_db, seed="demo") as srv:
        r = requests.post(f"{srv.url}/v1/devices/other-device/revoke", headers=_auth(DEMO_DEVICE_TOKEN), timeout=5)
        assert r.status_code == 403 and r.json()["error"] == "wrong_device"


# helpers ---------------------------------------------------------------------------------------


def _admin(srv, method, path, **kwargs):
    return requests.request(method, f"{srv.url}{path}", headers=_auth(srv.admin_token), timeout=5, **kwargs)


def _record(device_id=DEMO_DEVICE_ID, site_id=DEMO_SITE.id, person=None):
    now = datetime.now(UTC)
    body = {"id": str(uuid6.uuid7()), "created_at": now.isoformat(), "device_id": device_id, "site_id": site_id,
            "credential_kind": "health_code", "credential_hash": "a" * 64, "status": "green", "verdict": "pass",
            "reason": "ok", "mode": "online"}  # fmt: skip
    if person is not None:
        body["person"] = person
    return body


def _bind(srv, code, device_id):
    return requests.post(f"{srv.url}/v1/devices/bind", json={"code": code, "device_id": device_id}, timeout=5)


def _code(srv, site_id=DEMO_SITE.id):
    return _admin(srv, "POST", f"/admin/sites/{site_id}/binding-codes").json()["code"]


def _verify(srv, token, kind, value, device_id=DEMO_DEVICE_ID, site_id=DEMO_SITE.id):
    body = {"device_id": device_id, "site_id": site_id, "credential": {"kind": kind, "value": value},
            "scanned_at": datetime.now(UTC).isoformat()}  # fmt: skip
    return requests.post(f"{srv.url}/v1/verify", json=body, headers=_auth(token), timeout=5)


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# 1. re-binding -----------------------------------------------------------------------------------


def test_a_code_of_another_site_cannot_take_over_a_device_id(service_db, tmp_path):
    with ReferenceServer(service_db, seed="demo") as srv:
        mine = _record()
        assert requests.post(f"{srv.url}/v1/records", json={"records": [mine]}, headers=_auth(DEMO_DEVICE_TOKEN), timeout=5).json()["accepted"] == [mine["id"]]
        _admin(srv, "POST", "/admin/sites", json={"id": "evil-site", "name": "Evil", "address": ""})
        stolen = _bind(srv, _code(srv, "evil-site"), DEMO_DEVICE_ID)
        assert stolen.status_code == 409 and stolen.json()["error"] == "device_exists"
        same_site = _bind(srv, _code(srv), DEMO_DEVICE_ID)  # a code of the device's own site: no either
        assert same_site.status_code == 409
        # the victim's token still works and the device still belongs to its site
        assert _admin(srv, "GET", f"/admin/devices/{DEMO_DEVICE_ID}").json()["site_id"] == DEMO_SITE.id
        assert _verify(srv, DEMO_DEVICE_TOKEN, "health_code", "x").status_code == 200


def test_rebinding_does_not_lift_a_revocation_without_the_admin(service_db, tmp_path):
    with ReferenceServer(service_db, seed="demo") as srv:
        _admin(srv, "POST", f"/admin/devices/{DEMO_DEVICE_ID}/revoke")
        refused = _bind(srv, _code(srv), DEMO_DEVICE_ID)
        assert refused.status_code == 409
        assert _admin(srv, "GET", f"/admin/devices/{DEMO_DEVICE_ID}").json()["revoked"] is True


def test_an_admin_allowed_rebinding_sees_none_of_the_old_records(service_db, tmp_path):
    with ReferenceServer(service_db, seed="demo") as srv:
        old = _record()
        requests.post(f"{srv.url}/v1/records", json={"records": [old]}, headers=_auth(DEMO_DEVICE_TOKEN), timeout=5)
        _admin(srv, "POST", "/admin/sites", json={"id": "site-b", "name": "B", "address": ""})
        wrong = _admin(srv, "POST", f"/admin/devices/{DEMO_DEVICE_ID}/rebind-allowed", json={"site_id": "site-b"})
        assert wrong.json()["rebind_site_id"] == "site-b"
        assert _bind(srv, _code(srv), DEMO_DEVICE_ID).json()["error"] == "wrong_site"  # only site-b's code
        bound = _bind(srv, _code(srv, "site-b"), DEMO_DEVICE_ID)
        assert bound.status_code == 200, bound.text
        new_token = bound.json()["token"]
        listed = requests.get(f"{srv.url}/v1/records", headers=_auth(new_token), timeout=5).json()["records"]
        assert listed == []
        # the admin still sees everything
        assert [r["id"] for r in _admin(srv, "GET", "/v1/records").json()["records"]] == [old["id"]]
        assert _bind(srv, _code(srv, "site-b"), DEMO_DEVICE_ID).status_code == 409  # the leave was for one binding


# 2. chunked bodies -------------------------------------------------------------------------------


def test_a_chunked_body_over_the_limit_is_refused_while_streaming(tmp_path):
    with ReferenceServer(tmp_path / "svc.db", seed="demo") as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
            sock.sendall(
                b"POST /v1/records HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"Authorization: Bearer {DEMO_DEVICE_TOKEN}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
            )
            chunk = b"x" * 65536
            sent = 0
            try:
                while sent < 3 * 1024 * 1024:  # 3 MiB, over the 2 MiB limit
                    sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                    sent += len(chunk)
            except OSError:
                pass  # the server may close on us once it has answered
            answer = b""
            while b"\r\n\r\n" not in answer:
                part = sock.recv(65536)
                if not part:
                    break
                answer += part
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert _verify(srv, DEMO_DEVICE_TOKEN, "health_code", "x").status_code == 200  # still serving


# 3. fault injection ------------------------------------------------------------------------------


def test_faults_are_off_unless_enabled(tmp_path):
    with ReferenceServer(tmp_path / "svc.db", seed="demo") as srv:
        headers = {**_auth(DEMO_DEVICE_TOKEN), "X-Sentinel-Fault": "status=503", "X-Sentinel-Fault-Token": srv.admin_token}
        body = {"device_id": DEMO_DEVICE_ID, "site_id": DEMO_SITE.id, "credential": {"kind": "health_code", "value": "x"},
                "scanned_at": datetime.now(UTC).isoformat()}  # fmt: skip
        assert requests.post(f"{srv.url}/v1/verify", json=body, headers=headers, timeout=5).status_code == 200
        refused = _admin(srv, "PUT", "/admin/faults", json={"status": 503})
        assert refused.status_code == 403 and refused.json()["error"] == "faults_disabled"


def test_a_device_token_cannot_inject_faults(tmp_path):
    with ReferenceServer(tmp_path / "svc.db", seed="demo", fault_injection=True) as srv:
        body = {"device_id": DEMO_DEVICE_ID, "site_id": DEMO_SITE.id, "credential": {"kind": "health_code", "value": "x"},
                "scanned_at": datetime.now(UTC).isoformat()}  # fmt: skip
        device_only = {**_auth(DEMO_DEVICE_TOKEN), "X-Sentinel-Fault": "status=503"}
        assert requests.post(f"{srv.url}/v1/verify", json=body, headers=device_only, timeout=5).status_code == 200
        with_admin = {**device_only, "X-Sentinel-Fault-Token": srv.admin_token}
        assert requests.post(f"{srv.url}/v1/verify", json=body, headers=with_admin, timeout=5).status_code == 503


def test_the_cli_refuses_faults_without_the_flag(tmp_path):
    result = subprocess.run([sys.executable, "-m", "sentinel", "service", "--port", "0", "--db", str(tmp_path / "s.db"), "--error-rate", "0.5"],
                            cwd=REPO, capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    assert result.returncode == 2 and "--allow-fault-injection" in result.stderr


# 4. rate limits, lockout, gallery ----------------------------------------------------------------


def test_guessing_binding_codes_is_locked_out(service_db, tmp_path, caplog):
    clock = FakeMonotonic()
    with ReferenceServer(service_db, seed="demo", limits=Limits(clock=clock)) as srv:
        answers = [_bind(srv, f"GUESS-{i:05d}", f"d{i}") for i in range(30)]
        statuses = [a.status_code for a in answers]
        assert statuses[:10] == [400] * 10 and set(statuses[10:]) == {429}
        assert int(answers[-1].headers["Retry-After"]) > 60
        # locked out even with a real code, until the lockout passes
        code = _code(srv)
        assert _bind(srv, code, "real-device").status_code == 429
        clock.now += LimitSettings().bind_lockout_s + 1
        assert _bind(srv, code, "real-device").status_code == 200
    assert "bind failed from 127.0.0.1" in caplog.text and "GUESS" not in caplog.text


def test_guessing_id_numbers_is_rate_limited(service_db, tmp_path, caplog):
    clock = FakeMonotonic()
    with ReferenceServer(service_db, seed="demo", limits=Limits(clock=clock)) as srv:
        answers = [_verify(srv, DEMO_DEVICE_TOKEN, "id_number", f"3101011990010{i:05d}") for i in range(40)]
        statuses = [a.status_code for a in answers]
        assert statuses[:30] == [200] * 30 and set(statuses[30:]) == {429}
        assert "Retry-After" in answers[-1].headers
        # health codes (not guessable) still work meanwhile: a busy gate is not stopped
        assert _verify(srv, DEMO_DEVICE_TOKEN, "health_code", "x").status_code == 200
        clock.now += 60
        assert _verify(srv, DEMO_DEVICE_TOKEN, "id_number", "310101199001010000").status_code == 200
    assert "verify not_found device=demo-device kind=id_number" in caplog.text
    assert "3101011990010" not in caplog.text


def test_many_verifies_of_known_codes_are_not_limited(service_db, tmp_path):
    from sentinel.demo_data import DEMO_PEOPLE

    with ReferenceServer(service_db, seed="demo") as srv:
        session = requests.Session()
        body = {"device_id": DEMO_DEVICE_ID, "site_id": DEMO_SITE.id, "credential": {"kind": "health_code", "value": DEMO_PEOPLE[0].token},
                "scanned_at": datetime.now(UTC).isoformat()}  # fmt: skip
        codes = {session.post(f"{srv.url}/v1/verify", json=body, headers=_auth(DEMO_DEVICE_TOKEN), timeout=5).status_code for _ in range(300)}
        assert codes == {200}


def test_unknown_tokens_are_rate_limited_per_address(service_db, tmp_path):
    with ReferenceServer(service_db, seed="demo", limits=Limits(clock=FakeMonotonic())) as srv:
        codes = [_verify(srv, f"sdt_guess{i}", "health_code", "x").status_code for i in range(40)]
        assert codes[:30] == [401] * 30 and set(codes[30:]) == {429}


def test_a_face_id_outside_the_site_gallery_is_not_found(service_db, tmp_path):
    with ReferenceServer(service_db, seed="demo") as srv:
        _admin(srv, "POST", "/admin/sites", json={"id": "elsewhere", "name": "E", "address": ""})
        _admin(srv, "POST", "/admin/people", json={"person_id": "far", "name": "王小明", "colour": "green", "face_id": "face-far",
                                                   "face_site_id": "elsewhere"})  # fmt: skip
        answer = _verify(srv, DEMO_DEVICE_TOKEN, "face", "face-far").json()
        assert answer["status"] == "not_found" and answer.get("person") is None


# 5. data at rest ---------------------------------------------------------------------------------


def test_database_files_are_owner_only(tmp_path):
    old = os.umask(0o022)
    try:
        with ReferenceServer(tmp_path / "svc.db", seed="demo") as srv:
            requests.post(f"{srv.url}/v1/records", json={"records": [_record()]}, headers=_auth(DEMO_DEVICE_TOKEN), timeout=5)
            for name in ("svc.db", "svc.db-wal", "svc.db-shm"):
                path = tmp_path / name
                if path.exists():
                    assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
    finally:
        os.umask(old)


def test_an_existing_world_readable_database_is_made_owner_only(tmp_path):
    db = tmp_path / "svc.db"
    db.touch(mode=0o644)
    db.chmod(0o644)
    with ReferenceServer(db, seed="demo"):
        assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_records_past_retention_are_purged(service_db, tmp_path):
    now = [datetime.now(UTC) - timedelta(days=40)]
    with ReferenceServer(service_db, seed="demo", clock=lambda: now[0], retention=timedelta(days=28)) as srv:
        old = _record()
        requests.post(f"{srv.url}/v1/records", json={"records": [old]}, headers=_auth(DEMO_DEVICE_TOKEN), timeout=5)
    now[0] = datetime.now(UTC)
    with ReferenceServer(service_db, seed="demo", clock=lambda: now[0], retention=timedelta(days=28)) as srv:
        assert _admin(srv, "GET", "/v1/records").json()["records"] == []  # purged on start
        fresh = _record()
        requests.post(f"{srv.url}/v1/records", json={"records": [fresh]}, headers=_auth(DEMO_DEVICE_TOKEN), timeout=5)
        now[0] += timedelta(days=29)  # and periodically, while it runs
        requests.post(f"{srv.url}/v1/records", json={"records": []}, headers=_auth(DEMO_DEVICE_TOKEN), timeout=5)
        assert _admin(srv, "GET", "/v1/records").json()["records"] == []


def test_unmasked_identity_in_a_record_is_refused(service_db, tmp_path):
    with ReferenceServer(service_db, seed="demo") as srv:
        full = _record(person={"name_masked": "王小明", "id_masked": "3101**********1234"})
        full_id = _record(person={"name_masked": "王*明", "id_masked": "310101199001011234"})
        masked = _record(person={"name_masked": "王*明", "id_masked": "3101**********1234"})
        answer = requests.post(f"{srv.url}/v1/records", json={"records": [full, full_id, masked]}, headers=_auth(DEMO_DEVICE_TOKEN), timeout=5).json()
        assert answer["accepted"] == [masked["id"]]
        assert {r["id"]: r["error"] for r in answer["rejected"]} == {full["id"]: "not_masked", full_id["id"]: "not_masked"}


def test_a_world_readable_admin_token_file_is_refused(tmp_path):
    token_file = tmp_path / "admin-token"
    token_file.write_text("sat_world-readable\n")
    token_file.chmod(0o644)
    result = subprocess.run([sys.executable, "-m", "sentinel", "service", "--port", "0", "--db", str(tmp_path / "s.db"),
                             "--admin-token-file", str(token_file)], cwd=REPO, capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    assert result.returncode == 2 and "chmod 600" in result.stderr
    assert "sat_world-readable" not in result.stdout + result.stderr


# 6. TLS ------------------------------------------------------------------------------------------


def test_plain_http_beyond_loopback_is_refused(tmp_path):
    result = subprocess.run([sys.executable, "-m", "sentinel", "service", "--host", "0.0.0.0", "--port", "0", "--db", str(tmp_path / "s.db")],
                            cwd=REPO, capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    assert result.returncode == 2 and "--behind-tls-proxy" in result.stderr


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make a test certificate")
def test_https_with_a_certificate(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=60)  # fmt: skip
    with ReferenceServer(tmp_path / "svc.db", seed="demo", certfile=cert, keyfile=key) as srv:
        assert srv.url.startswith("https://")
        assert requests.get(f"{srv.url}/healthz", verify=str(cert), timeout=5).json()["status"] == "ok"
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(srv.url.replace("https://", "http://") + "/healthz", timeout=5)

"""The reference health-status service over real HTTP on loopback: what a device sees.

Every test gets its own server and database (port 0, tmp_path), seeded with the demo world.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
import requests
import uuid6

from sentinel.contract import ApiError, BindResponse, FaceGallery, HeartbeatAck, RecordsAccepted, RecordsPage
from sentinel.demo_data import DEMO_PEOPLE, demo_person
from sentinel.health import HealthStatus
from sentinel.service.app import MAX_BODY_BYTES
from sentinel.service.seed import (
    DEMO_BINDING_CODE,
    DEMO_DEVICE_ID,
    DEMO_DEVICE_TOKEN,
    DEMO_EXPIRED_PERSON,
    DEMO_SITE,
    demo_face_id,
)
from sentinel.service.server import ReferenceServer

ADMIN = "sat_test-admin-token"
TIMEOUT = 10


@pytest.fixture
def srv(service_db):
    with ReferenceServer(service_db, seed="demo", admin_token=ADMIN) as server:
        yield server


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def verify(srv, kind, value, *, token=DEMO_DEVICE_TOKEN, device_id=DEMO_DEVICE_ID, site_id=DEMO_SITE.id, headers=None):
    body = {
        "device_id": device_id,
        "site_id": site_id,
        "credential": {"kind": kind, "value": value},
        "scanned_at": datetime.now(UTC).isoformat(),
    }
    return requests.post(f"{srv.url}/v1/verify", json=body, headers={**bearer(token), **(headers or {})}, timeout=TIMEOUT)


def admin(srv, method, path, **kwargs):
    return requests.request(method, f"{srv.url}{path}", headers=bearer(ADMIN), timeout=TIMEOUT, **kwargs)


def assert_error(response, status, error):
    assert response.status_code == status, response.text
    body = ApiError.model_validate(response.json())
    assert body.error == error
    return body


def record(device_id=DEMO_DEVICE_ID, site_id=DEMO_SITE.id, **overrides):
    return {
        "id": str(uuid6.uuid7()),
        "created_at": datetime.now(UTC).isoformat(),
        "device_id": device_id,
        "site_id": site_id,
        "credential_kind": "health_code",
        "credential_hash": "ab" * 32,
        "person": {"name_masked": "王*明", "id_masked": "1101**********002X"},
        "status": "green",
        "verdict": "pass",
        "reason": "ok",
        "mode": "online",
        "extra": {"verify_ms": 120},
        **overrides,
    }


def upload(srv, records, token=DEMO_DEVICE_TOKEN):
    return requests.post(f"{srv.url}/v1/records", json={"records": records}, headers=bearer(token), timeout=TIMEOUT)


def bind_new_device(srv, device_id, site_id="other-site"):
    """A second device on a second site, made the way a technician does it."""
    if requests.get(f"{srv.url}/admin/devices/{device_id}", headers=bearer(ADMIN), timeout=TIMEOUT).status_code == 404:
        admin(srv, "POST", "/admin/sites", json={"id": site_id, "name": "Other site", "address": "2 Other Road"})
    code = admin(srv, "POST", f"/admin/sites/{site_id}/binding-codes").json()["code"]
    answer = requests.post(f"{srv.url}/v1/devices/bind", json={"code": code, "device_id": device_id}, timeout=TIMEOUT)
    assert answer.status_code == 200, answer.text
    return BindResponse.model_validate(answer.json()).token


# verify ----------------------------------------------------------------------------------------

EXPECTED_MASKS = {
    "green": ("王*明", "1101**********002X"),
    "yellow": ("李*", "3101**********1234"),
    "red": ("张*", "4403**********0011"),
    "stale_nat": ("陈*", "3201**********0024"),
}


@pytest.mark.parametrize("person", DEMO_PEOPLE, ids=lambda p: p.key)
def test_verify_each_demo_person(srv, person):
    before = datetime.now(UTC)
    response = verify(srv, "health_code", person.token)
    assert response.status_code == 200, response.text
    status = HealthStatus.model_validate(response.json())
    assert status.status == person.colour
    assert (status.person.name_masked, status.person.id_masked) == EXPECTED_MASKS[person.key]
    assert person.name not in response.text and person.id_number not in response.text
    assert status.nat.result == person.nat_result
    nat_age = before - status.nat.sampled_at
    assert abs(nat_age - timedelta(hours=person.nat_hours_ago)) < timedelta(minutes=1)
    assert status.antigen == person.antigen
    assert status.vaccination.doses == person.doses
    assert before - timedelta(seconds=1) <= status.checked_at <= datetime.now(UTC) + timedelta(seconds=1)


def test_verify_by_id_number_and_by_face(srv):
    green = demo_person("green")
    by_id = HealthStatus.model_validate(verify(srv, "id_number", green.id_number.lower()).json())
    assert by_id.status == "green" and by_id.person.id_masked == "1101**********002X"
    by_face = HealthStatus.model_validate(verify(srv, "face", demo_face_id(demo_person("red"))).json())
    assert by_face.status == "red"


def test_unknown_credential_is_not_found_without_person(srv):
    for kind, value in (("health_code", "NOPE0000NOPE0000"), ("id_number", "310101199001019999"), ("face", "nobody")):
        response = verify(srv, kind, value)
        assert response.status_code == 200
        status = HealthStatus.model_validate(response.json())
        assert status.status == "not_found" and status.person is None and status.checked_at is not None


def test_expired_health_code_is_expired_but_the_id_card_still_answers(srv):
    status = HealthStatus.model_validate(verify(srv, "health_code", DEMO_EXPIRED_PERSON.token).json())
    assert status.status == "expired" and status.person is None
    by_id = HealthStatus.model_validate(verify(srv, "id_number", DEMO_EXPIRED_PERSON.id_number).json())
    assert by_id.status == DEMO_EXPIRED_PERSON.colour


@pytest.mark.parametrize(
    "value",
    [
        "' OR '1'='1",
        "x'; DROP TABLE people; --",
        '"; DELETE FROM records WHERE "1"="1',
        "G7kP2mQ9xW4tR8vL' --",
        "%_%",
        "\\'\\\"`;;;",
    ],
)
def test_hostile_credential_values_are_just_not_found(srv, value):
    for kind in ("health_code", "id_number", "face"):
        response = verify(srv, kind, value)
        assert response.status_code == 200
        assert response.json()["status"] == "not_found"
    assert verify(srv, "health_code", demo_person("green").token).json()["status"] == "green"


def test_verify_answers_well_inside_the_device_deadline(srv):
    verify(srv, "health_code", demo_person("green").token)  # warm the connection pool path
    start = datetime.now(UTC)
    verify(srv, "health_code", demo_person("green").token)
    assert datetime.now(UTC) - start < timedelta(seconds=1)


# auth and bad requests -------------------------------------------------------------------------


def test_missing_and_unknown_tokens_are_unauthorized(srv):
    body = {"device_id": DEMO_DEVICE_ID, "site_id": DEMO_SITE.id, "credential": {"kind": "health_code", "value": "x"},
            "scanned_at": datetime.now(UTC).isoformat()}  # fmt: skip
    no_header = requests.post(f"{srv.url}/v1/verify", json=body, timeout=TIMEOUT)
    assert_error(no_header, 401, "unauthorized")
    assert no_header.headers["WWW-Authenticate"] == "Bearer"
    basic = requests.post(f"{srv.url}/v1/verify", json=body, headers={"Authorization": "Basic abc"}, timeout=TIMEOUT)
    assert_error(basic, 401, "unauthorized")
    assert_error(verify(srv, "health_code", "x", token="sdt_not-a-real-token"), 401, "unauthorized")


def test_revoked_token_is_distinct_from_unauthorized(srv):
    revoked = admin(srv, "POST", f"/admin/devices/{DEMO_DEVICE_ID}/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked"] is True
    assert_error(verify(srv, "health_code", demo_person("green").token), 401, "token_revoked")
    assert_error(upload(srv, [record()]), 401, "token_revoked")
    assert_error(admin(srv, "POST", "/admin/devices/no-such-device/revoke"), 404, "unknown_device")


def test_wrong_site_and_wrong_device(srv):
    assert_error(verify(srv, "health_code", "x", site_id="someone-elses-site"), 403, "wrong_site")
    assert_error(verify(srv, "health_code", "x", device_id="another-device"), 403, "wrong_device")


def test_admin_token_is_not_a_device(srv):
    assert_error(verify(srv, "health_code", "x", token=ADMIN), 403, "device_only")


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ({"device_id": DEMO_DEVICE_ID, "site_id": DEMO_SITE.id, "credential": {"kind": "health_code", "value": "x"}}, "scanned_at"),
        ({"device_id": DEMO_DEVICE_ID, "site_id": DEMO_SITE.id, "credential": {"kind": "qr", "value": "x"},
          "scanned_at": "2022-05-01T08:00:00+08:00"}, "credential.kind"),  # fmt: skip
        ({"device_id": DEMO_DEVICE_ID, "site_id": DEMO_SITE.id, "credential": {"kind": "health_code", "value": "x"},
          "scanned_at": "2022-05-01T08:00:00"}, "scanned_at"),  # fmt: skip
        ({"device_id": DEMO_DEVICE_ID, "site_id": DEMO_SITE.id, "credential": {"kind": "health_code", "value": "x"},
          "scanned_at": "2022-05-01T08:00:00Z", "debug": True}, "debug"),  # fmt: skip
        ([1, 2, 3], "body"),
    ],
)
def test_malformed_verify_is_bad_request_with_a_clear_message(srv, body, mentions):
    response = requests.post(f"{srv.url}/v1/verify", json=body, headers=bearer(DEMO_DEVICE_TOKEN), timeout=TIMEOUT)
    error = assert_error(response, 422, "bad_request")
    assert mentions in error.message


def test_bad_request_never_echoes_the_credential(srv):
    secret = "SECRETTOKEN" * 50  # 550 characters: over the limit
    error = assert_error(verify(srv, "health_code", secret), 422, "bad_request")
    assert "credential.value" in error.message and "SECRETTOKEN" not in error.message


def test_non_json_body_is_bad_request(srv):
    response = requests.post(
        f"{srv.url}/v1/verify",
        data=b"{not json",
        headers={**bearer(DEMO_DEVICE_TOKEN), "Content-Type": "application/json"},
        timeout=TIMEOUT,
    )
    assert_error(response, 422, "bad_request")


def test_huge_bodies_are_refused_before_reading(srv):
    response = requests.post(f"{srv.url}/v1/records", data=b"x" * (MAX_BODY_BYTES + 1), headers=bearer(DEMO_DEVICE_TOKEN), timeout=TIMEOUT)
    assert_error(response, 413, "too_large")


def test_unknown_path_is_an_api_error(srv):
    assert_error(requests.get(f"{srv.url}/v2/verify", timeout=TIMEOUT), 404, "not_found")
    assert_error(requests.get(f"{srv.url}/v1/verify", timeout=TIMEOUT), 405, "method_not_allowed")


# records ---------------------------------------------------------------------------------------


def test_records_upload_is_idempotent(srv):
    batch = [record(), record(status="red", verdict="deny", reason="red_code"), record(mode="offline", status="timeout")]
    ids = [r["id"] for r in batch]
    for _attempt in range(2):
        response = upload(srv, batch)
        assert response.status_code == 200, response.text
        answer = RecordsAccepted.model_validate(response.json())
        assert answer.accepted == ids and answer.rejected == []
    page = RecordsPage.model_validate(
        requests.get(f"{srv.url}/v1/records", headers=bearer(DEMO_DEVICE_TOKEN), timeout=TIMEOUT).json()
    )
    assert [r.id for r in page.records] == sorted(ids)
    stored = {r.id: r for r in page.records}
    for sent in batch:
        got = stored[sent["id"]].model_dump(mode="json", exclude={"received_at"})
        assert got["status"] == sent["status"] and got["credential_hash"] == sent["credential_hash"]
        assert datetime.fromisoformat(got["created_at"]) == datetime.fromisoformat(sent["created_at"])


def test_duplicate_ids_within_a_batch_are_stored_once(srv):
    one = record()
    answer = upload(srv, [one, one]).json()
    assert answer["accepted"] == [one["id"]]
    admin_page = admin(srv, "GET", "/v1/records").json()
    assert [r["id"] for r in admin_page["records"]] == [one["id"]]


def test_records_for_another_site_or_device_are_rejected_one_by_one(srv):
    good, other_site, other_device = record(), record(site_id="other-site"), record(device_id="other-device")
    answer = RecordsAccepted.model_validate(upload(srv, [good, other_site, other_device]).json())
    assert answer.accepted == [good["id"]]
    assert {(r.id, r.error) for r in answer.rejected} == {(other_site["id"], "wrong_site"), (other_device["id"], "wrong_device")}
    stored = [r["id"] for r in admin(srv, "GET", "/v1/records").json()["records"]]
    assert stored == [good["id"]]


def test_a_record_id_taken_by_another_device_is_a_conflict(srv):
    token = bind_new_device(srv, "second-device")
    mine = record()
    assert upload(srv, [mine]).json()["accepted"] == [mine["id"]]
    theirs = record(device_id="second-device", site_id="other-site", id=mine["id"])
    answer = RecordsAccepted.model_validate(upload(srv, [theirs], token=token).json())
    assert answer.accepted == [] and answer.rejected[0].error == "id_conflict"


@pytest.mark.parametrize(
    "overrides",
    [
        {"credential_hash": "G7kP2mQ9xW4tR8vL"},  # a raw token instead of a hash
        {"credential_hash": "AB" * 32},  # not canonical lower-case hex
        {"id": "5F0E9C1A-0000-4000-8000-000000000000"},  # upper case
        {"id": "5f0e9c1a-0000-4000-8000-000000000000"},  # a random (v4) UUID is not time-ordered
        {"created_at": "2022-05-01T08:00:00"},  # no time zone
        {"verdict": "maybe"},
        {"reason": "NAT too old!"},
        {"extra": {"blob": "x" * 2000}},
        {"raw_token": "G7kP2mQ9xW4tR8vL"},
    ],
)
def test_records_that_break_the_contract_are_bad_requests(srv, overrides):
    assert_error(upload(srv, [record(**overrides)]), 422, "bad_request")
    assert admin(srv, "GET", "/v1/records").json()["records"] == []


def test_at_most_500_records_per_upload(srv):
    assert upload(srv, [record() for _ in range(500)]).status_code == 200
    assert_error(upload(srv, [record() for _ in range(501)]), 422, "bad_request")


def test_records_listing_access_paging_and_since(srv):
    token = bind_new_device(srv, "second-device")
    old = record(created_at=(datetime.now(UTC) - timedelta(days=2)).isoformat())
    mine = [old] + [record() for _ in range(4)]
    upload(srv, mine)
    upload(srv, [record(device_id="second-device", site_id="other-site")], token=token)

    denied = requests.get(f"{srv.url}/v1/records", params={"device_id": "second-device"}, headers=bearer(DEMO_DEVICE_TOKEN), timeout=TIMEOUT)
    assert_error(denied, 403, "wrong_device")
    denied = requests.get(f"{srv.url}/v1/records", params={"site_id": "other-site"}, headers=bearer(DEMO_DEVICE_TOKEN), timeout=TIMEOUT)
    assert_error(denied, 403, "wrong_site")
    assert len(admin(srv, "GET", "/v1/records").json()["records"]) == 6

    seen, after = [], None
    while True:
        params = {"limit": 2, **({"after": after} if after else {})}
        page = RecordsPage.model_validate(
            requests.get(f"{srv.url}/v1/records", params=params, headers=bearer(DEMO_DEVICE_TOKEN), timeout=TIMEOUT).json()
        )
        seen += [r.id for r in page.records]
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == sorted(r["id"] for r in mine)

    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    recent = admin(srv, "GET", "/v1/records", params={"device_id": DEMO_DEVICE_ID, "since": since}).json()["records"]
    assert sorted(r["id"] for r in recent) == sorted(r["id"] for r in mine[1:])
    naive = admin(srv, "GET", "/v1/records", params={"since": "2022-05-01T08:00:00"})
    assert_error(naive, 422, "bad_request")


def test_records_survive_a_restart_and_a_reseed(service_db):
    one = record()
    with ReferenceServer(service_db, seed="demo", admin_token=ADMIN) as first:
        upload(first, [one])
    with ReferenceServer(service_db, seed="demo", admin_token=ADMIN) as second:
        assert [r["id"] for r in admin(second, "GET", "/v1/records").json()["records"]] == [one["id"]]
        assert upload(second, [one]).json()["accepted"] == [one["id"]]


# binding, heartbeat, faces ---------------------------------------------------------------------


def test_binding_code_is_single_use_and_binds_to_its_site(srv):
    created = admin(srv, "POST", "/admin/sites", json={"id": "clinic-7", "name": "Clinic 7", "address": "7 Clinic Lane"})
    assert created.status_code == 201
    assert_error(admin(srv, "POST", "/admin/sites", json={"id": "clinic-7", "name": "Again"}), 409, "conflict")
    issued = admin(srv, "POST", "/admin/sites/clinic-7/binding-codes", json={"ttl_s": 600})
    assert issued.status_code == 201
    code = issued.json()["code"]

    typed = f"  {code.lower().replace('-', ' ')} "  # what a technician types
    response = requests.post(f"{srv.url}/v1/devices/bind", json={"code": typed, "device_id": "clinic-7-door"}, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    bound = BindResponse.model_validate(response.json())
    assert bound.device_id == "clinic-7-door" and bound.site.name == "Clinic 7" and bound.site.address == "7 Clinic Lane"
    status = verify(srv, "health_code", demo_person("green").token, token=bound.token, device_id="clinic-7-door", site_id="clinic-7")
    assert status.json()["status"] == "green"

    again = requests.post(f"{srv.url}/v1/devices/bind", json={"code": code, "device_id": "thief"}, timeout=TIMEOUT)
    assert_error(again, 410, "code_used")
    assert admin(srv, "GET", "/admin/devices/thief").status_code == 404


def test_unknown_and_expired_binding_codes(srv):
    unknown = requests.post(f"{srv.url}/v1/devices/bind", json={"code": "NOPE1-NOPE2", "device_id": "d1"}, timeout=TIMEOUT)
    assert_error(unknown, 400, "code_unknown")
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    code = admin(srv, "POST", f"/admin/sites/{DEMO_SITE.id}/binding-codes", json={"expires_at": past}).json()["code"]
    expired = requests.post(f"{srv.url}/v1/devices/bind", json={"code": code, "device_id": "d1"}, timeout=TIMEOUT)
    assert_error(expired, 410, "code_expired")
    assert_error(admin(srv, "POST", "/admin/sites/no-such-site/binding-codes"), 404, "unknown_site")
    bad_id = requests.post(f"{srv.url}/v1/devices/bind", json={"code": code, "device_id": "../etc"}, timeout=TIMEOUT)
    assert_error(bad_id, 422, "bad_request")


def test_rebinding_a_device_replaces_its_token(srv):
    assert admin(srv, "POST", f"/admin/devices/{DEMO_DEVICE_ID}/rebind-allowed").status_code == 200  # an admin's decision
    response = requests.post(f"{srv.url}/v1/devices/bind", json={"code": DEMO_BINDING_CODE, "device_id": DEMO_DEVICE_ID}, timeout=TIMEOUT)
    new_token = BindResponse.model_validate(response.json()).token
    assert new_token != DEMO_DEVICE_TOKEN
    assert_error(verify(srv, "health_code", "x"), 401, "unauthorized")
    assert verify(srv, "health_code", demo_person("green").token, token=new_token).json()["status"] == "green"


def test_heartbeat_is_stored(srv):
    beat = {"version": "0.1.0", "uptime_s": 3600.0, "queue_depth": 3, "oldest_record_age_s": 42.5, "alarms": ["outbox_near_cap"],
            "camera": "ok", "gate": "closed", "door": None, "clock_offset_s": -0.25, "last_check_at": "2022-05-01T00:00:00Z",
            "camera_ok": None}
    response = requests.post(f"{srv.url}/v1/devices/{DEMO_DEVICE_ID}/heartbeat", json=beat, headers=bearer(DEMO_DEVICE_TOKEN), timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    ack = HeartbeatAck.model_validate(response.json())
    device = admin(srv, "GET", f"/admin/devices/{DEMO_DEVICE_ID}").json()
    assert device["last_heartbeat"] == beat
    assert datetime.fromisoformat(device["last_heartbeat_at"]) == ack.received_at
    other = requests.post(f"{srv.url}/v1/devices/someone-else/heartbeat", json=beat, headers=bearer(DEMO_DEVICE_TOKEN), timeout=TIMEOUT)
    assert_error(other, 403, "wrong_device")
    bad = requests.post(f"{srv.url}/v1/devices/{DEMO_DEVICE_ID}/heartbeat", json={**beat, "queue_depth": -1}, headers=bearer(DEMO_DEVICE_TOKEN), timeout=TIMEOUT)
    assert_error(bad, 422, "bad_request")


def test_face_gallery_of_a_site(srv):
    encoding = [i / 128 for i in range(128)]
    person = {"person_id": "resident-1", "name": "周杰伦", "colour": "green", "face_id": "face-resident-1",
              "face_site_id": DEMO_SITE.id, "face_encoding": encoding}  # fmt: skip
    assert admin(srv, "POST", "/admin/people", json=person).status_code == 201
    response = requests.get(f"{srv.url}/v1/faces", params={"site_id": DEMO_SITE.id}, headers=bearer(DEMO_DEVICE_TOKEN), timeout=TIMEOUT)
    gallery = FaceGallery.model_validate(response.json())
    assert [(f.face_id, f.person_id, f.name_masked) for f in gallery.faces] == [("face-resident-1", "resident-1", "周*伦")]
    assert gallery.faces[0].encoding == encoding
    later = requests.get(
        f"{srv.url}/v1/faces", params={"site_id": DEMO_SITE.id, "since": gallery.as_of.isoformat()}, headers=bearer(DEMO_DEVICE_TOKEN), timeout=TIMEOUT
    )
    assert later.json()["faces"] == []
    assert verify(srv, "face", "face-resident-1").json()["status"] == "green"
    wrong = requests.get(f"{srv.url}/v1/faces", params={"site_id": "other-site"}, headers=bearer(DEMO_DEVICE_TOKEN), timeout=TIMEOUT)
    assert_error(wrong, 403, "wrong_site")
    short = admin(srv, "POST", "/admin/people", json={**person, "person_id": "r2", "face_id": "f2", "face_encoding": [0.0] * 127})
    assert_error(short, 422, "bad_request")


# admin -----------------------------------------------------------------------------------------


def test_changing_a_person_changes_what_devices_see(srv):
    green = demo_person("green")
    sampled = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    changed = admin(srv, "PUT", "/admin/people/demo-green", json={"colour": "red", "nat_result": "positive", "nat_sampled_at": sampled})
    assert changed.status_code == 200, changed.text
    assert changed.json()["colour"] == "red"
    status = HealthStatus.model_validate(verify(srv, "health_code", green.token).json())
    assert status.status == "red" and status.nat.result == "positive"
    cleared = admin(srv, "PUT", "/admin/people/demo-green", json={"nat_result": None, "nat_sampled_at": None})
    assert cleared.status_code == 200
    assert verify(srv, "health_code", green.token).json()["nat"] is None
    assert_error(admin(srv, "PUT", "/admin/people/demo-green", json={"colour": None}), 422, "bad_request")
    assert_error(admin(srv, "PUT", "/admin/people/nobody", json={"colour": "red"}), 404, "unknown_person")
    assert_error(admin(srv, "PUT", "/admin/people/demo-green", json={"token": demo_person("red").token}), 409, "conflict")


def test_adding_a_person(srv):
    person = {"person_id": "p-1", "name": "欧阳小明", "colour": "yellow", "token": "TOKEN-P1", "id_number": "310101199001010011x",
              "nat_result": "pending", "nat_sampled_at": datetime.now(UTC).isoformat(), "antigen": "negative", "doses": 2}  # fmt: skip
    added = admin(srv, "POST", "/admin/people", json=person)
    assert added.status_code == 201, added.text
    assert added.json()["id_number"] == "310101199001010011X"
    status = HealthStatus.model_validate(verify(srv, "health_code", "TOKEN-P1").json())
    assert status.status == "yellow" and status.person.name_masked == "欧**明" and status.antigen == "negative"
    assert_error(admin(srv, "POST", "/admin/people", json=person), 409, "conflict")
    assert_error(admin(srv, "POST", "/admin/people", json={**person, "person_id": "p-2", "colour": "blue"}), 422, "bad_request")


def test_admin_endpoints_need_the_admin_token(srv):
    for token in (DEMO_DEVICE_TOKEN, "wrong"):
        response = requests.put(f"{srv.url}/admin/faults", json={"status": 503}, headers=bearer(token), timeout=TIMEOUT)
        assert_error(response, 401, "unauthorized")
    assert_error(requests.get(f"{srv.url}/admin/people/demo-green", timeout=TIMEOUT), 401, "unauthorized")


def test_healthz_and_openapi(srv):
    assert requests.get(f"{srv.url}/healthz", timeout=TIMEOUT).json()["status"] == "ok"
    spec = requests.get(f"{srv.url}/openapi.json", timeout=TIMEOUT).json()
    assert {"/v1/verify", "/v1/records", "/v1/devices/bind", "/v1/faces"} <= set(spec["paths"])


def test_tokens_and_credentials_never_reach_the_log(srv, caplog):
    caplog.set_level(logging.DEBUG)
    green = demo_person("green")
    verify(srv, "health_code", green.token)
    verify(srv, "id_number", green.id_number)
    verify(srv, "health_code", "x" * 600)  # a bad request too
    new_token = bind_new_device(srv, "logged-device")
    upload(srv, [record(device_id="logged-device", site_id="other-site")], token=new_token)
    admin(srv, "GET", "/admin/faults")
    text = caplog.text
    assert "verify device=demo-device" in text  # the log is there, just without secrets
    for secret in (DEMO_DEVICE_TOKEN, new_token, ADMIN, green.token, green.id_number, green.name):
        assert secret not in text

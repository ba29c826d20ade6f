"""Amendments ("did the person who passed go through the gate") and audit events: the device-side
record kinds (`RecordMaker.amendment`, `RecordMaker.event`), their contract, the outbox (add,
salvage, export) and the real path device outbox → uploader → reference service → listings."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
import requests
from pydantic import TypeAdapter, ValidationError

from sentinel.cli import main
from sentinel.client import ServiceClient
from sentinel.contract import (
    AmendmentIn,
    AnyRecordIn,
    EventIn,
    EventsPage,
    RecordIn,
    RecordsUpload,
)
from sentinel.credentials import Credential, CredentialKind
from sentinel.health import HealthStatus, Status
from sentinel.outbox import Outbox, scan_bodies
from sentinel.policy import Verdict, VerdictKind
from sentinel.records import Amendment, Event, RecordMaker
from sentinel.service.seed import DEMO_DEVICE_ID, DEMO_DEVICE_TOKEN, DEMO_SITE
from sentinel.service.server import ReferenceServer
from sentinel.uploader import Uploader
from tests.helpers import T0, WallClock
from tests.test_outbox_cli import write_config

ADMIN = "sat_test-admin-token"
TIMEOUT = 10
ANY = TypeAdapter(AnyRecordIn)
KEY = b"k" * 32


def maker(device_id: str = DEMO_DEVICE_ID) -> RecordMaker:
    return RecordMaker(device_id, DEMO_SITE.id, KEY)


def check(m: RecordMaker, at: datetime = T0, token: str = "tok-amend-0001") -> RecordIn:
    return m.make(Credential(CredentialKind.HEALTH_CODE, token), HealthStatus(status=Status.GREEN, checked_at=at),
                  Verdict(VerdictKind.PASS, "ok"), False, at)


# --- the device-side kinds and their contract ----------------------------------------------------


def test_amendment_and_event_are_records_of_their_own_kind():
    m = maker()
    passed = check(m)
    a = m.amendment(passed.id, passed=False, reason="gate_not_turned", at=T0 + timedelta(seconds=8))
    e = m.event("technician_pin_failed", at=T0, detail={"attempt": 2, "locked": False, "menu": "main", "after_s": 1.5})
    assert isinstance(a, Amendment) and isinstance(e, Event)
    assert (a.kind, a.record_id, a.passed, a.reason) == ("amendment", passed.id, False, "gate_not_turned")
    assert a.created_at == T0 + timedelta(seconds=8) and a.device_id == DEMO_DEVICE_ID and a.site_id == DEMO_SITE.id
    assert (e.kind, e.event, e.created_at) == ("event", "technician_pin_failed", T0)
    assert m.event("gate_test", at=T0).detail == {}
    # own time-ordered ids (UUIDv7 like check records), each new
    assert a.id != passed.id and e.id != a.id
    assert a.id[14] == "7" and e.id[14] == "7"
    assert passed.id < a.id < e.id
    # JSON round trip through what the outbox and POST /v1/records read
    for item in (a, e):
        body = item.model_dump(mode="json")
        assert next(iter(body)) == "kind"  # the salvage scan looks for a body starting with its kind
        again = ANY.validate_python(body)
        assert type(again) is type(item) and again == item
        assert ANY.validate_json(item.model_dump_json()) == item
    assert e.model_dump(mode="json")["detail"] == {"attempt": 2, "locked": False, "menu": "main", "after_s": 1.5}
    upload = RecordsUpload(records=[passed.model_dump(mode="json"), a.model_dump(mode="json"), e.model_dump(mode="json")])
    assert [type(r) for r in upload.records] == [RecordIn, AmendmentIn, EventIn]


@pytest.mark.parametrize(
    "change",
    [
        {"reason": "Gate Not Turned"},
        {"record_id": "not-a-uuid"},
        {"passed": "maybe"},
        {"created_at": "2026-11-25T08:00:00"},  # no time zone
        {"extra": {}},  # unknown field
        {"device_id": "bad id"},
    ],
)
def test_amendment_refusals(change):
    m = maker()
    body = {**m.amendment(check(m).id, passed=True, reason="gate_turned", at=T0).model_dump(mode="json"), **change}
    with pytest.raises(ValidationError):
        ANY.validate_python(body)


@pytest.mark.parametrize(
    "change",
    [
        {"event": "Technician Menu"},
        {"detail": {"nested": {"a": 1}}},
        {"detail": {"list": [1, 2]}},
        {"detail": {"Bad-Key": 1}},
        {"detail": {f"k{i}": i for i in range(17)}},
        {"detail": {"text": "x" * 600}},
        {"person": "王小明"},  # unknown field
        {"created_at": "2026-11-25T08:00:00"},
    ],
)
def test_event_refusals(change):
    body = {**maker().event("config_reloaded", at=T0).model_dump(mode="json"), **change}
    with pytest.raises(ValidationError):
        ANY.validate_python(body)


def test_maker_refuses_what_the_contract_refuses():
    m = maker()
    with pytest.raises(ValidationError):
        m.amendment("nope", passed=False, reason="gate_not_turned", at=T0)
    with pytest.raises(ValidationError):
        m.amendment(check(m).id, passed=False, reason="gate_not_turned", at=datetime(2026, 11, 25, 8, 0))  # naive
    with pytest.raises(ValidationError):
        m.event("config reload failed", at=T0)


def test_an_unknown_kind_is_still_refused():
    body = {**maker().event("gate_test", at=T0).model_dump(mode="json"), "kind": "gossip"}
    with pytest.raises(ValidationError):
        ANY.validate_python(body)


# --- the outbox: add, pending, salvage, export ----------------------------------------------------


def test_outbox_keeps_salvages_and_exports_amendments_and_events(tmp_path, capsys):
    config = write_config(tmp_path)
    path = tmp_path / "state" / "outbox.sqlite3"
    m = maker()
    passed = check(m)
    a = m.amendment(passed.id, passed=False, reason="gate_not_turned", at=T0 + timedelta(seconds=8))
    e = m.event("config_reload_failed", at=T0 + timedelta(seconds=9), detail={"error": "toml_syntax", "line": 12})
    with Outbox(path, wall=WallClock()) as ob:
        for item in (passed, a, e):
            ob.add(item)
        ob.add(a)  # the same id twice is kept once
        assert ob.health().depth == 3
        assert [r["id"] for r in ob.pending()] == [passed.id, a.id, e.id]
        assert ob.pending()[1] == a.model_dump(mode="json")
    found = {record_id: body for record_id, _created, body in scan_bodies(path)}
    assert set(found) >= {passed.id, a.id, e.id}
    assert ANY.validate_json(found[a.id]) == a and ANY.validate_json(found[e.id]) == e

    out = tmp_path / "export.jsonl"
    assert main(["outbox", "export", str(out), "--config", str(config)]) == 0
    assert "exported 3 records" in capsys.readouterr().err
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [ANY.validate_python(line) for line in lines] == [passed, a, e]


# --- the real path: device outbox → uploader → reference service ----------------------------------


@pytest.fixture
def srv(service_db):
    with ReferenceServer(service_db, seed="demo", admin_token=ADMIN, clock=WallClock(T0 + timedelta(minutes=5))) as server:
        yield server


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def admin(srv, method, path, **kwargs):
    return requests.request(method, f"{srv.url}{path}", headers=bearer(ADMIN), timeout=TIMEOUT, **kwargs)


def device(srv, method, path, token=DEMO_DEVICE_TOKEN, **kwargs):
    return requests.request(method, f"{srv.url}{path}", headers=bearer(token), timeout=TIMEOUT, **kwargs)


def second_device(srv, device_id="other-device") -> str:
    code = admin(srv, "POST", f"/admin/sites/{DEMO_SITE.id}/binding-codes").json()["code"]
    bound = requests.post(f"{srv.url}/v1/devices/bind", json={"code": code, "device_id": device_id}, timeout=TIMEOUT)
    assert bound.status_code == 200, bound.text
    return bound.json()["token"]


class Device:
    """A device's outbox, real client and uploader, drained in the foreground."""

    def __init__(self, srv, tmp_path, device_id=DEMO_DEVICE_ID, token=DEMO_DEVICE_TOKEN):
        self.maker = maker(device_id)
        self.outbox = Outbox(tmp_path / f"{device_id}.sqlite3", wall=WallClock(T0))
        self.client = ServiceClient(srv.url, token, device_id=device_id, site_id=DEMO_SITE.id)
        self.uploader = Uploader(self.outbox, self.client, wall=WallClock(T0))

    def deliver(self, *items):
        for item in items:
            self.outbox.add(item)
        result = self.uploader.drain(sleep=lambda _s: None, max_failures=1)
        assert result.remaining == 0, result
        return result

    def close(self):
        self.client.close()
        self.outbox.close()


@pytest.fixture
def kiosk(srv, tmp_path):
    d = Device(srv, tmp_path)
    yield d
    d.close()


def amendments(srv, **params):
    response = admin(srv, "GET", "/v1/amendments", params=params)
    assert response.status_code == 200, response.text
    return response.json()["amendments"]


def stored_records(srv, **params):
    response = admin(srv, "GET", "/v1/records", params=params)
    assert response.status_code == 200, response.text
    return {r["id"]: r for r in response.json()["records"]}


def test_an_amendment_travels_outbox_uploader_service_and_shows_on_its_record(srv, kiosk):
    passed, other = check(kiosk.maker), check(kiosk.maker, token="tok-amend-0002")
    at = T0 + timedelta(seconds=8)
    a = kiosk.maker.amendment(passed.id, passed=False, reason="gate_not_turned", at=at)
    result = kiosk.deliver(passed, other, a)
    assert (result.delivered, result.set_aside) == (3, 0)

    records = stored_records(srv, device_id=DEMO_DEVICE_ID)
    assert set(records) == {passed.id, other.id}  # an amendment is not a check: never counted as a person
    assert records[passed.id]["amendment"] == {"id": a.id, "passed": False, "reason": "gate_not_turned", "at": "2026-11-25T08:00:08Z"}
    assert records[other.id]["amendment"] is None
    (listed,) = amendments(srv, device_id=DEMO_DEVICE_ID)
    assert listed["id"] == a.id and listed["record_id"] == passed.id and listed["pending"] is False
    assert listed["received_at"] == "2026-11-25T08:05:00Z"  # the service's injected clock

    # uploaded twice (the acknowledgement was lost, or a salvage brought it back): stored once
    again = kiosk.deliver(a)
    assert (again.delivered, again.set_aside) == (1, 0)
    assert [x["id"] for x in amendments(srv)] == [a.id]

    # a device reads its own amendments with its own token, never another device's
    assert [x["id"] for x in device(srv, "GET", "/v1/amendments").json()["amendments"]] == [a.id]
    assert device(srv, "GET", "/v1/amendments", params={"device_id": "other-device"}).status_code == 403


def test_the_latest_amendment_shows_on_the_record(srv, kiosk):
    passed = check(kiosk.maker)
    first = kiosk.maker.amendment(passed.id, passed=False, reason="gate_not_turned", at=T0 + timedelta(seconds=8))
    later = kiosk.maker.amendment(passed.id, passed=True, reason="gate_turned", at=T0 + timedelta(seconds=9))
    kiosk.deliver(passed, later, first)
    assert stored_records(srv)[passed.id]["amendment"]["id"] == later.id
    assert len(amendments(srv)) == 2


def test_an_amendment_before_its_record_is_pending_until_the_record_arrives(srv, kiosk):
    passed = check(kiosk.maker)
    a = kiosk.maker.amendment(passed.id, passed=True, reason="gate_turned", at=T0 + timedelta(seconds=3))
    kiosk.deliver(a)  # e.g. the check record was held in the memory spill, or a clock step reordered ids
    (listed,) = amendments(srv)
    assert listed["pending"] is True
    kiosk.deliver(passed)
    assert amendments(srv)[0]["pending"] is False
    assert stored_records(srv)[passed.id]["amendment"]["passed"] is True


def test_an_amendment_of_another_devices_record_is_set_aside(srv, kiosk, tmp_path):
    token = second_device(srv)
    other = Device(srv, tmp_path, device_id="other-device", token=token)
    try:
        theirs = check(other.maker)
        other.deliver(theirs)
        a = kiosk.maker.amendment(theirs.id, passed=False, reason="gate_not_turned", at=T0)
        result = kiosk.deliver(a)
        assert (result.delivered, result.set_aside) == (0, 1)
        (refused,) = kiosk.outbox.rejected()
        assert refused["record"]["id"] == a.id and refused["error"] == "wrong_record"
        assert amendments(srv) == [] and stored_records(srv)[theirs.id]["amendment"] is None

        # an id another device already stored is the usual id_conflict, for these kinds too
        theirs_too = other.maker.event("gate_test", at=T0)
        other.deliver(theirs_too)
        same_id = {**theirs_too.model_dump(mode="json"), "device_id": DEMO_DEVICE_ID}
        answer = device(srv, "POST", "/v1/records", json={"records": [same_id]})
        assert answer.json()["rejected"][0]["error"] == "id_conflict"
    finally:
        other.close()


def test_an_amendment_of_something_that_is_not_a_check_is_refused(srv, kiosk):
    e = kiosk.maker.event("gate_test", at=T0)
    kiosk.deliver(e)
    a = kiosk.maker.amendment(e.id, passed=False, reason="gate_not_turned", at=T0)
    answer = device(srv, "POST", "/v1/records", json={"records": [a.model_dump(mode="json")]}).json()
    assert answer["accepted"] == [] and answer["rejected"][0]["error"] == "wrong_record"


def test_an_id_is_stored_once_across_kinds(srv, kiosk):
    passed = check(kiosk.maker)
    kiosk.deliver(passed)
    clash = kiosk.maker.event("gate_test", at=T0).model_copy(update={"id": passed.id})
    answer = device(srv, "POST", "/v1/records", json={"records": [clash.model_dump(mode="json")]}).json()
    assert answer["accepted"] == [] and answer["rejected"][0]["error"] == "id_conflict"
    assert admin(srv, "GET", f"/admin/devices/{DEMO_DEVICE_ID}/events").json()["events"] == []


def test_a_resent_amendment_with_other_content_does_not_overwrite_the_first(srv, kiosk):
    passed = check(kiosk.maker)
    a = kiosk.maker.amendment(passed.id, passed=False, reason="gate_not_turned", at=T0)
    kiosk.deliver(passed, a)
    changed = a.model_copy(update={"passed": True, "reason": "gate_turned"})
    answer = device(srv, "POST", "/v1/records", json={"records": [changed.model_dump(mode="json")]}).json()
    assert answer["accepted"] == [a.id]  # first copy wins, as for every record
    assert stored_records(srv)[passed.id]["amendment"]["passed"] is False


def test_events_travel_to_the_admin_listing(srv, kiosk):
    opened = kiosk.maker.event("technician_menu_opened", at=T0)
    failed = kiosk.maker.event("technician_pin_failed", at=T0 + timedelta(seconds=5), detail={"attempt": 1})
    reloaded = kiosk.maker.event("config_reloaded", at=T0 + timedelta(seconds=60), detail={"changed": "policy.offline"})
    kiosk.deliver(opened, failed, reloaded)
    kiosk.deliver(failed)  # twice: stored once

    response = admin(srv, "GET", f"/admin/devices/{DEMO_DEVICE_ID}/events")
    assert response.status_code == 200, response.text
    page = EventsPage.model_validate(response.json())
    assert [(e.id, e.event) for e in page.events] == [
        (opened.id, "technician_menu_opened"), (failed.id, "technician_pin_failed"), (reloaded.id, "config_reloaded")
    ]
    assert page.events[1].detail == {"attempt": 1} and page.events[0].received_at == T0 + timedelta(minutes=5)
    assert page.next_after is None
    assert stored_records(srv) == {}  # events are not check records

    since = (T0 + timedelta(seconds=5)).astimezone(timezone(timedelta(hours=8))).isoformat()
    assert [e["id"] for e in admin(srv, "GET", f"/admin/devices/{DEMO_DEVICE_ID}/events", params={"since": since}).json()["events"]] == [
        failed.id, reloaded.id
    ]
    first = admin(srv, "GET", f"/admin/devices/{DEMO_DEVICE_ID}/events", params={"limit": 1}).json()
    assert [e["id"] for e in first["events"]] == [opened.id] and first["next_after"] == opened.id
    rest = admin(srv, "GET", f"/admin/devices/{DEMO_DEVICE_ID}/events", params={"after": opened.id}).json()
    assert [e["id"] for e in rest["events"]] == [failed.id, reloaded.id]

    assert device(srv, "GET", f"/admin/devices/{DEMO_DEVICE_ID}/events").status_code == 401  # admin only
    assert admin(srv, "GET", "/admin/devices/nobody/events").json()["error"] == "unknown_device"
    assert admin(srv, "GET", f"/admin/devices/{DEMO_DEVICE_ID}/events", params={"since": "2026-11-25T08:00:00"}).status_code == 422


def test_a_bad_amendment_refuses_the_batch_like_any_bad_record(srv, kiosk):
    passed = check(kiosk.maker)
    bad = {**kiosk.maker.amendment(passed.id, passed=False, reason="gate_not_turned", at=T0).model_dump(mode="json"), "reason": "NO"}
    answer = device(srv, "POST", "/v1/records", json={"records": [passed.model_dump(mode="json"), bad]})
    assert answer.status_code == 422
    assert "records.1.amendment.reason" in answer.json()["message"]
    assert stored_records(srv) == {}

"""The wire models refuse what the contract forbids, so neither side can drift quietly."""

import uuid
from datetime import UTC, datetime

import pytest
import uuid6
from pydantic import ValidationError

from sentinel.contract import (
    ApiError,
    Credential,
    Heartbeat,
    RecordIn,
    RecordsAccepted,
    RecordsUpload,
    VerifyRequest,
)


def record(**overrides):
    return {
        "id": str(uuid6.uuid7()),
        "created_at": datetime.now(UTC),
        "device_id": "demo-device",
        "site_id": "demo-site",
        "credential_kind": "id_number",
        "credential_hash": "0123456789abcdef" * 4,
        "person": None,
        "status": "not_found",
        "verdict": "deny",
        "reason": "not_found",
        "mode": "online",
        **overrides,
    }


def test_a_good_record_round_trips_through_json():
    sent = RecordIn(**record(extra={"verify_ms": 130, "decoder": "zxing"}))
    assert RecordIn.model_validate_json(sent.model_dump_json()) == sent


def test_ids_are_time_ordered_uuids_v7_or_v6_and_nothing_else():
    v7, v6 = str(uuid6.uuid7()), str(uuid6.uuid6())
    assert RecordIn(**record(id=v7)).id == v7
    assert RecordIn(**record(id=v6)).id == v6
    for not_ordered in (str(uuid.uuid4()), str(uuid.uuid1()), v7.upper()):  # random, clock-sequence, not canonical
        with pytest.raises(ValidationError):
            RecordIn(**record(id=not_ordered))


@pytest.mark.parametrize(
    "overrides",
    [
        {"credential_hash": "not-a-hash"},
        {"credential_hash": "0" * 63},
        {"id": "not-a-uuid"},
        {"created_at": datetime(2022, 5, 1, 8, 0)},
        {"status": "purple"},
        {"mode": "sometimes"},
        {"device_id": "has space"},
        {"extra": {"k": "v" * 1100}},
        {"name": "王小明"},
    ],
)
def test_records_refuse(overrides):
    with pytest.raises(ValidationError):
        RecordIn(**record(**overrides))


def test_upload_holds_at_most_500_records():
    RecordsUpload(records=[record() for _ in range(500)])
    with pytest.raises(ValidationError):
        RecordsUpload(records=[record() for _ in range(501)])


def test_credential_value_limits():
    Credential(kind="health_code", value="x" * 512)
    for value in ("", "x" * 513):
        with pytest.raises(ValidationError):
            Credential(kind="health_code", value=value)


def test_verify_request_needs_an_aware_scan_time():
    body = {"device_id": "d", "site_id": "s", "credential": {"kind": "face", "value": "f"}}
    VerifyRequest(**body, scanned_at="2022-05-01T08:00:00+08:00")
    with pytest.raises(ValidationError):
        VerifyRequest(**body, scanned_at="2022-05-01T08:00:00")


def test_answers_without_optional_fields():
    assert RecordsAccepted.model_validate({"accepted": ["a"]}).rejected == []
    assert ApiError.model_validate({"error": "unauthorized"}).message == ""
    assert Heartbeat(queue_depth=0, camera_ok=False, version="0.1.0").oldest_record_age_s is None

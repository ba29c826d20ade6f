"""The wire format between a device and the health-status service (everything but `HealthStatus`,
which lives in `sentinel.health` because the policy reads it too).

Both sides import these models: the reference service validates requests with them and the
device's client validates answers with them, so a drift between the two is a test failure instead
of a field surprise. Every model forbids unknown fields for the same reason. docs/api.md is the
human-readable form of this module; keep them in step.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
)

from sentinel.config import ID_PATTERN
from sentinel.credentials import CredentialKind
from sentinel.health import Person, Status
from sentinel.policy import VerdictKind
from sentinel.vehicle import PLATE_PATTERN

#: record ids are time-ordered UUIDs (version 6 or 7) in canonical lower-case form, so that the
#: string order is the time order and the service can de-duplicate on the exact string
RECORD_ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[67][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
#: the most records one upload may carry; the uploader sends bigger backlogs in several batches
MAX_RECORDS_PER_UPLOAD = 500
#: `RecordIn.extra` is for a few diagnostic values, not a side channel for personal data
MAX_EXTRA_BYTES = 1024
FACE_ENCODING_LENGTH = 128


def _extra_is_small(value: dict[str, Any]) -> dict[str, Any]:
    if len(json.dumps(value, ensure_ascii=False).encode()) > MAX_EXTRA_BYTES:
        raise ValueError(f"extra is larger than {MAX_EXTRA_BYTES} bytes as JSON")
    return value


#: the `extra` of a record: a few diagnostic values, at most MAX_EXTRA_BYTES as JSON
Extra = Annotated[dict[str, Any], AfterValidator(_extra_is_small)]


#: a record's site: the one its device was bound to when it made the record (every record kind)
RecordSiteId = Annotated[str, Field(pattern=ID_PATTERN, title="Site id", description="Site the device was bound to at the time")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Mode(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class Credential(_Model):
    kind: CredentialKind = Field(title="Kind", description="What the person presented")
    value: str = Field(
        min_length=1,
        max_length=512,
        title="Value",
        description="health_code: the token from the QR payload; id_number: the ID number; "
        "face: the face_id of the matched gallery entry",
    )


class VerifyRequest(_Model):
    device_id: str = Field(pattern=ID_PATTERN, title="Device id", description="The asking device; must be the token's device")
    site_id: str = Field(pattern=ID_PATTERN, title="Site id", description="The device's site; must be the site the device is bound to")
    credential: Credential = Field(title="Credential", description="What to look up")
    scanned_at: AwareDatetime = Field(title="Scanned at", description="When the device read the credential (device clock, with time zone)")


class RecordIn(_Model):
    """One check, as the device's outbox uploads it. Carries no raw credential and no full identity."""

    id: str = Field(
        pattern=RECORD_ID_PATTERN,
        title="Record id",
        description="Time-ordered UUID (v7, or v6) in canonical lower-case form, made by the device; the service de-duplicates on it",
    )
    created_at: AwareDatetime = Field(title="Created at", description="When the check happened (device clock, with time zone)")
    device_id: str = Field(pattern=ID_PATTERN, title="Device id", description="Device that made the check")
    site_id: RecordSiteId
    credential_kind: CredentialKind = Field(title="Credential kind", description="What the person presented")
    credential_hash: str = Field(
        pattern=r"^[0-9a-f]{64}$",
        title="Credential hash",
        description="Lower-case hex HMAC-SHA256 of the credential under the device's key; never the raw token or ID number",
    )
    person: Person | None = Field(None, title="Person", description="Masked identity as the service returned it, if any")
    status: Status = Field(
        title="Status",
        description="Health status the device acted on: timeout when offline; verify_failed (a staff check) or "
        "device_unauthorized when the service's answer could not be used",
    )
    verdict: VerdictKind = Field(title="Verdict", description="What the site policy decided")
    reason: str = Field(pattern=r"^[a-z0-9_]{1,64}$", title="Reason", description="Short code for the verdict, e.g. nat_too_old")
    mode: Mode = Field(title="Mode", description="online: the service answered in time; offline: the offline policy decided")
    extra: Extra = Field(
        default_factory=dict,
        title="Extra",
        description=f"A few diagnostic values (≤ {MAX_EXTRA_BYTES} bytes as JSON), e.g. verify latency; no personal data. "
        "status_detail: why a timeout / verify_failed / device_unauthorized check had no usable answer (docs/api.md)",
    )


class RecordAmendment(_Model):
    """The latest amendment of a check record, as `GET /v1/records` shows it on the record."""

    id: str = Field(title="Amendment id", description="The amendment record's id")
    passed: bool = Field(title="Passed", description="The person went through the gate (true) or not (false)")
    reason: str = Field(title="Reason", description="gate_turned | gate_not_turned | …")
    at: AwareDatetime = Field(title="At", description="The amendment's created_at (device clock)")


class StoredRecord(RecordIn):
    received_at: AwareDatetime = Field(title="Received at", description="When the service first stored the record (service clock)")
    amendment: RecordAmendment | None = Field(
        None, title="Amendment", description="What became of the check at the gate (the latest amendment uploaded for it); null when none"
    )


# --- vehicle sessions (handheld units at drive-through checkpoints) ------------------------------
#
# A vehicle session is uploaded next to the check records of its occupants, through the same outbox
# and the same `POST /v1/records`: it is a record of its own kind, told apart by `kind`. Check
# records stay exactly as they were (no `kind` key), so contact tracing's "who was here when" never
# counts a vehicle as a person. The service keeps sessions apart and lists them at
# `GET /v1/vehicle-sessions`.

#: the most people one vehicle record may list (a minibus); the device stops adding at its own cap
MAX_OCCUPANTS = 20
#: the most checks one occupant may carry (first, re-scans, duplicates)
MAX_ATTEMPTS = 20
_HASH_PATTERN = r"^[0-9a-f]{64}$"
_REASON_PATTERN = r"^[a-z0-9_]{1,64}$"


class VehicleAttempt(_Model):
    """One check made in the vehicle and counted toward (or flagged on) an occupant."""

    record_id: str | None = Field(
        pattern=RECORD_ID_PATTERN,
        title="Record id",
        description="The check record of this attempt (uploaded as its own record); null when it could not be kept",
    )
    role: Literal["first", "rescan", "duplicate"] = Field(
        title="Role",
        description="first: the occupant's first check; rescan: a later check that counts (after a failure); "
        "duplicate: the same credential or person again after passing, kept and flagged but not counted",
    )
    credential_kind: CredentialKind = Field(title="Credential kind", description="What was presented")
    credential_hash: str = Field(pattern=_HASH_PATTERN, title="Credential hash", description="As in the check record; never the raw token")
    verdict: VerdictKind = Field(title="Verdict", description="The check's verdict")
    reason: str = Field(pattern=_REASON_PATTERN, title="Reason", description="The check's reason code")
    mode: Mode = Field(title="Mode", description="online or offline, as in the check record")


class VehicleOccupant(_Model):
    seat: int = Field(ge=1, le=MAX_OCCUPANTS, title="Seat", description="1: the driver (checked first), then passengers in the order checked")
    verdict: VerdictKind = Field(title="Verdict", description="The latest counted check's verdict: what counts for this person")
    reason: str = Field(pattern=_REASON_PATTERN, title="Reason", description="The latest counted check's reason code")
    record_id: str | None = Field(
        pattern=RECORD_ID_PATTERN, title="Record id", description="The latest counted check's record; null when it could not be kept"
    )
    credential_hash: str = Field(pattern=_HASH_PATTERN, title="Credential hash", description="The latest counted check's credential hash")
    duplicate: bool = Field(title="Duplicate", description="The same credential or person was shown again after passing (flagged, not counted twice)")
    rescanned: bool = Field(title="Re-scanned", description="Checked again after a failure; the latest result counts")
    attempts: list[VehicleAttempt] = Field(
        min_length=1, max_length=MAX_ATTEMPTS, title="Attempts", description="Every check of this person in this vehicle, in order"
    )


class VehicleSessionIn(_Model):
    """One vehicle at a drive-through checkpoint: its plate, its occupants and the vehicle's verdict."""

    kind: Literal["vehicle_session"] = Field(title="Kind", description="Always vehicle_session: tells this record from a check record")
    id: str = Field(pattern=RECORD_ID_PATTERN, title="Record id", description="As for check records; the service de-duplicates on it")
    created_at: AwareDatetime = Field(title="Created at", description="When the vehicle was recorded (its finish; device clock)")
    device_id: str = Field(pattern=ID_PATTERN, title="Device id", description="Device that checked the vehicle")
    site_id: RecordSiteId
    session_id: str = Field(pattern=RECORD_ID_PATTERN, title="Session id", description="Time-ordered UUID made when staff started the vehicle")
    started_at: AwareDatetime = Field(title="Started at", description="When staff started the vehicle")
    finished_at: AwareDatetime = Field(title="Finished at", description="When staff finished it (or it timed out)")
    closed_by: Literal["finish", "timeout", "shutdown"] = Field(
        title="Closed by", description="finish: staff finished it; timeout: left open too long; shutdown: the device stopped with it open"
    )
    plate: str | None = Field(
        pattern=PLATE_PATTERN,
        title="Plate",
        description="Mainland plate, normalised (沪A12345, 沪AD12345, 沪A1234警); null when not entered",
    )
    verdict: VerdictKind = Field(title="Verdict", description="The vehicle's verdict: deny if anyone was refused, staff check if anyone needs it")
    reason: str = Field(pattern=_REASON_PATTERN, title="Reason", description="all_passed | occupant_denied | occupant_manual_check | duplicate_code")
    mode: Mode = Field(title="Mode", description="offline when any occupant's counted check was decided offline")
    occupants: list[VehicleOccupant] = Field(min_length=1, max_length=MAX_OCCUPANTS, title="Occupants", description="Everyone checked, by seat")
    extra: Extra = Field(
        default_factory=dict, title="Extra", description=f"A few diagnostic values (≤ {MAX_EXTRA_BYTES} bytes as JSON); no personal data"
    )


class StoredVehicleSession(VehicleSessionIn):
    received_at: AwareDatetime = Field(title="Received at", description="When the service first stored the record (service clock)")


class VehicleSessionsPage(_Model):
    sessions: list[StoredVehicleSession] = Field(title="Sessions", description="Matching vehicle sessions in id (= time) order")
    next_after: str | None = Field(None, title="Next after", description="Pass as `after` for the next page; null on the last page")


# --- amendments and audit events ------------------------------------------------------------
#
# Two more record kinds travel the same outbox and the same `POST /v1/records`, told apart by
# `kind` like vehicle sessions:
#
# - an **amendment** says what became of a passed check at the gate: the door / turnstile sensor
#   saw (`passed: true`) or did not see (`passed: false, reason: gate_not_turned`) the person go
#   through. The check record itself is never changed on the device; the service shows the
#   amendment on the record it amends (`GET /v1/records` items gain `amendment`).
# - an **event** is an audit entry of the device itself (technician menu opened, wrong PIN, gate
#   test, configuration reloaded, ...): a short code and a few values, never personal data. The
#   service lists them per device at `GET /admin/devices/{device_id}/events`.

#: `EventIn.detail` is small: a few values, never a side channel for personal data
MAX_DETAIL_KEYS = 16
MAX_DETAIL_BYTES = 512
_DETAIL_KEY_PATTERN = r"^[a-z0-9_]{1,32}$"
DetailValue = str | int | float | bool


class AmendmentIn(_Model):
    """What became of a passed check at the gate, as the door / turnstile sensor saw it."""

    kind: Literal["amendment"] = Field(title="Kind", description="Always amendment: tells this record from a check record")
    id: str = Field(pattern=RECORD_ID_PATTERN, title="Record id", description="The amendment's own time-ordered id; the service de-duplicates on it")
    created_at: AwareDatetime = Field(
        title="Created at", description="When the device decided the outcome (the sensor saw the turn, or the pass window ended; device clock)"
    )
    device_id: str = Field(pattern=ID_PATTERN, title="Device id", description="Device that made the amended check; must be the check's device")
    site_id: RecordSiteId
    record_id: str = Field(pattern=RECORD_ID_PATTERN, title="Amended record", description="Id of the check record (a pass) this amends")
    passed: bool = Field(title="Passed", description="true: the person went through the gate; false: the gate was opened but nobody went through")
    reason: str = Field(
        pattern=_REASON_PATTERN,
        title="Reason",
        description="Short code: gate_turned (passed) or gate_not_turned (the sensor saw no turn within the pass window)",
    )


class EventIn(_Model):
    """An audit event of the device (not of a person): a short code and a few values."""

    kind: Literal["event"] = Field(title="Kind", description="Always event: tells this record from a check record")
    id: str = Field(pattern=RECORD_ID_PATTERN, title="Record id", description="The event's own time-ordered id; the service de-duplicates on it")
    created_at: AwareDatetime = Field(title="Created at", description="When it happened (device clock, with time zone)")
    device_id: str = Field(pattern=ID_PATTERN, title="Device id", description="Device the event happened on")
    site_id: RecordSiteId
    event: str = Field(
        pattern=_REASON_PATTERN,
        title="Event",
        description="Short code, e.g. technician_menu_opened, technician_pin_failed, gate_test, config_reloaded, config_reload_failed",
    )
    detail: dict[str, DetailValue] = Field(
        default_factory=dict,
        title="Detail",
        description=f"At most {MAX_DETAIL_KEYS} values (keys [a-z0-9_], ≤ {MAX_DETAIL_BYTES} bytes as JSON); no personal data",
    )

    @field_validator("detail")
    @classmethod
    def _detail_is_small(cls, value: dict[str, DetailValue]) -> dict[str, DetailValue]:
        if len(value) > MAX_DETAIL_KEYS:
            raise ValueError(f"detail has more than {MAX_DETAIL_KEYS} keys")
        for key in value:
            if not re.fullmatch(_DETAIL_KEY_PATTERN, key):
                raise ValueError(f"detail key {key!r} is not [a-z0-9_]{{1,32}}")
        if len(json.dumps(value, ensure_ascii=False).encode()) > MAX_DETAIL_BYTES:
            raise ValueError(f"detail is larger than {MAX_DETAIL_BYTES} bytes as JSON")
        return value


#: the record kinds besides a check record (which has no `kind` key)
RECORD_KINDS = ("vehicle_session", "amendment", "event")


def record_kind(value: Any) -> str:
    """`check`, `vehicle_session`, `amendment` or `event`: which model a record (a dict or a model) is."""
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    return kind if kind in RECORD_KINDS else "check"


#: what `POST /v1/records` and the outbox carry: a check record, a vehicle session, an amendment or an event
AnyRecordIn = Annotated[
    Annotated[RecordIn, Tag("check")]
    | Annotated[VehicleSessionIn, Tag("vehicle_session")]
    | Annotated[AmendmentIn, Tag("amendment")]
    | Annotated[EventIn, Tag("event")],
    Discriminator(record_kind),
]


class StoredAmendment(AmendmentIn):
    received_at: AwareDatetime = Field(title="Received at", description="When the service first stored the amendment (service clock)")
    pending: bool = Field(
        title="Pending", description="The amended check record has not reached the service yet; the amendment shows on it once it does"
    )


class AmendmentsPage(_Model):
    amendments: list[StoredAmendment] = Field(title="Amendments", description="Matching amendments in id (= time) order")
    next_after: str | None = Field(None, title="Next after", description="Pass as `after` for the next page; null on the last page")


class StoredEvent(EventIn):
    received_at: AwareDatetime = Field(title="Received at", description="When the service first stored the event (service clock)")


class EventsPage(_Model):
    events: list[StoredEvent] = Field(title="Events", description="Matching events in id (= time) order")
    next_after: str | None = Field(None, title="Next after", description="Pass as `after` for the next page; null on the last page")


class RecordsUpload(_Model):
    records: list[AnyRecordIn] = Field(
        max_length=MAX_RECORDS_PER_UPLOAD, title="Records", description="Records to store, in any order: check records, vehicle sessions, amendments and events"
    )


class RecordRejected(_Model):
    id: str = Field(title="Record id", description="The rejected record")
    error: str = Field(
        title="Error",
        description="wrong_device | wrong_site | id_conflict | wrong_record (an amendment of a record that is another device's, or not a check)",
    )
    message: str = Field("", title="Message", description="Why, for logs")


class RecordsAccepted(_Model):
    accepted: list[str] = Field(
        title="Accepted",
        description="Every id of the batch that is now stored, including ones stored by an earlier attempt; the device may delete these",
    )
    rejected: list[RecordRejected] = Field(
        default_factory=list,
        title="Rejected",
        description="Records the service will never accept, whatever the retry; the device should set them aside, not retry them",
    )


class RecordsPage(_Model):
    records: list[StoredRecord] = Field(title="Records", description="Matching records in id (= time) order")
    next_after: str | None = Field(
        None, title="Next after", description="Pass as `after` to get the next page; null when this page is the last"
    )


class Site(_Model):
    id: str = Field(pattern=ID_PATTERN, title="Site id", description="Stable id of the venue or checkpoint")
    name: str = Field(min_length=1, max_length=100, title="Name", description="Shown on the device, e.g. Demo Mall east gate")
    address: str = Field("", max_length=200, title="Address", description="Postal address of the site")


class BindRequest(_Model):
    code: str = Field(
        min_length=1,
        max_length=64,
        title="Binding code",
        description="One-time code issued for a site; case, spaces and hyphens do not matter",
    )
    device_id: str = Field(pattern=ID_PATTERN, title="Device id", description="Id the device will use from now on")


class BindResponse(_Model):
    device_id: str = Field(title="Device id", description="The bound device")
    site: Site = Field(title="Site", description="The site the code was issued for")
    token: str = Field(title="Token", description="Bearer token for all further calls; shown once, store it root-only")


class ApiError(_Model):
    error: str = Field(title="Error", description="Stable machine-readable code, e.g. token_revoked")
    message: str = Field("", title="Message", description="Human-readable explanation, for logs; never contains secrets")


#: a short state or alarm code in a heartbeat
_CODE_PATTERN = r"^[a-z0-9_]{1,64}$"
#: the most alarm codes one heartbeat carries
MAX_ALARMS = 32
Code = Annotated[str, Field(pattern=_CODE_PATTERN)]


class Heartbeat(_Model):
    """The device's health, sent about every 60 s. Fields added after the first v1 have defaults,
    so a heartbeat from older firmware (which sends `camera_ok`) is still accepted."""

    version: str = Field(max_length=64, title="Version", description="Firmware version")
    uptime_s: float | None = Field(None, ge=0, title="Uptime", description="Seconds since the kiosk started; null from older firmware")
    queue_depth: int = Field(ge=0, title="Queue depth", description="Records waiting in the outbox")
    oldest_record_age_s: float | None = Field(
        None, ge=0, title="Oldest record age", description="Age in seconds of the oldest record not yet uploaded; null when none"
    )
    alarms: list[Code] = Field(
        default_factory=list,
        max_length=MAX_ALARMS,
        title="Alarms",
        description="Alarm codes active now (e.g. outbox_near_cap, camera_fault, clock_skew); empty when none",
    )
    camera: str = Field(
        "unknown",
        pattern=_CODE_PATTERN,
        title="Camera",
        description="ok | fault | paused | off (no camera configured); unknown: not reported (older firmware)",
    )
    gate: str = Field(
        "unknown",
        pattern=_CODE_PATTERN,
        title="Gate",
        description="closed | open | fault | none (no gate relay); unknown: not reported (older firmware)",
    )
    door: str | None = Field(
        None, pattern=_CODE_PATTERN, title="Door", description="Door / turnstile sensor state (closed | open | fault); null when there is no sensor"
    )
    clock_offset_s: float | None = Field(
        None,
        title="Clock offset",
        description="Device clock minus service clock in seconds, from the previous heartbeat's ack; null before the first ack",
    )
    last_check_at: AwareDatetime | None = Field(None, title="Last check at", description="When the last check happened (device clock); null when none since start")
    camera_ok: bool | None = Field(
        None, title="Camera ok", description="Deprecated (older firmware): the camera delivered a frame recently; newer firmware sends camera"
    )


class HeartbeatAck(_Model):
    received_at: AwareDatetime = Field(title="Received at", description="Service clock; lets a device without an RTC notice clock skew")


class FaceEntry(_Model):
    face_id: str = Field(title="Face id", description="Send as the credential value (kind face) after a match")
    person_id: str = Field(title="Person id", description="Service's id of the person")
    name_masked: str = Field(title="Masked name", description="e.g. 王*明")
    encoding: list[float] = Field(
        min_length=FACE_ENCODING_LENGTH,
        max_length=FACE_ENCODING_LENGTH,
        title="Encoding",
        description="128-dimensional face encoding (dlib / face_recognition)",
    )


class FaceGallery(_Model):
    site_id: str = Field(title="Site id", description="Site the gallery belongs to")
    faces: list[FaceEntry] = Field(title="Faces", description="Entries enrolled or changed since `since` (all when no since)")
    as_of: AwareDatetime = Field(title="As of", description="Service clock at the answer; pass as `since` next time")

"""The device-facing API, version 1: what a real health-status service offers a sentinel.

Endpoints are plain `def`: FastAPI runs them in its thread pool, so SQLite calls never block the
event loop that keeps injected latency and other requests going.

Guessing is limited (`limits.py`: binding codes per address, not_found ID-number and face lookups
per token), a face id answers only within the device's site gallery, uploads must carry masked
identity only, and a token lists only the records of its own binding. Failures are logged with the
device id or address and the error, never a secret or a credential.
"""

from __future__ import annotations

import logging
from datetime import datetime

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from sentinel.contract import (
    ID_PATTERN,
    RECORD_ID_PATTERN,
    AmendmentsPage,
    ApiError,
    BindRequest,
    BindResponse,
    CredentialKind,
    FaceEntry,
    FaceGallery,
    Heartbeat,
    HeartbeatAck,
    RecordRejected,
    RecordsAccepted,
    RecordsPage,
    RecordsUpload,
    VehicleSessionsPage,
    VerifyRequest,
)
from sentinel.health import HealthStatus, Nat, Person, Status, Vaccination
from sentinel.service.auth import (
    Caller,
    caller,
    check_device,
    client_address,
    device_caller,
    device_caller_even_revoked,
)
from sentinel.service.errors import ApiException
from sentinel.service.limits import retry_after
from sentinel.service.masking import is_masked_id, is_masked_name, mask_id, mask_name
from sentinel.service.state import (
    maybe_purge,
    now_of,
    store_of,
)
from sentinel.service.store import BindError, DeviceRow, PersonRow
from sentinel.service.tokens import new_device_token

log = logging.getLogger("sentinel.service")

_AUTH_ERRORS = {
    401: {"model": ApiError, "description": "unauthorized (no or unknown token) or token_revoked"},
    403: {"model": ApiError, "description": "wrong_device or wrong_site: ids do not match the token"},
    422: {"model": ApiError, "description": "bad_request: the body or query does not match the contract"},
}

router = APIRouter(prefix="/v1", tags=["v1"])


def health_status_of(person: PersonRow, kind: CredentialKind, now: datetime) -> HealthStatus:
    """The answer for a known person. Only a health code can be expired: a screenshot of an old
    QR code is the fraud this catches; an ID card or a face is the person themself."""
    if kind is CredentialKind.HEALTH_CODE and person.code_expires_at is not None and person.code_expires_at <= now:
        return HealthStatus(status=Status.EXPIRED, checked_at=now, detail="health code expired; refresh it in the app")
    nat = None
    if person.nat_result and person.nat_sampled_at:
        nat = Nat(result=person.nat_result, sampled_at=person.nat_sampled_at)
    return HealthStatus(
        status=Status(person.colour),
        person=Person(name_masked=mask_name(person.name)[:64], id_masked=mask_id(person.id_number or "")[:32]),
        nat=nat,
        antigen=person.antigen,
        vaccination=Vaccination(doses=person.doses),
        checked_at=now,
    )


@router.post("/verify", response_model=HealthStatus, responses=_AUTH_ERRORS, summary="Health status of one person")
def verify(body: VerifyRequest, request: Request, device: DeviceRow = Depends(device_caller)) -> HealthStatus:
    check_device(device, body.device_id, body.site_id)
    now = now_of(request)
    limits = request.app.state.limits
    key = device.binding_id or device.id  # one binding = one token
    kind = body.credential.kind
    wait = limits.verify.take(key)
    guessable = kind in (CredentialKind.ID_NUMBER, CredentialKind.FACE)  # an ID number or face id can be guessed; a token cannot
    if not wait and guessable:
        wait = limits.not_found.wait_s(key)
    if wait:
        log.warning("verify rate limited device=%s kind=%s", device.id, kind.value)
        raise ApiException(429, "rate_limited", "too many lookups from this device; wait", retry_after(wait))
    # a face id answers only within the device's own site gallery
    person = store_of(request).find_person(kind, body.credential.value, face_site_id=device.site_id)
    if person is None and guessable:
        limits.not_found.charge(key)
        log.warning("verify not_found device=%s kind=%s", device.id, kind.value)
    if person is None:
        answer = HealthStatus(status=Status.NOT_FOUND, checked_at=now, detail="no person for this credential")
    else:
        answer = health_status_of(person, body.credential.kind, now)
    log.info("verify device=%s kind=%s -> %s", device.id, body.credential.kind.value, answer.status.value)
    return answer


def _unmasked(record) -> bool:
    person = getattr(record, "person", None)
    return person is not None and not (is_masked_name(person.name_masked) and is_masked_id(person.id_masked))


@router.post("/records", response_model=RecordsAccepted, responses=_AUTH_ERRORS, summary="Upload records: checks, vehicle sessions, amendments, events (idempotent)")
def upload_records(body: RecordsUpload, request: Request, device: DeviceRow = Depends(device_caller)) -> RecordsAccepted:
    rejected, acceptable = [], []
    for record in body.records:
        if record.device_id != device.id:
            rejected.append(RecordRejected(id=record.id, error="wrong_device", message=f"record is from device {record.device_id}"))
        elif record.site_id != device.site_id:
            rejected.append(RecordRejected(id=record.id, error="wrong_site", message=f"device is bound to site {device.site_id}"))
        elif _unmasked(record):
            rejected.append(RecordRejected(id=record.id, error="not_masked", message="person name and ID must be masked as the service returned them"))
        else:
            acceptable.append(record)
    maybe_purge(request)
    stored = store_of(request).add_records(acceptable, now_of(request), binding_id=device.binding_id)
    accepted, seen = [], set()
    for record in acceptable:
        if record.id in seen:
            continue
        seen.add(record.id)
        if record.id in stored.refused:
            error, message = stored.refused[record.id]
            rejected.append(RecordRejected(id=record.id, error=error, message=message))
        elif stored.owners.get(record.id) == device.id:
            accepted.append(record.id)
        else:
            rejected.append(RecordRejected(id=record.id, error="id_conflict", message="another device stored a record with this id"))
    log.info("records device=%s accepted=%d rejected=%d", device.id, len(accepted), len(rejected))
    return RecordsAccepted(accepted=accepted, rejected=rejected)


def _own(who: Caller) -> dict:
    """A device token lists only what was uploaded under its own binding."""
    return {} if who.device is None else {"binding_id": who.device.binding_id, "own_binding": True}


@router.get("/records", response_model=RecordsPage, responses=_AUTH_ERRORS, summary="Read stored records (audits, tests)")
def list_records(
    request: Request,
    who: Caller = Depends(caller),
    device_id: str | None = Query(None, pattern=ID_PATTERN, description="Only this device's records; a device token reads only its own"),
    site_id: str | None = Query(None, pattern=ID_PATTERN, description="Only records made at this site"),
    since: datetime | None = Query(None, description="Only records created at or after this time (ISO 8601 with time zone)"),
    after: str | None = Query(None, pattern=RECORD_ID_PATTERN, description="Paging cursor: `next_after` of the previous page"),
    limit: int = Query(100, ge=1, le=1000, description="Most records in one page"),
) -> RecordsPage:
    if since is not None and since.tzinfo is None:
        raise ApiException(422, "bad_request", "query since: needs a time zone, e.g. 2022-05-01T08:00:00+08:00")
    if who.device is not None:
        device_id = device_id or who.device.id
        check_device(who.device, device_id, site_id)
    records = store_of(request).list_records(device_id=device_id, site_id=site_id, since=since, after=after, limit=limit, **_own(who))
    next_after = records[-1].id if len(records) == limit else None
    return RecordsPage(records=records, next_after=next_after)


@router.get(
    "/vehicle-sessions",
    response_model=VehicleSessionsPage,
    responses=_AUTH_ERRORS,
    summary="Read stored vehicle sessions of handheld units (audits, tests)",
)
def list_vehicle_sessions(
    request: Request,
    who: Caller = Depends(caller),
    device_id: str | None = Query(None, pattern=ID_PATTERN, description="Only this device's sessions; a device token reads only its own"),
    site_id: str | None = Query(None, pattern=ID_PATTERN, description="Only sessions recorded at this site"),
    since: datetime | None = Query(None, description="Only sessions created at or after this time (ISO 8601 with time zone)"),
    after: str | None = Query(None, pattern=RECORD_ID_PATTERN, description="Paging cursor: `next_after` of the previous page"),
    limit: int = Query(100, ge=1, le=1000, description="Most sessions in one page"),
) -> VehicleSessionsPage:
    if since is not None and since.tzinfo is None:
        raise ApiException(422, "bad_request", "query since: needs a time zone, e.g. 2022-05-01T08:00:00+08:00")
    if who.device is not None:
        device_id = device_id or who.device.id
        check_device(who.device, device_id, site_id)
    sessions = store_of(request).list_vehicle_sessions(device_id=device_id, site_id=site_id, since=since, after=after, limit=limit, **_own(who))
    return VehicleSessionsPage(sessions=sessions, next_after=sessions[-1].id if len(sessions) == limit else None)


@router.get(
    "/amendments",
    response_model=AmendmentsPage,
    responses=_AUTH_ERRORS,
    summary="Read stored amendments, including pending ones (audits, tests)",
)
def list_amendments(
    request: Request,
    who: Caller = Depends(caller),
    device_id: str | None = Query(None, pattern=ID_PATTERN, description="Only this device's amendments; a device token reads only its own"),
    site_id: str | None = Query(None, pattern=ID_PATTERN, description="Only amendments made at this site"),
    since: datetime | None = Query(None, description="Only amendments created at or after this time (ISO 8601 with time zone)"),
    after: str | None = Query(None, pattern=RECORD_ID_PATTERN, description="Paging cursor: `next_after` of the previous page"),
    limit: int = Query(100, ge=1, le=1000, description="Most amendments in one page"),
) -> AmendmentsPage:
    if since is not None and since.tzinfo is None:
        raise ApiException(422, "bad_request", "query since: needs a time zone, e.g. 2022-05-01T08:00:00+08:00")
    if who.device is not None:
        device_id = device_id or who.device.id
        check_device(who.device, device_id, site_id)
    found = store_of(request).list_amendments(device_id=device_id, site_id=site_id, since=since, after=after, limit=limit, **_own(who))
    return AmendmentsPage(amendments=found, next_after=found[-1].id if len(found) == limit else None)


@router.post(
    "/devices/bind",
    response_model=BindResponse,
    summary="Trade a one-time binding code for a device token",
    responses={
        400: {"model": ApiError, "description": "code_unknown"},
        410: {"model": ApiError, "description": "code_used or code_expired"},
        422: {"model": ApiError, "description": "bad_request"},
    },
)
def bind(body: BindRequest, request: Request) -> BindResponse:
    limits, address = request.app.state.limits, client_address(request)
    wait = limits.bind_failures.wait_s(address) or limits.bind.take(address)
    if wait:
        log.warning("bind rate limited from %s", address)
        raise ApiException(429, "rate_limited", "too many binding attempts from this address; wait", retry_after(wait))
    token = new_device_token()
    try:
        site = store_of(request).redeem_binding_code(body.code, body.device_id, token, now_of(request))
    except BindError as exc:
        limits.bind_failures.fail(address)
        log.warning("bind failed from %s device=%s: %s", address, body.device_id, exc.error)
        status = {"code_unknown": 400, "device_exists": 409, "wrong_site": 403}.get(exc.error, 410)
        raise ApiException(status, exc.error, str(exc)) from None
    log.info("bound device=%s to site=%s", body.device_id, site.id)
    return BindResponse(device_id=body.device_id, site=site, token=token)


@router.post("/devices/{device_id}/heartbeat", response_model=HeartbeatAck, responses=_AUTH_ERRORS, summary="Report device health")
def heartbeat(device_id: str, body: Heartbeat, request: Request, device: DeviceRow = Depends(device_caller)) -> HeartbeatAck:
    check_device(device, device_id)
    now = now_of(request)
    store_of(request).record_heartbeat(device.id, body.model_dump(mode="json"), now)
    return HeartbeatAck(received_at=now)


class RevokeAck(BaseModel):
    model_config = ConfigDict(extra="forbid")

    revoked: bool = Field(True, title="Revoked", description="Always true: the calling token no longer works")


@router.post(
    "/devices/{device_id}/revoke",
    response_model=RevokeAck,
    responses=_AUTH_ERRORS,
    summary="A device revokes its own token (when it is wiped); idempotent",
)
def revoke_self(device_id: str, request: Request, device: DeviceRow = Depends(device_caller_even_revoked)) -> RevokeAck:
    check_device(device, device_id)
    store_of(request).revoke_device(device.id)
    log.info("device=%s revoked its own token", device.id)
    return RevokeAck(revoked=True)


@router.get("/faces", response_model=FaceGallery, responses=_AUTH_ERRORS, summary="Face gallery of a site")
def faces(
    request: Request,
    site_id: str = Query(pattern=ID_PATTERN, description="The device's site"),
    since: datetime | None = Query(None, description="Only entries enrolled or changed at or after this time (`as_of` of the last sync)"),
    device: DeviceRow = Depends(device_caller),
) -> FaceGallery:
    if since is not None and since.tzinfo is None:
        raise ApiException(422, "bad_request", "query since: needs a time zone, e.g. 2022-05-01T08:00:00+08:00")
    check_device(device, device.id, site_id)
    now = now_of(request)
    entries = [
        FaceEntry(face_id=p.face_id, person_id=p.person_id, name_masked=mask_name(p.name), encoding=p.face_encoding)
        for p in store_of(request).faces(site_id, since)
    ]
    return FaceGallery(site_id=site_id, faces=entries, as_of=now)

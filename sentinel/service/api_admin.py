"""The admin API of the reference service: how tests, the demo and a technician at the bench set
the world up (sites, binding codes, people and their colours, revocations, faults).

Real services have their own back offices; devices never call these endpoints, so these models
are not part of `sentinel.contract`. Admin answers may carry full names and ID numbers: the admin
is the authority that knows them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from sentinel.contract import (
    FACE_ENCODING_LENGTH,
    ID_PATTERN,
    RECORD_ID_PATTERN,
    EventsPage,
    Heartbeat,
    Site,
)
from sentinel.health import NatResult
from sentinel.service.auth import admin_caller
from sentinel.service.errors import ApiException
from sentinel.service.faults import Faults
from sentinel.service.store import BindError, Conflict, PersonRow, Store
from sentinel.service.tokens import new_binding_code

router = APIRouter(prefix="/admin", tags=["admin (reference service only)"], dependencies=[Depends(admin_caller)])

Colour = Literal["green", "yellow", "red"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PersonChange(_Model):
    """Fields to change; a field left out stays as it is, a field sent as null is cleared."""

    name: str | None = Field(None, min_length=1, max_length=64, title="Full name", description="Devices see it masked")
    token: str | None = Field(None, min_length=1, max_length=512, title="Health-code token", description="Value of a health_code credential")
    id_number: str | None = Field(None, min_length=1, max_length=32, title="ID number", description="Value of an id_number credential")
    face_id: str | None = Field(None, min_length=1, max_length=64, title="Face id", description="Value of a face credential")
    colour: Colour | None = Field(None, title="Colour", description="green | yellow | red")
    code_expires_at: AwareDatetime | None = Field(None, title="Code expires at", description="After this, the health code answers expired")
    nat_result: NatResult | None = Field(None, title="NAT result", description="negative | positive | pending")
    nat_sampled_at: AwareDatetime | None = Field(None, title="NAT sampled at", description="When the NAT sample was taken")
    antigen: NatResult | None = Field(None, title="Antigen", description="Latest antigen result")
    doses: int | None = Field(None, ge=0, le=10, title="Doses", description="Vaccination doses")
    face_site_id: str | None = Field(None, pattern=ID_PATTERN, title="Face site", description="Site whose gallery holds the face")
    face_encoding: list[float] | None = Field(
        None, min_length=FACE_ENCODING_LENGTH, max_length=FACE_ENCODING_LENGTH, title="Face encoding", description="128 floats"
    )


class NewPerson(PersonChange):
    person_id: str = Field(pattern=ID_PATTERN, title="Person id", description="Service's id of the person")
    name: str = Field(min_length=1, max_length=64, title="Full name", description="Devices see it masked")
    colour: Colour = Field(title="Colour", description="green | yellow | red")
    doses: int = Field(0, ge=0, le=10, title="Doses", description="Vaccination doses")


class PersonOut(NewPerson):
    updated_at: datetime = Field(title="Updated at", description="Last change")


class BindingCodeRequest(_Model):
    ttl_s: int = Field(86400, ge=1, le=30 * 86400, title="Lifetime", description="Seconds until the code expires")
    expires_at: AwareDatetime | None = Field(None, title="Expires at", description="Overrides ttl_s; may be in the past to bench-test code_expired")


class BindingCode(_Model):
    code: str = Field(title="Code", description="One-time code; shown once, stored hashed")
    site_id: str = Field(title="Site id", description="Site a device binding with this code joins")
    expires_at: datetime = Field(title="Expires at", description="After this the code answers code_expired")


class DeviceOut(_Model):
    id: str = Field(title="Device id", description="The device")
    site_id: str = Field(title="Site id", description="The site it is bound to")
    revoked: bool = Field(title="Revoked", description="Its token was revoked")
    bound_at: datetime = Field(title="Bound at", description="When it last bound (service clock)")
    last_heartbeat_at: datetime | None = Field(title="Last heartbeat at", description="When the last heartbeat arrived (service clock); null when none")
    last_heartbeat: Heartbeat | None = Field(title="Last heartbeat", description="The last heartbeat as the device sent it; null when none")
    rebind_site_id: str | None = Field(
        None, title="Re-binding allowed into", description="An admin allowed binding this id again with a code of this site; null: not allowed"
    )


class RebindRequest(_Model):
    site_id: str | None = Field(None, pattern=ID_PATTERN, title="Site id", description="Site whose code may re-bind the device; default its own")


def _store(request: Request) -> Store:
    return request.app.state.store


def _person_out(person: PersonRow) -> PersonOut:
    return PersonOut(**vars(person))


@router.post("/sites", response_model=Site, status_code=201, summary="Add a site")
def add_site(body: Site, request: Request) -> Site:
    try:
        _store(request).add_site(body)
    except Conflict as exc:
        raise ApiException(409, "conflict", str(exc)) from None
    return body


@router.post("/sites/{site_id}/binding-codes", response_model=BindingCode, status_code=201, summary="Issue a one-time binding code")
def add_binding_code(site_id: str, request: Request, body: BindingCodeRequest | None = None) -> BindingCode:
    body = body or BindingCodeRequest()
    expires_at = body.expires_at or request.app.state.clock() + timedelta(seconds=body.ttl_s)
    code = new_binding_code()
    try:
        _store(request).add_binding_code(site_id, code, expires_at)
    except BindError as exc:
        raise ApiException(404, exc.error, str(exc)) from None
    return BindingCode(code=code, site_id=site_id, expires_at=expires_at)


@router.get("/devices/{device_id}", response_model=DeviceOut, summary="A device and its last heartbeat")
def get_device(device_id: str, request: Request) -> DeviceOut:
    device = _store(request).get_device(device_id)
    if device is None:
        raise ApiException(404, "unknown_device", f"no device {device_id}")
    return DeviceOut(**{k: v for k, v in vars(device).items() if k != "binding_id"})


@router.get("/devices/{device_id}/events", response_model=EventsPage, summary="A device's audit events")
def device_events(
    device_id: str,
    request: Request,
    since: datetime | None = Query(None, description="Only events created at or after this time (ISO 8601 with time zone)"),
    after: str | None = Query(None, pattern=RECORD_ID_PATTERN, description="Paging cursor: `next_after` of the previous page"),
    limit: int = Query(100, ge=1, le=1000, description="Most events in one page"),
) -> EventsPage:
    if since is not None and since.tzinfo is None:
        raise ApiException(422, "bad_request", "query since: needs a time zone, e.g. 2022-05-01T08:00:00+08:00")
    store = _store(request)
    if store.get_device(device_id) is None:
        raise ApiException(404, "unknown_device", f"no device {device_id}")
    events = store.list_events(device_id=device_id, since=since, after=after, limit=limit)
    return EventsPage(events=events, next_after=events[-1].id if len(events) == limit else None)


@router.post("/devices/{device_id}/revoke", response_model=DeviceOut, summary="Revoke a device's token")
def revoke_device(device_id: str, request: Request) -> DeviceOut:
    if not _store(request).revoke_device(device_id):
        raise ApiException(404, "unknown_device", f"no device {device_id}")
    return get_device(device_id, request)


@router.post(
    "/devices/{device_id}/rebind-allowed",
    response_model=DeviceOut,
    summary="Allow the next binding of an existing device id (replaced SD card, revoked device back in service, move)",
)
def allow_rebind(device_id: str, request: Request, body: RebindRequest | None = None) -> DeviceOut:
    store = _store(request)
    device = store.get_device(device_id)
    if device is None:
        raise ApiException(404, "unknown_device", f"no device {device_id}")
    site_id = (body.site_id if body else None) or device.site_id
    if store.get_site(site_id) is None:
        raise ApiException(404, "unknown_site", f"no site {site_id}")
    store.allow_rebind(device_id, site_id)
    return get_device(device_id, request)


@router.post("/people", response_model=PersonOut, status_code=201, summary="Add a person")
def add_person(body: NewPerson, request: Request) -> PersonOut:
    try:
        person = _store(request).add_person(PersonRow(**body.model_dump()), request.app.state.clock())
    except Conflict as exc:
        raise ApiException(409, "conflict", str(exc)) from None
    return _person_out(person)


@router.get("/people/{person_id}", response_model=PersonOut, summary="A person as the service knows them")
def get_person(person_id: str, request: Request) -> PersonOut:
    person = _store(request).get_person(person_id)
    if person is None:
        raise ApiException(404, "unknown_person", f"no person {person_id}")
    return _person_out(person)


@router.put("/people/{person_id}", response_model=PersonOut, summary="Change a person (colour, NAT, …)")
def change_person(person_id: str, body: PersonChange, request: Request) -> PersonOut:
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    for required in ("name", "colour", "doses"):
        if required in changes and changes[required] is None:
            raise ApiException(422, "bad_request", f"{required}: cannot be cleared")
    try:
        person = _store(request).update_person(person_id, changes, request.app.state.clock())
    except Conflict as exc:
        raise ApiException(409, "conflict", str(exc)) from None
    if person is None:
        raise ApiException(404, "unknown_person", f"no person {person_id}")
    return _person_out(person)


@router.get("/faults", response_model=Faults, summary="Faults injected into every /v1 request")
def get_faults(request: Request) -> Faults:
    return request.app.state.faults.faults


@router.put("/faults", response_model=Faults, summary="Set the faults injected into every /v1 request")
def set_faults(body: Faults, request: Request) -> Faults:
    if not request.app.state.fault_injection:
        raise ApiException(403, "faults_disabled", "fault injection is off; start the service with --allow-fault-injection")
    request.app.state.faults.set(body)
    return body

"""What the store hands out and takes in: rows as dataclasses, its errors, and the conversions
between Python values and the text columns (times as fixed-width UTC ISO text, so comparing the
strings compares the times; JSON for structured values).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any


def utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def parse_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


class StoreError(Exception):
    pass


class Conflict(StoreError):
    """A unique key (id, token, ID number, face id) is already taken."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or is busy (PostgreSQL restarting, a connection lost, a
    SQLite file locked past the timeout): nothing was answered from it, so the caller must say
    "try again" (503), never guess. A write that failed this way was rolled back."""


class BindError(StoreError):
    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error = error  # code_unknown | code_expired | code_used | unknown_site | device_exists | wrong_site


@dataclass
class StoredBatch:
    """What `Store.add_records` did with a batch."""

    #: every id of the batch now stored (by this call or an earlier one) → the device that stored it
    owners: dict[str, str] = field(default_factory=dict)
    #: ids not stored, never to be: id → (error, message); `id_conflict` (a record of another kind
    #: has the id) or `wrong_record` (an amendment of another device's record, or of a non-check)
    refused: dict[str, tuple[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class DeviceRow:
    id: str
    site_id: str
    revoked: bool
    bound_at: datetime
    last_heartbeat_at: datetime | None
    last_heartbeat: dict[str, Any] | None
    binding_id: str | None = None
    rebind_site_id: str | None = None  # an admin allowed this id to be bound again, into this site


DEVICE_COLUMNS = tuple(f.name for f in fields(DeviceRow))


def device_from_sql(row: Any) -> DeviceRow:
    values = dict(row)
    values["revoked"] = bool(values["revoked"])
    for name in ("bound_at", "last_heartbeat_at"):
        values[name] = parse_time(values[name])
    if values["last_heartbeat"] is not None:
        values["last_heartbeat"] = json.loads(values["last_heartbeat"])
    return DeviceRow(**values)


@dataclass(frozen=True)
class PersonRow:
    person_id: str
    name: str
    colour: str
    token: str | None = None
    id_number: str | None = None
    face_id: str | None = None
    code_expires_at: datetime | None = None
    nat_result: str | None = None
    nat_sampled_at: datetime | None = None
    antigen: str | None = None
    doses: int = 0
    face_site_id: str | None = None
    face_encoding: list[float] | None = None
    updated_at: datetime | None = field(default=None, compare=False)


PERSON_COLUMNS = tuple(f.name for f in fields(PersonRow))
_PERSON_TIMES = {"code_expires_at", "nat_sampled_at", "updated_at"}


def person_to_sql(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in _PERSON_TIMES:
        return utc_text(value)
    if name == "face_encoding":
        return json.dumps(value)
    if name == "id_number":
        return normalise_id_number(value)
    return value


def person_from_sql(row: Any) -> PersonRow:
    values = dict(row)
    for name in _PERSON_TIMES:
        values[name] = parse_time(values[name])
    if values["face_encoding"] is not None:
        values["face_encoding"] = json.loads(values["face_encoding"])
    return PersonRow(**values)


def normalise_id_number(value: str) -> str:
    """ID numbers end in a check character that may be an x typed in lower case."""
    return value.strip().upper()

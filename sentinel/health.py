"""Health status: what the health-status service says about one person.

This is both the device's view and the body of the service's `POST /v1/verify` answer, so the
client validates answers against exactly the model the policy reads. Statuses that are not a
colour (`expired`, `not_found`, `verify_failed`, `timeout`) carry no person data.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Status(StrEnum):
    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"
    EXPIRED = "expired"
    NOT_FOUND = "not_found"
    VERIFY_FAILED = "verify_failed"
    TIMEOUT = "timeout"
    #: device-side only, never sent by the service: it refused this device (unknown or revoked
    #: token, wrong site). Not "offline": letting people in under allow_and_flag would be wrong.
    DEVICE_UNAUTHORIZED = "device_unauthorized"

    @property
    def is_colour(self) -> bool:
        return self in (Status.GREEN, Status.YELLOW, Status.RED)

    @property
    def is_unreachable(self) -> bool:
        """The service gave no usable answer: the offline policy decides instead."""
        return self in (Status.VERIFY_FAILED, Status.TIMEOUT)


class NatResult(StrEnum):
    NEGATIVE = "negative"
    POSITIVE = "positive"
    PENDING = "pending"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Person(_Model):
    name_masked: str = Field("", max_length=64, title="Masked name", description="e.g. 王*明; never the full name")
    id_masked: str = Field("", max_length=32, title="Masked ID", description="e.g. 3101**********1234")


class Nat(_Model):
    result: NatResult = Field(title="NAT result", description="Latest nucleic-acid test result")
    sampled_at: datetime = Field(title="Sampled at", description="When the latest NAT sample was taken (with time zone)")


class Vaccination(_Model):
    doses: int = Field(0, ge=0, le=10, title="Doses", description="Vaccination doses received")


class HealthStatus(_Model):
    status: Status = Field(title="Status", description="Colour of the health code, or why there is none")
    person: Person | None = Field(None, title="Person", description="Masked identity of the person")
    nat: Nat | None = Field(None, title="NAT", description="Latest nucleic-acid test, if any")
    antigen: NatResult | None = Field(None, title="Antigen", description="Latest self-reported antigen test, if any")
    vaccination: Vaccination | None = Field(None, title="Vaccination", description="Vaccination record")
    checked_at: datetime | None = Field(None, title="Checked at", description="When the service decided this status")
    detail: str = Field("", max_length=200, title="Detail", description="Why the status is what it is, for logs (no personal data)")

    @classmethod
    def unreachable(cls, status: Status, detail: str) -> "HealthStatus":
        return cls(status=status, detail=detail[:200])

"""Health status: what the health-status service says about one person.

This is both the device's view and the body of the service's `POST /v1/verify` answer, so the
client validates answers against exactly the model the policy reads. Statuses that are not a
colour (`expired`, `not_found`, `verify_failed`, `timeout`) carry no person data. Times must carry
a time zone: a naive time cannot be compared with the device clock, so it fails validation (and
the check becomes a staff check) instead of crashing the policy later.

Fail closed: only `timeout` (the service could not be reached in time) is a case for the site's
offline policy. `verify_failed` means an answer the device does not understand or trust (TLS
failure, redirect, unexpected HTTP status, malformed body): a staff check, never the offline
policy, because under `allow_and_flag` that would let everyone in. `status_detail` says which,
in a short code that goes into the check record (docs/api.md lists the codes).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


#: `HealthStatus.status_detail`: short, lower-case, safe in a log line and a record
STATUS_DETAIL_PATTERN = r"^[a-z0-9_]{0,32}$"


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
        """The service could not be reached in time: the offline policy decides instead. Not
        `verify_failed`: an answer the device does not understand is a staff check."""
        return self is Status.TIMEOUT

    @property
    def is_device_side(self) -> bool:
        """Set by the device only; a service that sends one of these is not speaking the contract."""
        return self in (Status.VERIFY_FAILED, Status.TIMEOUT, Status.DEVICE_UNAUTHORIZED)


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
    sampled_at: AwareDatetime = Field(title="Sampled at", description="When the latest NAT sample was taken (with time zone)")


class Vaccination(_Model):
    doses: int = Field(0, ge=0, le=10, title="Doses", description="Vaccination doses received")


class HealthStatus(_Model):
    status: Status = Field(title="Status", description="Colour of the health code, or why there is none")
    person: Person | None = Field(None, title="Person", description="Masked identity of the person")
    nat: Nat | None = Field(None, title="NAT", description="Latest nucleic-acid test, if any")
    antigen: NatResult | None = Field(None, title="Antigen", description="Latest self-reported antigen test, if any")
    vaccination: Vaccination | None = Field(None, title="Vaccination", description="Vaccination record")
    checked_at: AwareDatetime | None = Field(None, title="Checked at", description="When the service decided this status (with time zone)")
    detail: str = Field("", max_length=200, title="Detail", description="Why the status is what it is, for logs (no personal data)")
    status_detail: str = Field(
        "",
        pattern=STATUS_DETAIL_PATTERN,
        exclude=True,  # device-side only: never part of the service's answer
        title="Status detail",
        description="Device-side only: a short code saying why a check is timeout / verify_failed / device_unauthorized "
        "(e.g. connection, tls, redirect, http_401, schema); recorded as the record's extra.status_detail",
    )

    @classmethod
    def unreachable(cls, status: Status, detail: str, status_detail: str | None = None) -> "HealthStatus":
        """A status the device sets itself. `status_detail` defaults to `deadline` for a timeout and
        `error` (the verifier failed) otherwise."""
        if status_detail is None:
            status_detail = "deadline" if status is Status.TIMEOUT else "error"
        return cls(status=status, detail=detail[:200], status_detail=status_detail)

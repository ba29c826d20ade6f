"""Check records: one per person checked, the venue's evidence for contact tracing.

A record never holds the raw token or ID number: the credential is kept as an HMAC under a key
that only this device has, so the same person can be recognised across records (and by the
`cached` offline policy) without the record being usable as a credential if the SD card leaks.

Why a check had no usable answer (`HealthStatus.status_detail`: tls, redirect, http_401, schema, …)
goes into the record's `extra.status_detail`, so that an audit can tell a network outage from a
service that answered something the device would not trust (docs/api.md lists the codes).

Besides check records the device makes two more kinds, through the same `RecordMaker`, outbox,
uploader and `POST /v1/records` (a vehicle session is a third, made by `sentinel.handheld`):

- `RecordMaker.amendment(record_id, passed=..., reason=..., at=...)` → `Amendment` (kind
  `amendment`): what became of a passed check at the gate, e.g. `passed=False,
  reason="gate_not_turned"` when the gate was pulsed but the door sensor saw no turn in the pass
  window. The check record is never rewritten; the service shows the amendment on it.
- `RecordMaker.event(event, at=..., detail=...)` → `Event` (kind `event`): an audit event of the
  device (`technician_menu_opened`, `technician_pin_failed`, `gate_test`, `config_reloaded`,
  `config_reload_failed`, ...), with a few values and no personal data.

Each has its own time-ordered id (UUIDv7, like a check record), `created_at`, `device_id` and
`site_id`, and serialises with `.model_dump(mode="json")`; `Outbox.add` takes any of them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any

import uuid6

from sentinel.atomic import write_atomic
from sentinel.contract import (
    AmendmentIn,
    DetailValue,
    EventIn,
    RecordIn,
    VehicleSessionIn,
)
from sentinel.credentials import Credential
from sentinel.health import HealthStatus
from sentinel.policy import Verdict

KEY_BYTES = 32


#: A check record is exactly what the service's records endpoint accepts, validated when made.
Record = RecordIn
#: what became of a passed check at the gate (`contract.AmendmentIn`)
Amendment = AmendmentIn
#: an audit event of the device (`contract.EventIn`)
Event = EventIn
#: anything the outbox keeps and the uploader delivers
AnyRecord = RecordIn | VehicleSessionIn | AmendmentIn | EventIn


def load_or_create_key(path: Path) -> bytes:
    """The device's record key, created on first start with owner-only permissions."""
    try:
        key = path.read_bytes()
        if len(key) == KEY_BYTES:
            return key
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(KEY_BYTES)
    # a fixed temporary name (state_files.RECORD_KEY_TMP_NAME), so `sentinel wipe` knows a leftover
    write_atomic(path, key, 0o600, tmp=path.with_suffix(".tmp"))
    return key


class RecordMaker:
    def __init__(self, device_id: str, site_id: str, key: bytes):
        if len(key) < 16:
            raise ValueError("record key too short")
        self.device_id = device_id
        self.site_id = site_id
        self._key = key

    def _stamp(self, at: datetime) -> dict[str, Any]:
        """What every record this device makes carries: a fresh time-ordered id, `created_at`
        (device clock, aware), the device and its site."""
        return {"id": str(uuid6.uuid7()), "created_at": at, "device_id": self.device_id, "site_id": self.site_id}

    def credential_hash(self, credential: Credential) -> str:
        message = f"{credential.kind.value}:{credential.value}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def make(
        self, credential: Credential, status: HealthStatus, verdict: Verdict, offline: bool, at: datetime,
        *, credential_hash: str | None = None, **extra: Any,
    ) -> Record:
        """A check's record; `credential_hash`: `credential_hash(credential)` where the caller has it already."""
        if status.status_detail:
            extra = {"status_detail": status.status_detail, **extra}
        return Record(
            **self._stamp(at),
            credential_kind=credential.kind.value,
            credential_hash=credential_hash or self.credential_hash(credential),
            person=status.person,
            status=status.status.value,
            verdict=verdict.kind.value,
            reason=verdict.reason,
            mode="offline" if offline else "online",
            extra=extra,
        )

    def amendment(self, record_id: str, *, passed: bool, reason: str, at: datetime) -> Amendment:
        """The check record `record_id` (a pass) did (`passed=True`, e.g. reason `gate_turned`) or
        did not (`passed=False`, e.g. `gate_not_turned`) end with the person through the gate.
        `at` is when that was decided (device clock, aware); it becomes `created_at`."""
        return Amendment(
            kind="amendment",
            **self._stamp(at),
            record_id=record_id,
            passed=passed,
            reason=reason,
        )

    def event(self, event: str, *, at: datetime, detail: dict[str, DetailValue] | None = None) -> Event:
        """An audit event (`technician_menu_opened`, `gate_test`, `config_reloaded`, ...) at `at`
        (device clock, aware), with a few values in `detail` and never personal data."""
        return Event(
            kind="event",
            **self._stamp(at),
            event=event,
            detail=dict(detail or {}),
        )

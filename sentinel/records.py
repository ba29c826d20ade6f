"""Check records: one per person checked, the venue's evidence for contact tracing.

A record never holds the raw token or ID number: the credential is kept as an HMAC under a key
that only this device has, so the same person can be recognised across records (and by the
`cached` offline policy) without the record being usable as a credential if the SD card leaks.

Why a check had no usable answer (`HealthStatus.status_detail`: tls, redirect, http_401, schema, …)
goes into the record's `extra.status_detail`, so that an audit can tell a network outage from a
service that answered something the device would not trust (docs/api.md lists the codes).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any

import uuid6

from sentinel.contract import RecordIn
from sentinel.credentials import Credential
from sentinel.health import HealthStatus
from sentinel.policy import Verdict

KEY_BYTES = 32


#: A check record is exactly what the service's records endpoint accepts, validated when made.
Record = RecordIn


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
    tmp = path.with_suffix(".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:  # a full or read-only disk: no key, and no empty .tmp left behind
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise
    return key


class RecordMaker:
    def __init__(self, device_id: str, site_id: str, key: bytes):
        if len(key) < 16:
            raise ValueError("record key too short")
        self.device_id = device_id
        self.site_id = site_id
        self._key = key

    def credential_hash(self, credential: Credential) -> str:
        message = f"{credential.kind.value}:{credential.value}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def make(self, credential: Credential, status: HealthStatus, verdict: Verdict, offline: bool, at: datetime, **extra: Any) -> Record:
        if status.status_detail:
            extra = {"status_detail": status.status_detail, **extra}
        return Record(
            id=str(uuid6.uuid7()),
            created_at=at,
            device_id=self.device_id,
            site_id=self.site_id,
            credential_kind=credential.kind.value,
            credential_hash=self.credential_hash(credential),
            person=status.person,
            status=status.status.value,
            verdict=verdict.kind.value,
            reason=verdict.reason,
            mode="offline" if offline else "online",
            extra=extra,
        )

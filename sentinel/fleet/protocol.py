"""What a sentinel and the district's fleet side say to each other over MQTT: topics, payloads, and
the signature on a remote policy.

One home for the wire format, read by the device (sentinel/fleet/, through paho-mqtt) and by the
fleet side (the dashboard and the policy publisher). Everything is JSON (UTF-8), one object per
message, at most `MAX_MESSAGE_BYTES`.

Topics, under a configurable prefix (`sentinel` by default), one site and one device id each
(the same ids as at the health-status service, `[A-Za-z0-9_-]`):

- `<prefix>/<site>/<device>/state`, retained: `DeviceState`, sent when something in it changes
  and at least every `state_every_s`. The broker holds the device's last will on the same topic,
  `offline_state()` (online false), so a device that vanishes reads as offline within the keepalive.
- `<prefix>/<site>/<device>/counters`, not retained: `MinuteCounters`, one per minute that saw
  checks (counts only: no person, no code, no name ever goes to the broker).
- `<prefix>/<site>/policy`, retained: `SignedPolicy`, the site's policy, published by the fleet
  side and signed with its Ed25519 key. The device checks the signature with the public key in its
  config, the site, that the version is newer than the one it runs, and the policy itself with the
  same pydantic model as its config file (`PolicyConfig`), before it applies it.
- `<prefix>/<site>/<device>/policy_ack`, retained: `PolicyAck`, the version the device runs now
  and, when it refused a message, which version and why (`REJECT_REASONS`).

How it fails: `verify_policy` raises `PolicyRejected` with one of `REJECT_REASONS`, never anything
else, whatever the bytes; the caller keeps the policy it had. The signature covers the canonical
JSON (`canonical_json`: sorted keys, no spaces, UTF-8) of everything in the message but the
signature, so a broker (or anyone who can publish) cannot change the site, version or policy of a
signed message, nor replay one site's policy at another site. Replaying an *older* signed message
is refused by version (the device remembers the version it runs across restarts).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sentinel.config import ID_PATTERN, PolicyConfig
from sentinel.fleet.config import DEFAULT_PREFIX, PREFIX_PATTERN  # noqa: F401 (part of the wire format; their home is the config section)

PROTOCOL_VERSION = 1
MAX_MESSAGE_BYTES = 64 * 1024

REJECT_REASONS = {
    "malformed": "not a policy message (JSON or fields)",
    "too_large": f"larger than {MAX_MESSAGE_BYTES} bytes",
    "wrong_site": "signed for another site",
    "bad_signature": "not signed by the fleet key this device trusts",
    "invalid_policy": "the policy does not pass the config file's checks",
    "not_newer": "not newer than the policy in force",
}


class PolicyRejected(Exception):
    """A policy message the device will not apply; `reason` is a key of REJECT_REASONS."""

    def __init__(self, reason: str, detail: str = "") -> None:
        assert reason in REJECT_REASONS, reason
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail or REJECT_REASONS[reason]}")


# -- topics ----------------------------------------------------------------------------------------


def _check_id(value: str) -> str:
    if not re.fullmatch(ID_PATTERN, value):
        raise ValueError(f"not an id: {value!r}")
    return value


def device_topic(prefix: str, site: str, device: str, leaf: Literal["state", "counters", "policy_ack"]) -> str:
    return f"{prefix}/{_check_id(site)}/{_check_id(device)}/{leaf}"


def policy_topic(prefix: str, site: str) -> str:
    return f"{prefix}/{_check_id(site)}/policy"


def parse_device_topic(prefix: str, topic: str) -> tuple[str, str, str] | None:
    """(site, device, leaf) of a device topic under `prefix`, or None for anything else."""
    head = prefix + "/"
    if not topic.startswith(head):
        return None
    parts = topic[len(head):].split("/")
    if len(parts) != 3 or parts[2] not in ("state", "counters", "policy_ack"):
        return None
    site, device, leaf = parts
    if not (re.fullmatch(ID_PATTERN, site) and re.fullmatch(ID_PATTERN, device)):
        return None
    return site, device, leaf


# -- payloads --------------------------------------------------------------------------------------


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OutboxState(_Message):
    depth: int = Field(ge=0, description="Records waiting to be uploaded")
    oldest_age_s: float | None = Field(None, ge=0, description="Age of the oldest waiting record")


class DeviceState(_Message):
    """The retained state of one device. Counts and device facts only: nothing about a person."""

    v: Literal[1] = PROTOCOL_VERSION
    site: str = Field(pattern=ID_PATTERN)
    device: str = Field(pattern=ID_PATTERN)
    online: bool
    sent_at: datetime | None = Field(None, description="Device wall clock when sent")
    version: str | None = Field(None, max_length=64, description="Software version")
    uptime_s: float | None = Field(None, ge=0)
    outbox: OutboxState | None = None
    alarms: list[str] = Field(default_factory=list, max_length=32)
    camera: str | None = Field(None, max_length=32, description="ok / fault / none")
    gate: str | None = Field(None, max_length=32, description="closed / open / fault / none")
    door: str | None = Field(None, max_length=32, description="closed / open / unknown / none")
    clock_offset_s: float | None = Field(None, description="Service clock minus device clock")
    last_check_at: datetime | None = None
    policy_version: int | None = Field(None, ge=0, description="Remote policy version in force (None: the config file's)")


def offline_state(site: str, device: str) -> DeviceState:
    """The last will the broker publishes for a device that went away without a word."""
    return DeviceState(site=site, device=device, online=False)


class MinuteCounters(_Message):
    """Checks in one minute of the device's clock, by verdict."""

    v: Literal[1] = PROTOCOL_VERSION
    site: str = Field(pattern=ID_PATTERN)
    device: str = Field(pattern=ID_PATTERN)
    minute: datetime = Field(description="Start of the minute (UTC)")
    checks: int = Field(0, ge=0)
    passed: int = Field(0, ge=0, description="pass verdicts")
    denied: int = Field(0, ge=0, description="deny verdicts")
    manual: int = Field(0, ge=0, description="staff checks (manual_check)")
    offline: int = Field(0, ge=0, description="verdicts made by the offline policy")
    decode_failures: int = Field(0, ge=0, description="codes seen but not read / not understood")


class SignedPolicy(_Message):
    v: Literal[1] = PROTOCOL_VERSION
    site: str = Field(pattern=ID_PATTERN)
    version: int = Field(ge=1, description="Increases with every change; the device refuses older or equal")
    issued_at: datetime
    policy: dict[str, Any]
    signature: str = Field(description="Ed25519 signature (base64) of canonical_json of the other fields")


class PolicyAck(_Message):
    v: Literal[1] = PROTOCOL_VERSION
    site: str = Field(pattern=ID_PATTERN)
    device: str = Field(pattern=ID_PATTERN)
    version: int | None = Field(None, description="The remote policy version in force (None: the config file's)")
    rejected_version: int | None = Field(None, description="The last version refused, if the last message was refused")
    reason: str | None = Field(None, description="Why (a key of REJECT_REASONS)")
    at: datetime | None = None


# -- signing ---------------------------------------------------------------------------------------


def canonical_json(obj: Any) -> bytes:
    """The bytes a signature covers: sorted keys, no whitespace, UTF-8, datetimes in ISO 8601."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_iso).encode("utf-8")


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


def _signed_part(site: str, version: int, issued_at: datetime, policy: dict[str, Any]) -> bytes:
    return canonical_json({"v": PROTOCOL_VERSION, "site": site, "version": version, "issued_at": issued_at, "policy": policy})


def generate_signing_key() -> tuple[bytes, bytes]:
    """A new Ed25519 key pair as (private PEM, public PEM)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


def load_private_key(pem: bytes) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the fleet signing key must be an Ed25519 key")
    return key


def load_public_key(pem: bytes) -> Any:
    """An Ed25519 public key from PEM; ValueError for anything else."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the fleet policy key must be an Ed25519 public key")
    return key


def sign_policy(private_key: Any, site: str, version: int, issued_at: datetime, policy: PolicyConfig | dict[str, Any]) -> bytes:
    """The retained message for `policy_topic(prefix, site)`. The policy is validated first: the
    fleet side never signs what a device would refuse as invalid."""
    data = policy.model_dump(mode="json") if isinstance(policy, PolicyConfig) else PolicyConfig.model_validate(policy).model_dump(mode="json")
    signature = private_key.sign(_signed_part(site, version, issued_at, data))
    message = SignedPolicy(site=site, version=version, issued_at=issued_at, policy=data, signature=base64.b64encode(signature).decode("ascii"))
    return message.model_dump_json().encode("utf-8")


def verify_policy(public_key: Any, payload: bytes, *, site: str, current_version: int | None) -> tuple[int, PolicyConfig]:
    """(version, policy) of a signed policy message for `site` newer than `current_version`;
    PolicyRejected (and only that) for anything else."""
    from cryptography.exceptions import InvalidSignature

    if len(payload) > MAX_MESSAGE_BYTES:
        raise PolicyRejected("too_large")
    try:
        message = SignedPolicy.model_validate_json(payload)
        signature = base64.b64decode(message.signature, validate=True)
    except (ValidationError, ValueError, binascii.Error) as exc:
        raise PolicyRejected("malformed", _short(exc)) from None
    if message.site != site:
        raise PolicyRejected("wrong_site", f"for site {message.site}")
    try:
        public_key.verify(signature, _signed_part(message.site, message.version, message.issued_at, message.policy))
    except (InvalidSignature, ValueError):
        raise PolicyRejected("bad_signature") from None
    if current_version is not None and message.version <= current_version:
        raise PolicyRejected("not_newer", f"version {message.version}, running {current_version}")
    try:
        policy = PolicyConfig.model_validate(message.policy)
    except ValidationError as exc:
        raise PolicyRejected("invalid_policy", _short(exc)) from None
    return message.version, policy


def _short(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]

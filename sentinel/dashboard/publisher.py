"""The district's signing key and the signed, retained policy of a site.

`keygen(out_dir)` writes a new Ed25519 pair: `fleet-policy.key` (private, 0600, stays with the
publisher) and `fleet-policy.pub` (public, goes into every sentinel's `[fleet]
policy_public_key_file`). `load_policy_file` reads a policy from TOML (a `[policy]` table, as in a
sentinel's config file, or the table's keys at the top) or JSON and validates it with the config
file's own `PolicyConfig`. `publish_policy` signs it (protocol.sign_policy) and publishes it
retained, QoS 1, on `<prefix>/<site>/policy`, waiting until the broker has it: every sentinel of the
site gets it now or when it next connects.

How it fails: a policy the config file would refuse raises ValueError (one line per problem) before
anything is signed; an existing key is never overwritten (FileExistsError); a private key that is
not Ed25519 raises ValueError; a broker that does not take the message in time raises
ConnectionError. Nothing is retried silently: the operator runs the command again.
"""

from __future__ import annotations

import json
import os
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sentinel.config import PolicyConfig
from sentinel.fleet.protocol import (
    DEFAULT_PREFIX,
    generate_signing_key,
    load_private_key,
    policy_topic,
    sign_policy,
)

PRIVATE_NAME = "fleet-policy.key"
PUBLIC_NAME = "fleet-policy.pub"
PUBLISH_TIMEOUT_S = 15.0


def keygen(out_dir: Path) -> tuple[Path, Path]:
    """(private, public) key files written into `out_dir` (made 0700 if new)."""
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    private_path, public_path = out_dir / PRIVATE_NAME, out_dir / PUBLIC_NAME
    for path in (private_path, public_path):
        if path.exists():
            raise FileExistsError(f"{path} exists; a new key would lock every sentinel out of policy updates until they get the new public key")
    private, public = generate_signing_key()
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private)
    public_path.write_bytes(public)
    return private_path, public_path


def policy_errors(exc: ValidationError) -> list[str]:
    return [f"policy.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]


def load_policy_file(path: Path) -> PolicyConfig:
    """A policy from a .toml or .json file; ValueError (one line per problem) for anything else."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    try:
        data: Any = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path} is not {'JSON' if path.suffix.lower() == '.json' else 'TOML'}: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("policy"), dict):
        data = data["policy"]
    try:
        return PolicyConfig.model_validate(data)
    except ValidationError as exc:
        raise ValueError("\n".join(policy_errors(exc))) from None


def signed_policy(private_key_pem: bytes, site: str, version: int, policy: PolicyConfig | dict[str, Any], issued_at: datetime | None = None) -> bytes:
    """The retained message for a site's policy topic (validated, then signed)."""
    if isinstance(policy, dict):
        try:
            policy = PolicyConfig.model_validate(policy)
        except ValidationError as exc:
            raise ValueError("\n".join(policy_errors(exc))) from None
    if version < 1:
        raise ValueError("the policy version starts at 1 and increases with every change")
    return sign_policy(load_private_key(private_key_pem), site, version, issued_at or datetime.now(UTC), policy)


def publish_policy(
    client: Any,
    *,
    site: str,
    version: int,
    private_key_pem: bytes,
    policy: PolicyConfig | dict[str, Any],
    prefix: str = DEFAULT_PREFIX,
    issued_at: datetime | None = None,
    timeout_s: float = PUBLISH_TIMEOUT_S,
) -> bytes:
    """Sign and publish (retained, QoS 1) on a connected paho client; the payload sent."""
    payload = signed_policy(private_key_pem, site, version, policy, issued_at)
    return publish_signed(client, site=site, payload=payload, prefix=prefix, timeout_s=timeout_s)


def publish_signed(client: Any, *, site: str, payload: bytes, prefix: str = DEFAULT_PREFIX, timeout_s: float = PUBLISH_TIMEOUT_S) -> bytes:
    """Publish an already signed message (retained, QoS 1); waits until the broker has it."""
    info = client.publish(policy_topic(prefix, site), payload, qos=1, retain=True)
    try:
        info.wait_for_publish(timeout_s)
    except (RuntimeError, ValueError) as exc:
        raise ConnectionError(f"the broker did not take the policy: {exc}") from None
    if not info.is_published():
        raise ConnectionError(f"the broker did not acknowledge the policy within {timeout_s:.0f} s")
    return payload

"""The `[fleet]` section of the device config: where the district's MQTT broker is, how this device
logs in, and whether it takes the site's policy from it.

One model, `FleetConfig`, validated like every other section (unknown keys are errors, every key
has a title and a description for `sentinel check-config`). It lives here and not in
sentinel/config.py because sentinel/fleet/protocol.py imports that module (for `PolicyConfig`):
sentinel/config.py imports this one to put `fleet: FleetConfig` in `SentinelConfig`, and this one
imports only sentinel/config_section.py (the sections' base), so there is no import circle. The
default topic prefix and its pattern live here, and sentinel/fleet/protocol.py takes them from here.

How it fails: a half-configured link is refused when the file is loaded, not when the kiosk runs
(`type = "mqtt"` without a host, a client certificate without its key, TLS files given without
`tls = true`). What is only known at run time (a password file that cannot be read, a broker that
is down) is a log line and a retry in sentinel/fleet/link.py, never a kiosk that does not start.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import model_validator

from sentinel.config_section import Section
from sentinel.config_section import field as _field

#: the topics' default prefix and what a prefix may be (levels of ids, no wildcards); part of the wire format
DEFAULT_PREFIX = "sentinel"
PREFIX_PATTERN = r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$"
#: the broker's host name or address: no scheme, no path, no spaces
HOST_PATTERN = r"^[A-Za-z0-9._:\[\]-]{1,253}$"


class FleetConfig(Section):
    type: Literal["none", "mqtt"] = _field(
        "none", "Fleet link", "mqtt: report to the district's MQTT broker and take the site's signed policy from it; none: an island")
    host: str = _field("", "Broker host", "Host name or address of the MQTT broker (required with type = mqtt)",
                       max_length=253)
    port: int | None = _field(None, "Broker port", "TCP port of the broker; default 8883 with TLS, 1883 without", ge=1, le=65535)
    tls: bool = _field(False, "TLS", "Connect with TLS (strongly advised off a closed LAN: the password crosses the network)")
    ca_file: Path | None = _field(
        None, "CA file", "PEM file of the CA that signed the broker's certificate; empty: the system's trust store")
    cert_file: Path | None = _field(None, "Client certificate", "PEM client certificate for brokers that want one (with key_file)")
    key_file: Path | None = _field(None, "Client key", "PEM private key of cert_file")
    username: str = _field("", "Username", "This device's own broker user; empty: log in anonymously", max_length=128)
    password_file: Path | None = _field(
        None, "Password file", "File holding this device's broker password (first line); readable by the service only")
    topic_prefix: str = _field(DEFAULT_PREFIX, "Topic prefix", "Topics are <prefix>/<site>/<device>/…", pattern=PREFIX_PATTERN,
                               max_length=128)
    keepalive_s: int = _field(
        30, "Keepalive", "Seconds between pings; the broker declares the device offline about 1.5 keepalives after it vanished",
        ge=5, le=600)
    state_every_s: float = _field(60.0, "State every", "The device's state is sent on every change and at least this often (seconds)",
                                  ge=5, le=3600)
    buffer_max: int = _field(
        1440, "Buffer", "Messages held while the broker is unreachable (one per minute that saw checks); past it the oldest "
        "minutes' counters are dropped and counted", ge=1, le=100_000)
    reconnect_max_s: float = _field(60.0, "Longest reconnect wait", "Back-off cap between attempts to reach the broker (seconds)",
                                    ge=1, le=3600)
    policy_public_key_file: Path | None = _field(
        None, "Policy public key", "Ed25519 public key (PEM) of the fleet's policy signer; empty: remote policy is off")
    accept_remote_policy: bool = _field(
        True, "Accept remote policy", "Apply the site's signed policy from the broker (needs policy_public_key_file); "
        "false: the [policy] section of this file only")

    @model_validator(mode="after")
    def _coherent(self) -> FleetConfig:
        if self.type == "mqtt" and not self.host:
            raise ValueError("fleet.type = mqtt needs fleet.host (the broker)")
        if self.host and not _host_ok(self.host):
            raise ValueError(f"fleet.host {self.host!r} is not a host name or address (no scheme, no path)")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("fleet.cert_file and fleet.key_file go together")
        if not self.tls and (self.ca_file or self.cert_file):
            raise ValueError("fleet.ca_file / cert_file are TLS settings: set fleet.tls = true")
        if self.password_file is not None and not self.username:
            raise ValueError("fleet.password_file needs fleet.username")
        return self

    @property
    def broker_port(self) -> int:
        return self.port if self.port is not None else (8883 if self.tls else 1883)

    @property
    def remote_policy_off_reason(self) -> str | None:
        """Why this device will not take a remote policy, or None when it will."""
        if not self.accept_remote_policy:
            return "fleet.accept_remote_policy = false"
        if self.policy_public_key_file is None:
            return "no fleet.policy_public_key_file: without the fleet's public key no policy message can be trusted"
        return None


def _host_ok(host: str) -> bool:
    return re.fullmatch(HOST_PATTERN, host) is not None

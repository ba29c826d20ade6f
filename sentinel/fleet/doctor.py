"""`sentinel doctor`'s fleet line: can this device log in to its MQTT broker, with the credentials
and TLS of its config, and would it trust the site's policy there?

    PASS  fleet      broker mqtt.example:8883 (TLS) accepted fleet-dev-17; site policy version 4 at the broker (signature good)
    FAIL  fleet      broker 10.0.0.5:1883 refused the login: Not authorized -- hint: check fleet.username and its password file
    SKIP  fleet      fleet.type = none: this device reports to no broker

It connects with a client id of its own (`sentinel-doctor-<site>-<device>`), so a running kiosk's
link is not disconnected, publishes nothing, and reads the site's retained policy only to say
whether it is there and signed by the key this device trusts. A plain-text login to a broker that
is not on this machine is a WARN: it works, but the password crosses the network readable.

How it fails: every problem is a FAIL line with a hint (a password, CA or key file that cannot be
read, a name that does not resolve, a refused connection or TLS handshake, a refused login, no
CONNACK within CONNECT_TIMEOUT_S); nothing raises to the doctor, and the password is never shown.
"""

from __future__ import annotations

import ipaddress
import threading
from typing import Any

from sentinel.textsafe import printable

PASS, FAIL, SKIP, WARN = "PASS", "FAIL", "SKIP", "WARN"  # as sentinel/commands/doctor.py
#: seconds to wait for the broker's CONNACK, and then for a retained policy message
CONNECT_TIMEOUT_S = 10.0
POLICY_WAIT_S = 2.0


def check_fleet(config: Any) -> tuple[str, str] | tuple[str, str, str]:
    """(status, message[, hint]) for the doctor (sentinel/commands/doctor.py `Doctor.check_fleet`)."""
    fleet = config.fleet
    if fleet.type == "none":
        return SKIP, "fleet.type = none: this device reports to no broker"
    try:
        import paho.mqtt.client  # noqa: F401
    except ImportError as e:
        return FAIL, f"paho-mqtt cannot be loaded: {e}", "sudo ./install.sh installs it"
    from sentinel.fleet import protocol
    from sentinel.fleet.mqtt import make_client

    where = f"{fleet.host}:{fleet.broker_port}{' (TLS)' if fleet.tls else ''}"
    try:
        client = make_client(fleet, f"sentinel-doctor-{config.device.site_id}-{config.device.id}")
    except (OSError, ValueError) as e:
        return FAIL, f"cannot set up the broker login: {printable(e)}", "check fleet.password_file / ca_file / cert_file / key_file (run as root)"
    connected = threading.Event()
    answer: dict[str, Any] = {}
    policies: list[bytes] = []
    got_policy = threading.Event()
    topic = protocol.policy_topic(fleet.topic_prefix, config.device.site_id)

    def on_connect(client, userdata, flags, reason_code, properties=None):
        answer["rc"] = reason_code
        connected.set()
        if not reason_code.is_failure:
            client.subscribe(topic, qos=1)

    def on_message(client, userdata, message):
        if message.topic == topic:
            policies.append(bytes(message.payload))
            got_policy.set()

    client.on_connect = on_connect
    client.on_message = on_message
    try:
        client.connect(fleet.host, fleet.broker_port, keepalive=fleet.keepalive_s)
    except OSError as e:  # refused, no route, unknown name, a TLS handshake that failed (ssl.SSLError)
        hint = "is the CA in fleet.ca_file the one that signed the broker's certificate?" if "certificate" in str(e).lower() else (
            "check fleet.host and fleet.port, and that the broker is up and reachable from here")
        return FAIL, f"cannot reach the broker at {where}: {printable(e)}", hint
    client.loop_start()
    try:
        if not connected.wait(CONNECT_TIMEOUT_S):
            return FAIL, f"no answer from the broker at {where} within {CONNECT_TIMEOUT_S:.0f} s", "is it an MQTT broker on that port (TLS on 8883)?"
        rc = answer["rc"]
        if rc.is_failure:
            return FAIL, f"broker {where} refused the login: {printable(rc)}", "check fleet.username and its password file"
        who = printable(fleet.username) or "anonymous"
        message = f"broker {where} accepted {who}"
        policy_note, policy_fail = _policy_note(fleet, config.device.site_id, policies, got_policy)
        message += f"; {policy_note}"
        if policy_fail:
            return FAIL, message, policy_fail
        if not fleet.tls and fleet.username and not _loopback(fleet.host):
            return WARN, f"{message}; but without TLS the password crosses the network readable", "set fleet.tls = true (port 8883)"
        return PASS, message
    finally:
        try:
            client.disconnect()
        finally:
            client.loop_stop()


def _policy_note(fleet: Any, site: str, policies: list[bytes], got_policy: threading.Event) -> tuple[str, str]:
    """(what to say about remote policy, a hint when it is a failure or "")."""
    from pathlib import Path

    from sentinel.fleet import protocol

    off = fleet.remote_policy_off_reason
    if off is not None:
        return f"remote policy off ({off})", ""
    try:
        key = protocol.load_public_key(Path(fleet.policy_public_key_file).read_bytes())
    except (OSError, ValueError) as e:
        return f"the policy key cannot be used: {printable(e)}", "fleet.policy_public_key_file must be the fleet's Ed25519 public key (PEM)"
    got_policy.wait(POLICY_WAIT_S)
    if not policies:
        return "no site policy at the broker yet (the config file's policy runs)", ""
    try:
        version, _ = protocol.verify_policy(key, policies[-1], site=site, current_version=None)
    except protocol.PolicyRejected as e:
        return f"the site policy at the broker would be refused ({e.reason})", (
            "is fleet.policy_public_key_file the key of the service that signs this site's policy?")
    return f"site policy version {version} at the broker (signature good)", ""


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False

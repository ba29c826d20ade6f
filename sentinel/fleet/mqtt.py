"""The paho-mqtt client as a `[fleet]` section sets it up: this device's login, TLS and reconnect
back-off; and how to tell that a message handed to paho needs no more watching. Shared by the
link (sentinel/fleet/link.py) and `sentinel doctor` (sentinel/fleet/doctor.py), so that doctor
logs in exactly as the running kiosk does.

How it fails: `make_client` raises OSError / ValueError / ssl.SSLError for a password, CA or client
certificate file that cannot be read, naming the file and never the password; paho is imported
only here and only when called, so a kiosk without a fleet link never loads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sentinel.fleet.config import FleetConfig

#: seconds the first reconnect waits (doubling up to reconnect_max_s)
RECONNECT_MIN_S = 1


def read_password(path: Path) -> str:
    """The first line of the password file; OSError / ValueError when it cannot be used."""
    text = Path(path).read_text(encoding="utf-8")
    password = text.splitlines()[0].strip() if text.strip() else ""
    if not password:
        raise ValueError(f"{path} is empty")
    return password


def make_client(config: FleetConfig, client_id: str) -> Any:
    """A paho client set up with this config's credentials and TLS (not connected). Raises
    OSError / ValueError / ssl.SSLError for a password, CA or client certificate file that cannot
    be read; the message names the file, never the password."""
    import paho.mqtt.client as mqtt  # deferred: only a kiosk with a fleet link loads paho

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True,
                         protocol=mqtt.MQTTv311)
    if config.username:
        password = read_password(config.password_file) if config.password_file is not None else None
        client.username_pw_set(config.username, password)
    if config.tls:
        client.tls_set(
            ca_certs=str(config.ca_file) if config.ca_file else None,  # None: the system's trust store
            certfile=str(config.cert_file) if config.cert_file else None,
            keyfile=str(config.key_file) if config.key_file else None,
        )
    client.reconnect_delay_set(RECONNECT_MIN_S, max(RECONNECT_MIN_S, int(config.reconnect_max_s)))
    return client


def settled(info: Any) -> bool:
    """Whether a message handed to paho needs no more watching. paho's `is_published` raises for a
    message it took while the connection was dropping (MQTT_ERR_NO_CONN): paho keeps that QoS 1
    message and sends it after reconnecting, so it is no longer ours to track (and asking again
    would raise on every round, stopping the sender for good)."""
    try:
        return bool(info.is_published())
    except (RuntimeError, ValueError):
        return True

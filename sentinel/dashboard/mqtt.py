"""How the fleet side (dashboard, policy publisher, simulated devices) reaches an MQTT broker.

`BrokerAddress.parse("HOST:PORT")` reads `--broker` (an IPv6 host in brackets: `[::1]:1883`);
`client(...)` makes a paho-mqtt 2.x client (MQTT 3.1.1, the callback API version 2) with the
address's credentials and TLS, and `connect_and_wait` connects it and waits for the broker's
answer. paho is imported here only, when a client is made, so `sentinel fleet keygen` runs without it.

How it fails: `parse` raises ValueError with a one-line reason for a malformed address;
`connect_and_wait` raises ConnectionError (refused, unreachable, or no answer within the timeout)
with the broker's reason code, never a paho internals traceback.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_PORT = 1883
CONNECT_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int = DEFAULT_PORT
    username: str | None = None
    password_file: Path | None = None
    cafile: Path | None = None  # set: TLS, the broker's certificate checked against this CA

    @classmethod
    def parse(cls, text: str, *, port_zero: bool = False, **kwargs: Any) -> BrokerAddress:
        """HOST:PORT (`port_zero`: 0 allowed, for a listening address: any free port)."""
        text = text.strip()
        host, sep, port = text.rpartition(":") if not text.endswith("]") else (text, "", "")
        if not sep:
            host, port = text, str(DEFAULT_PORT)
        host = host.strip("[]")
        if not host or not port.isdigit() or not (0 if port_zero else 1) <= int(port) < 65536:
            raise ValueError(f"not a broker address (HOST:PORT): {text!r}")
        return cls(host=host, port=int(port), **kwargs)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.cafile else 'mqtt'}://{host}:{self.port}"


def client(address: BrokerAddress, client_id: str = "") -> Any:
    import paho.mqtt.client as mqtt

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
    if address.username is not None:
        password = address.password_file.read_text().strip() if address.password_file else None
        c.username_pw_set(address.username, password)
    if address.cafile is not None:
        c.tls_set(ca_certs=str(address.cafile))
    c.reconnect_delay_set(min_delay=1, max_delay=10)
    return c


def connect_and_wait(c: Any, address: BrokerAddress, *, keepalive: int = 30, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Connect `c` (its network loop on its own thread) and wait for the broker's CONNACK."""
    answered = threading.Event()
    outcome: list[Any] = []
    previous = c.on_connect

    def on_connect(cl, userdata, flags, reason_code, properties):
        outcome.append(reason_code)
        answered.set()
        if previous is not None:
            previous(cl, userdata, flags, reason_code, properties)

    c.on_connect = on_connect
    try:
        c.connect(address.host, address.port, keepalive=keepalive)
    except OSError as exc:
        raise ConnectionError(f"cannot reach the broker at {address}: {exc}") from None
    c.loop_start()
    if not answered.wait(timeout_s):
        c.loop_stop()
        raise ConnectionError(f"no answer from the broker at {address} within {timeout_s:.0f} s")
    c.on_connect = previous if previous is not None else None
    if outcome and outcome[0].is_failure:
        c.loop_stop()
        raise ConnectionError(f"the broker at {address} refused the connection: {outcome[0]}")

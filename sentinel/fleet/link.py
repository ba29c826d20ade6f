"""The device's link to the district's MQTT broker: telemetry out, the site's signed policy in.

    link = FleetLink(config.fleet, site=..., device=..., state_dir=..., health=kiosk.health,
                     apply_policy=lambda p: pipeline.reconfigure(policy=p))
    link.start()                    # returns at once; connects in the background, forever
    link.observe_outcome(outcome)   # on every check (the pipeline's on_outcome): O(1), never blocks
    link.stop()                     # online=false, then a clean disconnect

What goes out (topics and payloads: sentinel/fleet/protocol.py):
- the device's **state**, retained, when something worth telling changes (alarms, camera, a gate
  or door fault, the policy in force: `telemetry.state_key`), at once after every (re)connect,
  and at least every `state_every_s`. The broker holds the device's last will on the same topic
  (`protocol.offline_state`, retained), so a device that dies reads as offline about 1.5
  keepalives later; `stop()` publishes online=false itself.
- **counters**, not retained, one message per minute of the device's clock that saw checks.
- the **policy ack**, retained: the remote policy version in force, and the last refusal.

Threads. `count()` and `observe_outcome()` are on the check's path: they only add to
`telemetry.MinuteCounts` under its lock. Everything else runs on two background threads: paho's
network loop (connects, reconnects with back-off up to `reconnect_max_s`, calls the callbacks)
and this link's own sender thread (wakes every TICK_S: moves finished minutes into the buffer,
reads `health()` every HEALTH_EVERY_S to build the state, and hands buffered messages to paho
while connected). Nothing the caller does waits on the broker.

The buffer while the broker is unreachable is bounded: `buffer_max` counters messages, plus the
newest state and the newest ack (older ones are replaced: retained topics only need the last).
When it is full the oldest minute's counters are dropped and counted (`status()["dropped"]`, and a
warning the first time). Messages handed to paho (at most MAX_IN_FLIGHT at a time, QoS 1) are
resent by paho after a reconnect.

Remote policy. With `policy_public_key_file` and `accept_remote_policy`, the link subscribes to
the site's policy topic. Each message is checked by `protocol.verify_policy` (signature with the
configured Ed25519 key, the site, the policy with the config file's own `PolicyConfig`), and must
be newer than the version in force; then it is applied through `apply_policy` (no restart),
persisted (the signed message itself, written atomically to `<state_dir>/fleet-policy.json`) and
acknowledged. The version in force survives restarts, so an older retained message is refused
after a restart too, and the persisted policy is re-verified and applied at `start()`, before the
broker answers. A message that is malformed, too large, for another site, signed by another key,
not newer, or whose policy does not pass the config checks is refused: the policy in force stays,
a warning says why, and the ack carries `rejected_version` and `reason` (a key of
`protocol.REJECT_REASONS`). The same version as the one in force (the retained message seen again
after every reconnect) is not a refusal. Text from the network reaches the log only through
`textsafe.printable`.

How it fails: never to the caller. A broker that is down or refuses the login, a password or TLS
file that cannot be read, a `health()` that raises, an `apply_policy` that raises, a state
directory that cannot be written: each is a log line (a warning the first time, then quiet until
it works again), `status()["last_error"]`, and a retry. The password is read from its file when
connecting and handed to paho only; it is never logged nor put in `status()`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sentinel import __version__
from sentinel.atomic import write_atomic
from sentinel.config import PolicyConfig
from sentinel.fleet import protocol
from sentinel.fleet.config import FleetConfig
from sentinel.fleet.mqtt import make_client, settled
from sentinel.fleet.telemetry import MinuteCounts, build_state, counters_messages, outcome_kind, state_key
from sentinel.state_files import FLEET_POLICY_NAME  # the signed message in force, as received
from sentinel.textsafe import printable

log = logging.getLogger("sentinel.fleet")

#: seconds between the sender thread's rounds
TICK_S = 0.5
#: seconds between two readings of health() (sooner after publish_state_now or a (re)connect)
HEALTH_EVERY_S = 5.0
#: messages handed to paho and not yet acknowledged by the broker, at most
MAX_IN_FLIGHT = 32


class FleetLink:
    """See the module docstring."""

    def __init__(
        self,
        config: FleetConfig,
        *,
        site: str,
        device: str,
        state_dir: Path | None,
        health: Callable[[], dict[str, Any]],
        apply_policy: Callable[[PolicyConfig], None],
        version: str = __version__,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        self.site = site
        self.device = device
        self.state_dir = state_dir
        self._health = health
        self._apply_policy = apply_policy
        self.version = version
        self._clock = clock
        self._wall = wall
        prefix = config.topic_prefix
        self.state_topic = protocol.device_topic(prefix, site, device, "state")  # ValueError for a bad id: at build time
        self.counters_topic = protocol.device_topic(prefix, site, device, "counters")
        self.ack_topic = protocol.device_topic(prefix, site, device, "policy_ack")
        self.policy_topic = protocol.policy_topic(prefix, site)
        self._counts = MinuteCounts(wall)
        self._lock = threading.Lock()  # the buffer, the connection facts
        self._counters: deque[bytes] = deque()
        self._state_out: bytes | None = None
        self._ack_out: bytes | None = None
        self._in_flight: list[Any] = []
        self.dropped = 0
        self._connected = False
        self._last_error: str | None = None
        self._last_connected_at: datetime | None = None
        self._failing = False  # warned about the broker; quiet until it works again
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._state_due = True  # publish the state at the next round (start, connect, publish_state_now)
        self._last_state_key: tuple | None = None
        self._last_state_at: float | None = None
        self._last_health_at: float | None = None
        self._client: Any = None
        self._next_client_at = 0.0
        self._thread: threading.Thread | None = None
        # remote policy
        self._policy_lock = threading.Lock()
        self._policy_version: int | None = None
        self._policy: PolicyConfig | None = None
        self._rejection: tuple[int | None, str] | None = None
        self._public_key: Any = None
        self.remote_policy_off: str | None = config.remote_policy_off_reason

    # -- the caller's side ---------------------------------------------------------------------------

    def start(self) -> None:
        """Load the key and the persisted policy (applied now), then connect in the background."""
        if self._thread is not None:
            return
        if self.remote_policy_off is None:
            try:
                self._public_key = protocol.load_public_key(Path(self.config.policy_public_key_file).read_bytes())
            except (OSError, ValueError) as e:
                self.remote_policy_off = f"the fleet policy key {self.config.policy_public_key_file} cannot be used: {printable(e)}"
        if self.remote_policy_off is not None:
            log.warning("fleet: remote policy off (%s): this device runs the [policy] of its config file only", self.remote_policy_off)
        else:
            self._load_persisted_policy()
        self._thread = threading.Thread(target=self._run, name="sentinel-fleet", daemon=True)
        self._thread.start()

    def count(self, kind: Literal["pass", "deny", "manual", "decode_failure"], *, offline: bool = False) -> None:
        """One check (or decode failure) now, for this minute's counters. O(1), never blocks on
        the network, never raises."""
        try:
            self._counts.add(kind, offline)
        except Exception:
            log.debug("fleet: count failed", exc_info=True)

    def observe_outcome(self, outcome: Any) -> None:
        """A pipeline `CheckOutcome` (the kiosk's on_outcome chain) counted by its verdict."""
        try:
            kind = outcome_kind(outcome)
            if kind is not None:
                self._counts.add(kind[0], kind[1])
        except Exception:
            log.debug("fleet: counting an outcome failed", exc_info=True)

    def publish_state_now(self) -> None:
        """Something in the state changed (an alarm): send it at the next round, without waiting."""
        self._state_due = True
        self._wake.set()

    @property
    def policy_version(self) -> int | None:
        """The remote policy version in force; None: the config file's policy."""
        return self._policy_version

    def status(self) -> dict[str, Any]:
        """For `doctor` and the technician: connection, buffer, drops, last error, policy."""
        with self._lock:
            in_flight = sum(1 for info in self._in_flight if not settled(info))
            buffered = len(self._counters) + (self._state_out is not None) + (self._ack_out is not None) + in_flight
            rejection = self._rejection
            return {
                "type": "mqtt",
                "broker": f"{self.config.host}:{self.config.broker_port}",
                "tls": self.config.tls,
                "connected": self._connected,
                "last_connected_at": self._last_connected_at.isoformat() if self._last_connected_at else None,
                "buffered": buffered,
                "dropped": self.dropped,
                "last_error": self._last_error,
                "remote_policy": "on" if self.remote_policy_off is None else f"off: {self.remote_policy_off}",
                "policy_version": self._policy_version,
                "last_rejection": None if rejection is None else {"version": rejection[0], "reason": rejection[1]},
            }

    def stop(self, timeout_s: float = 2.0) -> None:
        """Counters so far and an online=false state out (when connected), then disconnect. Returns
        within about `timeout_s`, whatever the broker does."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
        client = self._client
        if client is None:
            return
        try:
            self._collect_counters(everything=True)
            offline = protocol.offline_state(self.site, self.device).model_copy(
                update={"sent_at": self._wall(), "version": self._version_field(), "policy_version": self._policy_version})
            with self._lock:
                self._state_out = offline.model_dump_json().encode()
            if self._connected:
                while self._drain(client) and time.monotonic() < deadline:
                    time.sleep(0.01)
                while time.monotonic() < deadline and self._connected and not self._all_published():
                    time.sleep(0.01)
            client.disconnect()
        except Exception:
            log.debug("fleet: error while stopping", exc_info=True)
        ender = threading.Thread(target=client.loop_stop, name="sentinel-fleet-stop", daemon=True)
        ender.start()
        ender.join(max(0.05, deadline - time.monotonic()))
        with self._lock:
            self._connected = False
        log.info("fleet: link to %s closed", self.status()["broker"])

    # -- the sender thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._round()
            except Exception:
                log.exception("fleet: sender round failed")
            self._wake.wait(TICK_S)
            self._wake.clear()

    def _round(self) -> None:
        if self._client is None:
            self._open_client()
        self._collect_counters()
        self._collect_state()
        client = self._client
        if client is not None and self._connected:
            self._drain(client)

    def _open_client(self) -> None:
        now = self._clock()
        if now < self._next_client_at:
            return
        try:
            client = make_client(self.config, f"sentinel-{self.site}-{self.device}")
        except Exception as e:  # noqa: BLE001 - a file that cannot be read: said, retried
            self._next_client_at = now + self.config.reconnect_max_s
            self._error(f"cannot set up the broker login: {printable(e)}")
            return
        client.will_set(self.state_topic, protocol.offline_state(self.site, self.device).model_dump_json(), qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.max_inflight_messages_set(MAX_IN_FLIGHT)
        client.connect_async(self.config.host, self.config.broker_port, keepalive=self.config.keepalive_s)
        client.loop_start()
        self._client = client
        log.info("fleet: connecting to %s:%d%s as %s", self.config.host, self.config.broker_port, " (TLS)" if self.config.tls else "",
                 printable(self.config.username) or "anonymous")

    def _collect_counters(self, everything: bool = False) -> None:
        minutes = self._counts.take(everything=everything)
        if not minutes:
            return
        messages = [m.model_dump_json().encode() for m in counters_messages(self.site, self.device, minutes)]
        with self._lock:
            for payload in messages:
                if len(self._counters) >= self.config.buffer_max:
                    self._counters.popleft()
                    self.dropped += 1
                    if self.dropped == 1:
                        log.warning("fleet: buffer full (%d messages): the oldest minutes' counters are being dropped",
                                    self.config.buffer_max)
                self._counters.append(payload)

    def _collect_state(self) -> None:
        now = self._clock()
        due = self._state_due
        periodic = self._last_state_at is None or now - self._last_state_at >= self.config.state_every_s
        if not (due or periodic or self._last_health_at is None or now - self._last_health_at >= HEALTH_EVERY_S):
            return
        self._state_due = False
        self._last_health_at = now
        try:
            health = self._health()
        except Exception as e:  # noqa: BLE001 - a broken health() still reports online
            log.debug("fleet: health() failed: %s", e)
            health = {}
        state = build_state(health, site=self.site, device=self.device, version=self._version_field(), sent_at=self._wall(),
                            policy_version=self._policy_version)
        key = state_key(state)
        if not (due or periodic or key != self._last_state_key):
            return
        self._last_state_key = key
        self._last_state_at = now
        with self._lock:
            self._state_out = state.model_dump_json().encode()

    def _version_field(self) -> str | None:
        return str(self.version)[:64] if self.version else None

    def _drain(self, client: Any) -> bool:
        """Hand buffered messages to paho (state, ack, then counters oldest first) while fewer
        than MAX_IN_FLIGHT are unacknowledged. True when something is still buffered."""
        import paho.mqtt.client as mqtt

        accepted = (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN)  # NO_CONN: paho keeps QoS 1 and sends it on reconnect
        with self._lock:
            self._in_flight = [info for info in self._in_flight if not settled(info)]
            while len(self._in_flight) < MAX_IN_FLIGHT:
                if self._state_out is not None:
                    topic, payload, retain = self.state_topic, self._state_out, True
                elif self._ack_out is not None:
                    topic, payload, retain = self.ack_topic, self._ack_out, True
                elif self._counters:
                    topic, payload, retain = self.counters_topic, self._counters[0], False
                else:
                    return False
                info = client.publish(topic, payload, qos=1, retain=retain)
                if info.rc not in accepted:
                    return True  # paho's own queue is full: try again next round
                self._in_flight.append(info)
                if topic == self.state_topic:
                    self._state_out = None
                elif topic == self.ack_topic:
                    self._ack_out = None
                else:
                    self._counters.popleft()
            return True

    def _all_published(self) -> bool:
        with self._lock:
            return all(settled(info) for info in self._in_flight)

    def _error(self, message: str) -> None:
        with self._lock:
            self._last_error = message
            first = not self._failing
            self._failing = True
        (log.warning if first else log.debug)("fleet: %s", message)

    # -- paho's thread -------------------------------------------------------------------------------

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any = None) -> None:
        if reason_code.is_failure:
            hint = " (check fleet.username and its password file)" if "authoriz" in str(reason_code).lower() or "password" in str(
                reason_code).lower() else ""
            self._error(f"the broker refused the connection: {printable(reason_code)}{hint}")
            return
        with self._lock:
            self._connected = True
            self._last_connected_at = self._wall()
            self._last_error = None
            recovered, self._failing = self._failing, False
        (log.info if recovered else log.debug)("fleet: connected to %s:%d", self.config.host, self.config.broker_port)
        if self.remote_policy_off is None:
            client.subscribe(self.policy_topic, qos=1)
            self._queue_ack()
        self.publish_state_now()

    def _on_publish(self, client: Any, userdata: Any, mid: Any, reason_code: Any = None, properties: Any = None) -> None:
        if self._counters:  # a flush after a reconnect: hand over the next ones now, not at the next round
            self._wake.set()

    def _on_connect_fail(self, client: Any, userdata: Any) -> None:
        self._error(f"cannot reach the broker at {self.config.host}:{self.config.broker_port}; retrying")

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any = None) -> None:
        with self._lock:
            was = self._connected
            self._connected = False
        if was and not self._stopping.is_set():
            self._error(f"connection to the broker lost ({printable(reason_code)}); buffering and retrying")

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        if message.topic != self.policy_topic or self.remote_policy_off is not None:
            return
        try:
            self.handle_policy(bytes(message.payload))
        except Exception:
            log.exception("fleet: policy message handling failed")

    # -- remote policy -------------------------------------------------------------------------------

    def handle_policy(self, payload: bytes) -> bool:
        """Check and apply one policy message (what arrives on the policy topic). True when it was
        applied; False when refused (the ack says why) or already in force."""
        if not payload:  # the retained message deleted at the broker: nothing to check, nothing changes
            log.info("fleet: the site policy was cleared at the broker; keeping %s", self._describe_in_force())
            return False
        with self._policy_lock:
            current = self._policy_version
            try:
                version, policy = protocol.verify_policy(self._public_key, payload, site=self.site, current_version=None)
                if current is not None and version <= current:
                    if version == current and policy == self._policy:
                        return False  # the message in force, seen again (after a reconnect)
                    raise protocol.PolicyRejected("not_newer", f"version {version}, running {current}")
                try:
                    self._apply_policy(policy)
                except Exception as e:  # noqa: BLE001 - the pipeline refused it: keep what runs
                    raise protocol.PolicyRejected("invalid_policy", f"could not be applied: {type(e).__name__}") from None
            except protocol.PolicyRejected as e:
                rejected = _claimed_version(payload)
                self._rejection = (rejected, e.reason)
                log.warning("fleet: policy message%s refused (%s: %s); keeping %s", "" if rejected is None else f" version {rejected}",
                            e.reason, printable(e.detail or protocol.REJECT_REASONS[e.reason]), self._describe_in_force())
                self._queue_ack()
                return False
            self._policy_version, self._policy, self._rejection = version, policy, None
            self._persist(payload)
            log.info("fleet: site policy version %d applied: %s", version, _summary(policy))
            self._queue_ack()
            self.publish_state_now()
            return True

    def _describe_in_force(self) -> str:
        return "the config file's policy" if self._policy_version is None else f"remote policy version {self._policy_version}"

    def _queue_ack(self) -> None:
        rejection = self._rejection
        ack = protocol.PolicyAck(site=self.site, device=self.device, version=self._policy_version,
                                 rejected_version=rejection[0] if rejection else None, reason=rejection[1] if rejection else None,
                                 at=self._wall())
        with self._lock:
            self._ack_out = ack.model_dump_json().encode()
        self._wake.set()

    def _persist(self, payload: bytes) -> None:
        if self.state_dir is None:
            return
        try:
            write_atomic(Path(self.state_dir) / FLEET_POLICY_NAME, payload)
        except OSError as e:
            log.error("fleet: cannot keep the site policy in %s (%s): after a restart the config file's policy runs until the "
                      "broker sends it again", self.state_dir, e)

    def _load_persisted_policy(self) -> None:
        if self.state_dir is None:
            return
        path = Path(self.state_dir) / FLEET_POLICY_NAME
        try:
            payload = path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as e:
            log.error("fleet: cannot read the kept site policy %s (%s): the config file's policy runs until the broker sends one", path, e)
            return
        try:
            version, policy = protocol.verify_policy(self._public_key, payload, site=self.site, current_version=None)
            self._apply_policy(policy)
        except protocol.PolicyRejected as e:
            log.warning("fleet: the kept site policy %s is not used (%s): the config file's policy runs until the broker sends one",
                        path, e.reason)
            return
        except Exception:
            log.exception("fleet: the kept site policy could not be applied")
            return
        self._policy_version, self._policy = version, policy
        log.info("fleet: site policy version %d (kept from before the restart) applied: %s", version, _summary(policy))


def _claimed_version(payload: bytes) -> int | None:
    """The version a refused message says it has, when it says one (for the ack only)."""
    try:
        value = json.loads(payload).get("version")
    except Exception:  # noqa: BLE001 - not JSON, not an object
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63 else None


def _summary(policy: PolicyConfig) -> str:
    return (f"colours {'+'.join(policy.allowed_colours)}, yellow {policy.yellow}, NAT {policy.nat_window_h}"
            f"{'' if policy.nat_window_h == 'none' else ' h'}, antigen {'yes' if policy.antigen_accepted else 'no'}, "
            f"doses >= {policy.min_vaccination_doses}, offline {policy.offline}")

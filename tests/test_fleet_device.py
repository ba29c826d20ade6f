"""The device side of the fleet (issue 20) against a real Mosquitto broker on a loopback port: the
retained state and the last will a dashboard sees, per-minute counters, the bounded buffer while
the broker is away, the signed remote policy (applied, refused with the reason, kept across a
restart), the password kept out of logs, and the doctor's broker line.

Every broker is tests/mosquitto.py's (Debian's mosquitto, a throwaway config on a free port); the
module skips with the reason when it is not installed. Watchers are plain paho subscribers, as a
dashboard is. Clocks are injected (helpers.WallClock for the counters' minutes); waiting is
helpers.wait_until, never a sleep taken as an assertion.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from sentinel.config import PolicyConfig, SentinelConfig
from sentinel.fleet import protocol
from sentinel.fleet.config import DEFAULT_PREFIX, FleetConfig
from sentinel.fleet.link import FleetLink
from sentinel.state_files import FLEET_POLICY_NAME
from sentinel.pipeline import CheckOutcome
from sentinel.policy import Verdict, VerdictKind
from tests.helpers import T0, FakeClock, WallClock, wait_until
from tests.mosquitto import MosquittoBroker, find_mosquitto

BINARY, WHY = find_mosquitto()
pytestmark = pytest.mark.skipif(BINARY is None, reason=WHY)

ROOT = Path(__file__).resolve().parents[1]
SITE, DEVICE = "mall-3", "gate-07"
PASSWORD = "s3cret-Pa55-word-7c1d"


# -- tools -----------------------------------------------------------------------------------------


class Watcher:
    """A dashboard-like subscriber: every message on `topic`, in order. `client_id` with
    clean=False keeps a session at the broker (queued QoS 1 messages while it is away)."""

    def __init__(self, broker: MosquittoBroker, topic: str = "sentinel/#", client_id: str = "", clean: bool = True):
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self.connected = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean)
        self.client.reconnect_delay_set(1, 1)

        def on_connect(client, userdata, flags, rc, properties=None):
            client.subscribe(topic, qos=1)
            self.connected.set()

        def on_message(client, userdata, message):
            with self._lock:
                self.messages.append((message.topic, bytes(message.payload), bool(message.retain)))

        self.client.on_connect = on_connect
        self.client.on_message = on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        wait_until(self.connected.is_set, what="the watcher to connect")

    def payloads(self, topic: str) -> list[dict]:
        with self._lock:
            return [json.loads(p) for t, p, _ in self.messages if t == topic]

    def last(self, topic: str) -> dict | None:
        found = self.payloads(topic)
        return found[-1] if found else None

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish(broker: MosquittoBroker, topic: str, payload: bytes, retain: bool = True) -> None:
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def topic(leaf: str) -> str:
    return protocol.device_topic(DEFAULT_PREFIX, SITE, DEVICE, leaf)


POLICY_TOPIC = protocol.policy_topic(DEFAULT_PREFIX, SITE)

HEALTH = {
    "outbox": {"depth": 3, "oldest_age_s": 42.5, "spilled": 0, "alarms": []},
    "uptime_s": 3600.0,
    "alarms": ["outbox_high"],
    "camera": "ok",
    "gate": "closed",
    "door": None,
    "last_check_at": T0,
    "fault": None,
    "uploader": {"state": "idle", "last_error": "token abc123 refused"},  # not for the broker
}


@pytest.fixture
def broker():
    with MosquittoBroker() as b:
        yield b


@pytest.fixture
def keys(tmp_path):
    private, public = protocol.generate_signing_key()
    path = tmp_path / "fleet-policy.pub"
    path.write_bytes(public)
    return protocol.load_private_key(private), path


class Device:
    """A FleetLink as a kiosk makes it, with what apply_policy received."""

    def __init__(self, broker, tmp_path, *, key_file=None, wall=None, health=None, **fleet):
        self.applied: list[PolicyConfig] = []
        self.health = dict(HEALTH) if health is None else health
        settings = {"type": "mqtt", "host": broker.host, "port": broker.port, "keepalive_s": 5, "policy_public_key_file": key_file}
        settings.update(fleet)
        self.state_dir = tmp_path / "state"
        self.state_dir.mkdir(exist_ok=True)
        self.link = FleetLink(FleetConfig(**settings), site=SITE, device=DEVICE, state_dir=self.state_dir,
                              health=lambda: self.health, apply_policy=self.applied.append, version="9.9.9",
                              clock=FakeClock(), wall=wall or WallClock())

    def start(self, connected: bool = True) -> FleetLink:
        self.link.start()
        if connected:
            wait_until(lambda: self.link.status()["connected"], what="the link to connect")
        return self.link


def signed(key, version: int, site: str = SITE, **policy) -> bytes:
    return protocol.sign_policy(key, site, version, T0 + timedelta(minutes=version), PolicyConfig(**policy))


# -- config ----------------------------------------------------------------------------------------


def test_the_config_section_refuses_half_a_link_and_a_prefix_with_wildcards():
    assert FleetConfig().type == "none"
    for prefix in ("sentinel/#", "+", "a//b", "/a", "a b"):
        with pytest.raises(ValueError):
            FleetConfig(topic_prefix=prefix)
    assert FleetConfig(topic_prefix="district-7/sentinels").topic_prefix == "district-7/sentinels"
    for field in FleetConfig.model_fields.values():
        assert field.title and field.description
    for bad in ({"type": "mqtt"}, {"type": "mqtt", "host": "mqtt://x/y"}, {"host": "h", "cert_file": "/c"},
                {"host": "h", "tls": True, "cert_file": "/c"}, {"host": "h", "password_file": "/p"}, {"hots": "h"}):
        with pytest.raises(ValueError):
            FleetConfig(**bad)
    assert FleetConfig(type="mqtt", host="b").broker_port == 1883
    assert FleetConfig(type="mqtt", host="b", tls=True).broker_port == 8883
    assert "no fleet.policy_public_key_file" in FleetConfig(type="mqtt", host="b").remote_policy_off_reason


def test_open_fleet_makes_a_link_only_for_mqtt(tmp_path):
    from sentinel.fleet.kiosk import open_fleet

    device = SentinelConfig().device.model_copy(update={"state_dir": tmp_path})
    assert open_fleet(SimpleNamespace(fleet=FleetConfig(), device=device), health=dict, apply_policy=print) is None
    link = open_fleet(SimpleNamespace(fleet=FleetConfig(type="mqtt", host="127.0.0.1"), device=device), health=dict, apply_policy=print)
    assert isinstance(link, FleetLink) and link.state_topic == f"sentinel/{device.site_id}/{device.id}/state"


# -- state and last will ---------------------------------------------------------------------------

CHILD = """
import sys, time
from sentinel.fleet.config import FleetConfig
from sentinel.fleet.link import FleetLink
port = int(sys.argv[1])
health = {"outbox": {"depth": 3, "oldest_age_s": 42.5}, "uptime_s": 12.0, "alarms": ["outbox_high"],
          "camera": "ok", "gate": "closed", "door": "closed", "last_check_at": None}
link = FleetLink(FleetConfig(type="mqtt", host="127.0.0.1", port=port, keepalive_s=5), site=sys.argv[2], device=sys.argv[3],
                 state_dir=None, health=lambda: health, apply_policy=lambda p: None, version="9.9.9")
link.start()
while not link.status()["connected"]:
    time.sleep(0.05)
print("connected", flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("how", ["kill -9", "frozen"])
def test_state_is_retained_and_the_broker_says_offline_when_the_device_is_killed(broker, how):
    """kill -9: the kernel closes the socket, the broker sees it at once. frozen (SIGSTOP: a device
    that lost power or its cable, its connection left open): the broker's keepalive finds it."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(broker.port), SITE, DEVICE], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "connected"
        watcher = Watcher(broker, topic("state"))  # subscribes after the fact: only a retained state reaches it
        wait_until(lambda: watcher.payloads(topic("state")), what="the retained state")
        state = watcher.last(topic("state"))
        assert state["online"] is True and state["version"] == "9.9.9"
        assert state["outbox"] == {"depth": 3, "oldest_age_s": 42.5}
        assert state["alarms"] == ["outbox_high"] and state["camera"] == "ok" and state["gate"] == "closed"
        assert protocol.DeviceState.model_validate(state)  # the protocol's fields only
        os.kill(child.pid, signal.SIGKILL if how == "kill -9" else signal.SIGSTOP)
        # the last will: within 1.5 keepalives (5 s) of the silence, retained
        wait_until(lambda: watcher.last(topic("state"))["online"] is False, timeout=30, what="the broker's last will")
        late = Watcher(broker, topic("state"))
        wait_until(lambda: late.payloads(topic("state")), what="the retained offline state")
        assert late.last(topic("state")) == json.loads(protocol.offline_state(SITE, DEVICE).model_dump_json())
        watcher.close()
        late.close()
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(10)


def test_a_clean_stop_says_offline_and_an_alarm_is_sent_at_once(broker, tmp_path):
    watcher = Watcher(broker, topic("state"))
    device = Device(broker, tmp_path, health={**HEALTH, "alarms": []})
    link = device.start()
    wait_until(lambda: watcher.payloads(topic("state")), what="the first state")
    first = watcher.last(topic("state"))
    assert first["online"] is True and first["alarms"] == []
    assert "uploader" not in first and "token" not in json.dumps(first)  # device facts only
    device.health = {**HEALTH, "alarms": ["gate_fault"], "gate": "fault"}
    link.publish_state_now()  # the injected clock stands still: only this can send it
    wait_until(lambda: watcher.last(topic("state"))["alarms"] == ["gate_fault"], what="the alarm in the state")
    assert watcher.last(topic("state"))["gate"] == "fault"
    link.stop()
    wait_until(lambda: watcher.last(topic("state"))["online"] is False, what="online=false on stop")
    assert watcher.last(topic("state"))["version"] == "9.9.9"
    watcher.close()


# -- counters --------------------------------------------------------------------------------------


def outcome(kind: str | None, offline: bool = False) -> CheckOutcome:
    if kind is None:  # a payload refused on the device
        return CheckOutcome(None, None, Verdict(VerdictKind.DENY, "unrecognised"), False, 0.01, None)
    return CheckOutcome("health_code", "green", Verdict(VerdictKind(kind), "ok"), offline, 0.01, "rec-1", person="张*")


def test_counters_go_out_per_minute_of_the_device_clock(broker, tmp_path):
    watcher = Watcher(broker, topic("counters"))
    wall = WallClock(T0 + timedelta(seconds=10))
    device = Device(broker, tmp_path, wall=wall)
    link = device.start()
    link.count("pass")
    link.count("pass")
    link.observe_outcome(outcome("deny"))
    link.observe_outcome(outcome("manual_check", offline=True))
    link.observe_outcome(outcome(None))
    link.count("bogus")  # ignored, never raised
    wall.advance(55)  # 08:01:05: the first minute is over
    link.count("pass", offline=True)
    wait_until(lambda: watcher.payloads(topic("counters")), what="the first minute's counters")
    first = watcher.payloads(topic("counters"))
    assert first == [{"v": 1, "site": SITE, "device": DEVICE, "minute": "2026-11-25T08:00:00Z", "checks": 4, "passed": 2,
                      "denied": 1, "manual": 1, "offline": 1, "decode_failures": 1}]
    link.stop()  # the unfinished minute goes out on the way down
    wait_until(lambda: len(watcher.payloads(topic("counters"))) == 2, what="the second minute at stop")
    second = watcher.payloads(topic("counters"))[1]
    assert second["minute"] == "2026-11-25T08:01:00Z" and second["checks"] == 1 and second["offline"] == 1
    assert not any(retain for t, _, retain in watcher.messages)
    watcher.close()


def test_counters_are_buffered_while_the_broker_is_away_bounded_and_delivered_after(tmp_path):
    # a broker that keeps sessions across its restart, so the watcher misses nothing sent meanwhile
    with MosquittoBroker(extra_config=f"persistence true\npersistence_location {tmp_path}/\n") as broker:
        watcher = Watcher(broker, topic("counters"), client_id="dashboard", clean=False)
        wall = WallClock()
        device = Device(broker, tmp_path, wall=wall, buffer_max=3)
        link = device.start()
        broker.pause()
        wait_until(lambda: not link.status()["connected"], what="the link to notice the broker is gone")
        for _ in range(5):  # five minutes with checks, the broker away all along
            link.count("deny")
            wall.advance(60)
        wait_until(lambda: link.status()["dropped"] == 2, what="the two oldest minutes dropped")
        assert link.status()["buffered"] == 3
        broker.start()
        wait_until(lambda: len(watcher.payloads(topic("counters"))) >= 3, timeout=60, what="the buffer delivered")
        minutes = [m["minute"] for m in watcher.payloads(topic("counters"))]
        assert minutes == ["2026-11-25T08:02:00Z", "2026-11-25T08:03:00Z", "2026-11-25T08:04:00Z"]
        wait_until(lambda: link.status()["buffered"] == 0, what="the buffer to empty")
        assert link.status()["dropped"] == 2 and link.status()["connected"]
        link.stop()
        watcher.close()


def test_counting_never_waits_for_a_broker_that_does_not_answer(tmp_path):
    # a port that takes the TCP connection and never says a word: paho waits for a CONNACK forever
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        fake = SimpleNamespace(host="127.0.0.1", port=silent.getsockname()[1])
        device = Device(fake, tmp_path)
        link = device.start(connected=False)
        done = threading.Event()

        def checks():
            for _ in range(20_000):
                link.count("pass")
                link.observe_outcome(outcome("deny"))
            done.set()

        threading.Thread(target=checks, daemon=True).start()
        # 40 000 calls: microseconds each; a call that waited for the network would take seconds
        assert done.wait(10), "count() / observe_outcome() blocked while the broker did not answer"
        assert not link.status()["connected"]
        stopping = threading.Thread(target=link.stop, kwargs={"timeout_s": 1.0}, daemon=True)
        stopping.start()
        stopping.join(15)
        assert not stopping.is_alive(), "stop() hung on a broker that does not answer"


def test_a_message_paho_took_while_the_connection_dropped_does_not_stop_the_sender(tmp_path):
    # paho answers MQTT_ERR_NO_CONN for a publish racing a dropped connection, keeps the QoS 1
    # message for after the reconnect, and then raises from that message's is_published(): the
    # link must count it as handed over, not fail every round from then on (seen with 1,000
    # simulated devices on one broker).
    class DroppedWhileSending:
        rc = 4  # MQTT_ERR_NO_CONN

        def is_published(self):
            raise RuntimeError("Message publish failed: The client is not currently connected.")

    class Sent:
        rc = 0

        def is_published(self):
            return True

    device = Device(SimpleNamespace(host="127.0.0.1", port=1), tmp_path)
    link = device.start(connected=False)
    try:
        link._in_flight = [DroppedWhileSending(), Sent()]
        status = link.status()  # raised RuntimeError before
        assert status["dropped"] == 0
        assert link._all_published()
        link.count("pass")  # and counting goes on
    finally:
        link.stop(timeout_s=1.0)


# -- remote policy ---------------------------------------------------------------------------------


def test_a_signed_policy_is_applied_without_restart_and_acknowledged(broker, tmp_path, keys):
    key, key_file = keys
    watcher = Watcher(broker)
    device = Device(broker, tmp_path, key_file=key_file)
    link = device.start()
    publish(broker, POLICY_TOPIC, signed(key, 7, nat_window_h=48, allowed_colours=["green"], offline="allow_and_flag"))
    wait_until(lambda: device.applied, what="the policy applied")
    assert device.applied == [PolicyConfig(nat_window_h=48, offline="allow_and_flag")]
    assert link.policy_version == 7
    wait_until(lambda: (watcher.last(topic("policy_ack")) or {}).get("version") == 7, what="the ack")
    ack = watcher.last(topic("policy_ack"))
    assert ack["rejected_version"] is None and ack["reason"] is None
    wait_until(lambda: (watcher.last(topic("state")) or {}).get("policy_version") == 7, what="the state to carry the version")
    kept = json.loads((device.state_dir / FLEET_POLICY_NAME).read_text())
    assert kept["version"] == 7 and kept["policy"]["nat_window_h"] == 48
    link.stop()
    watcher.close()


def _invalid(key, version: int) -> bytes:
    """Correctly signed, but the policy does not pass the config file's checks (a 5 h NAT window)."""
    import base64

    data = {"v": 1, "site": SITE, "version": version, "issued_at": T0, "policy": {**PolicyConfig().model_dump(mode="json"), "nat_window_h": 5}}
    signature = base64.b64encode(key.sign(protocol.canonical_json(data))).decode()
    return json.dumps({**data, "issued_at": T0.isoformat(), "signature": signature}).encode()


@pytest.mark.parametrize("case, reason", [
    ("wrong_key", "bad_signature"),
    ("wrong_site", "wrong_site"),
    ("older", "not_newer"),
    ("malformed", "malformed"),
    ("invalid", "invalid_policy"),
    ("tampered", "bad_signature"),
])
def test_a_bad_policy_message_is_refused_with_the_reason_and_the_policy_kept(broker, tmp_path, keys, case, reason, caplog):
    key, key_file = keys
    watcher = Watcher(broker, topic("policy_ack"))
    device = Device(broker, tmp_path, key_file=key_file)
    link = device.start()
    publish(broker, POLICY_TOPIC, signed(key, 5, nat_window_h=72))
    wait_until(lambda: link.policy_version == 5, what="the good policy")
    other_key = protocol.load_private_key(protocol.generate_signing_key()[0])
    bad = {
        "wrong_key": lambda: signed(other_key, 6, nat_window_h=24),
        "wrong_site": lambda: signed(key, 6, site="mall-4", nat_window_h=24),
        "older": lambda: signed(key, 4, nat_window_h=24),
        "malformed": lambda: b'{"version": 6, "site": "\\u001b[2J\\nFAKE LOG LINE", "policy": 1}',
        "invalid": lambda: _invalid(key, 6),
        "tampered": lambda: signed(key, 6, nat_window_h=24).replace(b'"nat_window_h":24', b'"nat_window_h":"none"'),
    }[case]()
    with caplog.at_level(logging.INFO, logger="sentinel.fleet"):
        publish(broker, POLICY_TOPIC, bad)
        wait_until(lambda: (watcher.last(topic("policy_ack")) or {}).get("reason") == reason, what=f"the refusal ({reason})")
    ack = watcher.last(topic("policy_ack"))
    assert ack["version"] == 5 and ack["rejected_version"] == (4 if case == "older" else 6)
    assert link.policy_version == 5 and device.applied == [PolicyConfig(nat_window_h=72)]
    assert link.status()["last_rejection"] == {"version": ack["rejected_version"], "reason": reason}
    refusal = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert refusal and reason in refusal[0] and "keeping remote policy version 5" in refusal[0]
    assert not any("\x1b" in r.getMessage() or "\n" in r.getMessage() for r in caplog.records)
    link.stop()
    watcher.close()


def test_the_policy_in_force_survives_a_restart_and_an_older_retained_one_is_refused(broker, tmp_path, keys):
    key, key_file = keys
    first = Device(broker, tmp_path, key_file=key_file)
    link = first.start()
    publish(broker, POLICY_TOPIC, signed(key, 3, min_vaccination_doses=2))
    wait_until(lambda: link.policy_version == 3, what="version 3")
    link.stop()
    again = Device(broker, tmp_path, key_file=key_file)  # same state directory
    broker.pause()
    again.link.start()  # the kept policy runs before any broker answers
    assert again.applied == [PolicyConfig(min_vaccination_doses=2)] and again.link.policy_version == 3
    broker.start()  # a broker that lost everything: the fleet side (or an attacker) replays an older signed one
    publish(broker, POLICY_TOPIC, signed(key, 2, min_vaccination_doses=0))
    watcher = Watcher(broker, topic("policy_ack"))
    wait_until(lambda: (watcher.last(topic("policy_ack")) or {}).get("reason") == "not_newer", timeout=60, what="the replay refused")
    assert watcher.last(topic("policy_ack"))["version"] == 3
    assert again.applied == [PolicyConfig(min_vaccination_doses=2)] and again.link.policy_version == 3
    again.link.stop()
    watcher.close()


def test_a_kept_policy_that_does_not_verify_is_not_used(broker, tmp_path, keys, caplog):
    key, key_file = keys
    device = Device(broker, tmp_path, key_file=key_file)
    (device.state_dir / FLEET_POLICY_NAME).write_bytes(signed(key, 9, nat_window_h=24).replace(b'"nat_window_h":24', b'"nat_window_h":72'))
    with caplog.at_level(logging.INFO, logger="sentinel.fleet"):
        device.link.start()
    assert device.applied == [] and device.link.policy_version is None
    assert "bad_signature" in caplog.text and "config file's policy runs" in caplog.text
    device.link.stop()


def test_without_a_key_remote_policy_is_off_and_said(broker, tmp_path, keys, caplog):
    key, _ = keys
    with caplog.at_level(logging.INFO, logger="sentinel.fleet"):
        device = Device(broker, tmp_path)
        link = device.start()
    publish(broker, POLICY_TOPIC, signed(key, 1, nat_window_h=24))
    assert "remote policy off" in caplog.text and "policy_public_key_file" in caplog.text
    assert link.status()["remote_policy"].startswith("off:")
    link.stop()
    assert device.applied == []


# -- credentials -----------------------------------------------------------------------------------


@pytest.fixture
def locked_broker(tmp_path):
    passwords = tmp_path / "mosquitto.passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), DEVICE, PASSWORD], check=True, capture_output=True)
    os.chmod(passwords, 0o600)
    with MosquittoBroker(password_file=passwords) as b:
        yield b


def test_per_device_login_and_the_password_never_in_logs_or_status(locked_broker, tmp_path, caplog):
    good = tmp_path / "good.pw"
    good.write_text(PASSWORD + "\n")
    bad = tmp_path / "bad.pw"
    bad.write_text("not-" + PASSWORD + "\n")
    with caplog.at_level(logging.DEBUG):
        ok = Device(locked_broker, tmp_path, username=DEVICE, password_file=good)
        ok.start()
        refused = Device(locked_broker, tmp_path, username=DEVICE, password_file=bad)
        refused.link.start()
        wait_until(lambda: "refused" in (refused.link.status()["last_error"] or ""), what="the refused login")
        assert "fleet.username" in refused.link.status()["last_error"]
        assert not refused.link.status()["connected"]
        statuses = json.dumps([ok.link.status(), refused.link.status()])
        ok.link.stop()
        refused.link.stop()
    assert PASSWORD not in caplog.text and PASSWORD not in statuses
    assert "refused the connection" in caplog.text


# -- doctor ----------------------------------------------------------------------------------------


def test_doctor_reports_the_broker_login_and_the_site_policy(locked_broker, tmp_path, keys):
    from sentinel.fleet.doctor import check_fleet

    key, key_file = keys
    good = tmp_path / "good.pw"
    good.write_text(PASSWORD)
    device = SentinelConfig().device.model_copy(update={"site_id": SITE, "id": DEVICE})

    def config(**fleet):
        settings = {"type": "mqtt", "host": locked_broker.host, "port": locked_broker.port, "username": DEVICE, "password_file": good}
        return SimpleNamespace(fleet=FleetConfig(**{**settings, **fleet}), device=device)

    assert check_fleet(SimpleNamespace(fleet=FleetConfig(), device=device))[0] == "SKIP"
    status, message = check_fleet(config())
    assert status == "PASS" and f"accepted {DEVICE}" in message and "remote policy off" in message
    (tmp_path / "wrong.pw").write_text("nope")
    status, message, hint = check_fleet(config(password_file=tmp_path / "wrong.pw"))
    assert status == "FAIL" and "refused the login" in message and "password" in hint
    status, message, hint = check_fleet(config(port=_closed_port()))
    assert status == "FAIL" and "cannot reach" in message
    status, message, hint = check_fleet(config(password_file=tmp_path / "missing.pw"))
    assert status == "FAIL" and "missing.pw" in message
    # the site's policy at the broker: signed by the key this device trusts, or not
    import paho.mqtt.client as mqtt

    admin = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    admin.username_pw_set(DEVICE, PASSWORD)
    admin.connect(locked_broker.host, locked_broker.port)
    admin.loop_start()
    admin.publish(POLICY_TOPIC, signed(key, 4, nat_window_h=24), qos=1, retain=True).wait_for_publish(10)
    admin.disconnect()
    admin.loop_stop()
    status, message = check_fleet(config(policy_public_key_file=key_file))
    assert status == "PASS" and "site policy version 4 at the broker (signature good)" in message
    other = tmp_path / "other.pub"
    other.write_bytes(protocol.generate_signing_key()[1])
    status, message, hint = check_fleet(config(policy_public_key_file=other))
    assert status == "FAIL" and "bad_signature" in message
    assert all(PASSWORD not in str(x) for x in (message, hint))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_policy_cleared_at_the_broker_changes_nothing(broker, tmp_path, keys, caplog):
    key, key_file = keys
    watcher = Watcher(broker, topic("policy_ack"))
    device = Device(broker, tmp_path, key_file=key_file)
    link = device.start()
    publish(broker, POLICY_TOPIC, signed(key, 2, antigen_accepted=True))
    wait_until(lambda: link.policy_version == 2, what="version 2")
    with caplog.at_level(logging.INFO, logger="sentinel.fleet"):
        publish(broker, POLICY_TOPIC, b"")  # an operator deletes the retained message
        wait_until(lambda: "cleared at the broker" in caplog.text, what="the clearing noticed")
    assert link.policy_version == 2 and device.applied == [PolicyConfig(antigen_accepted=True)]
    assert watcher.last(topic("policy_ack"))["reason"] is None
    link.stop()
    watcher.close()


def test_a_key_that_is_not_an_ed25519_public_key_turns_remote_policy_off(broker, tmp_path, keys, caplog):
    key, _ = keys
    wrong = tmp_path / "not-a-key.pem"
    wrong.write_bytes(protocol.generate_signing_key()[0])  # the private key by mistake
    with caplog.at_level(logging.INFO, logger="sentinel.fleet"):
        device = Device(broker, tmp_path, key_file=wrong)
        link = device.start()
    assert "cannot be used" in link.status()["remote_policy"] and "remote policy off" in caplog.text
    publish(broker, POLICY_TOPIC, signed(key, 1, nat_window_h=24))
    link.stop()
    assert device.applied == [] and link.policy_version is None


# -- wired into the kiosk (active once SentinelConfig has [fleet]: see the module's report) --------


@pytest.mark.skipif("fleet" not in SentinelConfig.model_fields, reason="[fleet] is not in SentinelConfig yet")
def test_a_running_kiosk_reports_and_takes_the_site_policy(broker, tmp_path, keys):
    """config/default.toml with [fleet] type = mqtt, as `sentinel run` builds it: the kiosk's checks
    reach the broker as counters, its state is there, and the site's signed policy changes its
    verdicts without a restart (green no longer admitted: the green scene is denied)."""
    import requests

    from sentinel.kiosk import build_kiosk
    from sentinel.service.seed import DEMO_DEVICE_ID, DEMO_DEVICE_TOKEN, DEMO_SITE
    from sentinel.service.server import ReferenceServer
    from tests.helpers import RunningKiosk
    from tests.test_kiosk_wiring import shipped

    key, key_file = keys
    site, device = DEMO_SITE.id, DEMO_DEVICE_ID
    with ReferenceServer(tmp_path / "svc.db", seed="demo", admin_token="sat_fleet-admin") as service:
        config = shipped("default.toml", tmp_path, service.url)
        config = config.model_copy(update={"fleet": FleetConfig(type="mqtt", host=broker.host, port=broker.port, keepalive_s=5,
                                                                policy_public_key_file=key_file)})
        watcher = Watcher(broker)
        kiosk = build_kiosk(config)
        running = RunningKiosk(kiosk)
        try:
            state_topic = protocol.device_topic(DEFAULT_PREFIX, site, device, "state")
            wait_until(lambda: (watcher.last(state_topic) or {}).get("online"), 60, "the kiosk's state at the broker")
            assert watcher.last(state_topic)["camera"] in ("ok", "fault") and watcher.last(state_topic)["gate"] in ("closed", "open")
            wait_until(lambda: running.showing("pass"), 60, "a green pass under the config file's policy")
            publish(broker, protocol.policy_topic(DEFAULT_PREFIX, site), signed(key, 1, site=site, allowed_colours=["yellow"]))
            wait_until(lambda: kiosk.fleet.policy_version == 1, 60, "the site policy applied")
            assert kiosk.remote_policy == PolicyConfig(allowed_colours=["yellow"])

            def green_denied():
                r = requests.get(f"{service.url}/v1/records", params={"device_id": device, "limit": 1000},
                                 headers={"Authorization": f"Bearer {DEMO_DEVICE_TOKEN}"}, timeout=10)
                return any(x["status"] == "green" and x["verdict"] == "deny" for x in r.json()["records"])

            wait_until(green_denied, 90, "a green code denied under the site policy")
        finally:
            running.close()
        counters = protocol.device_topic(DEFAULT_PREFIX, site, device, "counters")
        wait_until(lambda: watcher.payloads(counters), 30, "the kiosk's counters (flushed at stop)")
        assert sum(m["checks"] for m in watcher.payloads(counters)) >= 2
        wait_until(lambda: watcher.last(state_topic)["online"] is False, 30, "online=false at stop")
        watcher.close()

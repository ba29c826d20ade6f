"""The fleet view: what every sentinel last said over MQTT, kept for the dashboard.

`FleetView.handle(topic, payload)` takes one message (any thread) and `snapshot()` answers the whole
view as JSON-ready data: every site and device with its online state, when it was last heard from,
its backlog (outbox depth and oldest age), alarms, checks today by verdict, the policy version it
runs and its last refusal, the policy each site has published, and the headline figures (devices
deployed, online now, sites covered, scans to date and today). `Collector` is the MQTT client that
feeds it: it subscribes to `<prefix>/+/+/state`, `counters`, `policy_ack` and `<prefix>/+/policy`
(again on every reconnect).

Checks are counted by the day of each message's minute in the view's clock (`wall`, local time by
default), deduplicated by minute (a counter resent after a reconnect replaces, never adds). Minutes
of earlier days fold into a per-device total, so scans "to date" are what this collector has seen
since it started (the broker keeps no counters: they are not retained).

How it fails: a message that is not on a known topic, larger than `MAX_MESSAGE_BYTES`, not valid
JSON, not the protocol's model, or about another device than its topic names is dropped and
counted by reason (`snapshot()["dropped"]`), with the topic escaped before it reaches the log; none
changes the view. Memory is bounded: per device one state, one acknowledgement and at most two days
of minutes; beyond `max_devices` devices (or sites), new ones are dropped and counted.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from sentinel.config import ID_PATTERN
from sentinel.fleet.protocol import (
    DEFAULT_PREFIX,
    MAX_MESSAGE_BYTES,
    REJECT_REASONS,
    DeviceState,
    MinuteCounters,
    PolicyAck,
    PolicyRejected,
    SignedPolicy,
    parse_device_topic,
    verify_policy,
)
from sentinel.textsafe import printable

log = logging.getLogger("sentinel.dashboard")

VERDICTS = ("checks", "passed", "denied", "manual", "offline", "decode_failures")
#: minutes kept per device (two days); older ones fold into the device's earlier total
MAX_MINUTES = 2 * 24 * 60
#: a backlog whose oldest record is older than this needs a look
BACKLOG_WARN_S = 15 * 60


def _local_now() -> datetime:
    return datetime.now().astimezone()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass
class _Device:
    site: str
    device: str
    state: DeviceState | None = None
    state_at: datetime | None = None
    last_seen: datetime | None = None
    ack: PolicyAck | None = None
    minutes: dict[datetime, tuple[int, ...]] = field(default_factory=dict)  # what each minute said (dedupe)
    days: dict[date, list[int]] = field(default_factory=dict)  # totals by day (VERDICTS order)
    earlier: list[int] = field(default_factory=lambda: [0] * len(VERDICTS))  # days folded away


@dataclass
class _Published:
    version: int
    issued_at: datetime
    signature_ok: bool | None  # None: no public key given to check it with
    seen_at: datetime


@dataclass(kw_only=True, eq=False)
class FleetView:
    """Thread-safe; `handle` is called from the MQTT thread, `snapshot` from the web server's."""

    prefix: str = DEFAULT_PREFIX
    wall: Callable[[], datetime] = field(default=_local_now, repr=False)
    quiet_after_s: float = 300.0
    max_devices: int = 10_000
    public_key: Any = field(default=None, repr=False)
    broker_connected: bool = field(default=False, init=False)
    broker: str = field(default="", init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _devices: dict[tuple[str, str], _Device] = field(default_factory=dict, init=False, repr=False)
    _published: dict[str, _Published] = field(default_factory=dict, init=False, repr=False)
    _dropped: Counter = field(default_factory=Counter, init=False, repr=False)
    _accepted: int = field(default=0, init=False, repr=False)

    # -- input -------------------------------------------------------------------------------------

    def handle(self, topic: str, payload: bytes) -> bool:
        """Take one message; True when it changed the view, False when it was dropped."""
        try:
            return self._handle(topic, payload)
        except Exception:
            log.exception("message on %s not handled", printable(topic, 120))
            return self._drop("error", topic)

    def _handle(self, topic: str, payload: bytes) -> bool:
        if len(payload) > MAX_MESSAGE_BYTES:
            return self._drop("too_large", topic)
        parsed = parse_device_topic(self.prefix, topic)
        if parsed is None:
            site = self._policy_site(topic)
            if site is None:
                return self._drop("unknown_topic", topic)
            return self._published_policy(site, topic, payload)
        site, device, leaf = parsed
        if not payload and leaf in ("state", "policy_ack"):
            return self._drop("empty", topic)  # a retained message being cleared: nothing to show
        model = {"state": DeviceState, "counters": MinuteCounters, "policy_ack": PolicyAck}[leaf]
        try:
            message = model.model_validate_json(payload)
        except ValidationError as exc:
            return self._drop("invalid", topic, exc.errors()[0].get("msg", "") if exc.errors() else "")
        if (message.site, message.device) != (site, device):
            return self._drop("mismatch", topic)
        now = self.wall()
        with self._lock:
            entry = self._devices.get((site, device))
            if entry is None:
                if len(self._devices) >= self.max_devices:
                    self._dropped["too_many_devices"] += 1
                    return False
                entry = self._devices[(site, device)] = _Device(site, device)
            entry.last_seen = now
            if leaf == "state":
                entry.state, entry.state_at = message, now
            elif leaf == "policy_ack":
                entry.ack = message
            else:
                self._count(entry, message, now)
            self._accepted += 1
        return True

    def _policy_site(self, topic: str) -> str | None:
        head = self.prefix + "/"
        if not topic.startswith(head) or not topic.endswith("/policy"):
            return None
        site = topic[len(head) : -len("/policy")]
        return site if re.fullmatch(ID_PATTERN, site) else None

    def _published_policy(self, site: str, topic: str, payload: bytes) -> bool:
        if not payload:
            with self._lock:
                self._published.pop(site, None)  # the retained policy was cleared
            return True
        try:
            message = SignedPolicy.model_validate_json(payload)
        except ValidationError:
            return self._drop("invalid", topic)
        if message.site != site:
            return self._drop("mismatch", topic)
        signature_ok: bool | None = None
        if self.public_key is not None:
            try:
                verify_policy(self.public_key, payload, site=site, current_version=None)
                signature_ok = True
            except PolicyRejected as exc:  # the signature is checked after the site, before the policy
                signature_ok = False if exc.reason == "bad_signature" else True if exc.reason == "invalid_policy" else None
        with self._lock:
            if site not in self._published and len(self._published) >= self.max_devices:
                self._dropped["too_many_devices"] += 1
                return False
            self._published[site] = _Published(message.version, _aware(message.issued_at), signature_ok, self.wall())
        return True

    def _count(self, entry: _Device, message: MinuteCounters, now: datetime) -> None:
        minute = _aware(message.minute)
        day = minute.astimezone(now.tzinfo).date()
        keep_from = now.date() - timedelta(days=1)
        values = tuple(getattr(message, v) for v in VERDICTS)
        if day < keep_from:  # late news of an older day: to date, never today
            entry.earlier = [a + b for a, b in zip(entry.earlier, values)]
            return
        totals = entry.days.setdefault(day, [0] * len(VERDICTS))
        old = entry.minutes.get(minute, (0,) * len(VERDICTS))  # a resent minute replaces, never adds
        entry.days[day] = [t - o + v for t, o, v in zip(totals, old, values)]
        entry.minutes[minute] = values
        stale_days = [d for d in entry.days if d < keep_from]
        if stale_days or len(entry.minutes) > MAX_MINUTES:
            for d in stale_days:
                entry.earlier = [a + b for a, b in zip(entry.earlier, entry.days.pop(d))]
            for m in [m for m in entry.minutes if m.astimezone(now.tzinfo).date() < keep_from]:
                del entry.minutes[m]
            while len(entry.minutes) > MAX_MINUTES:  # a device with a wild clock: forget the oldest minute's identity
                del entry.minutes[min(entry.minutes)]

    def _drop(self, reason: str, topic: str, detail: str = "") -> bool:
        with self._lock:
            self._dropped[reason] += 1
        log.debug("dropped a message on %s: %s %s", printable(topic, 120), reason, printable(detail, 120))
        return False

    # -- output ------------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        now = self.wall()
        today = now.date()
        with self._lock:
            devices = [self._device_row(d, now, today) for d in self._devices.values()]
            published = {site: p for site, p in self._published.items()}
            dropped = dict(self._dropped)
            accepted = self._accepted
            not_today = sum(d.earlier[0] + sum(t[0] for day, t in d.days.items() if day != today) for d in self._devices.values())
        devices.sort(key=lambda r: (not r["attention"], r["site"], r["device"]))
        fleet_today = {v: sum(r["today"][v] for r in devices) for v in VERDICTS}
        sites: dict[str, dict[str, Any]] = {}
        for r in devices:
            s = sites.setdefault(r["site"], {"site": r["site"], "devices": 0, "online": 0, "attention": 0,
                                             "today": dict.fromkeys(VERDICTS, 0), "policy_versions": Counter(), "refusals": 0})  # fmt: skip
            s["devices"] += 1
            s["online"] += r["status"] == "online"
            s["attention"] += r["attention"]
            s["refusals"] += r["rejected_version"] is not None
            s["policy_versions"][r["policy_version"]] += 1
            for v in VERDICTS:
                s["today"][v] += r["today"][v]
        for site, p in published.items():
            sites.setdefault(site, {"site": site, "devices": 0, "online": 0, "attention": 0,
                                    "today": dict.fromkeys(VERDICTS, 0), "policy_versions": Counter(), "refusals": 0})  # fmt: skip
        site_rows = []
        for name in sorted(sites):
            s = sites[name]
            p = published.get(name)
            versions = s.pop("policy_versions")
            s["published"] = None if p is None else {
                "version": p.version, "issued_at": p.issued_at.isoformat(), "signature_ok": p.signature_ok,
                "acknowledged": versions.get(p.version, 0),
            }  # fmt: skip
            s["policy_versions"] = {str(k): n for k, n in sorted(versions.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))}
            site_rows.append(s)
        return {
            "generated_at": now.isoformat(),
            "broker": {"address": self.broker, "connected": self.broker_connected},
            "headline": {
                "devices": len(devices),
                "online": sum(r["status"] == "online" for r in devices),
                "attention": sum(r["attention"] for r in devices),
                "sites": len({r["site"] for r in devices}),
                "scans_today": fleet_today["checks"],
                "scans_to_date": fleet_today["checks"] + not_today,
            },
            "today": fleet_today,
            "sites": site_rows,
            "devices": devices,
            "messages": {"accepted": accepted, "dropped": dropped},
            "reject_reasons": REJECT_REASONS,
        }

    def _device_row(self, d: _Device, now: datetime, today: date) -> dict[str, Any]:
        s = d.state
        counts = dict(zip(VERDICTS, d.days.get(today, [0] * len(VERDICTS))))
        age = None if d.last_seen is None else max(0.0, (now - d.last_seen).total_seconds())
        online = bool(s and s.online)
        status = "unknown" if s is None else "offline" if not online else "quiet" if age is not None and age > self.quiet_after_s else "online"
        depth = s.outbox.depth if s and s.outbox else None
        oldest = s.outbox.oldest_age_s if s and s.outbox else None
        ack = d.ack
        policy_version = ack.version if ack is not None else (s.policy_version if s else None)
        alarms = list(s.alarms) if s else []
        backlog_late = oldest is not None and oldest > BACKLOG_WARN_S
        rejected = ack.rejected_version if ack is not None else None
        return {
            "site": d.site,
            "device": d.device,
            "status": status,
            "online": online,
            "last_seen_at": None if d.last_seen is None else d.last_seen.isoformat(),
            "last_seen_age_s": age,
            "version": s.version if s else None,
            "uptime_s": s.uptime_s if s else None,
            "outbox_depth": depth,
            "outbox_oldest_age_s": oldest,
            "alarms": alarms,
            "camera": s.camera if s else None,
            "gate": s.gate if s else None,
            "door": s.door if s else None,
            "clock_offset_s": s.clock_offset_s if s else None,
            "last_check_at": s.last_check_at.isoformat() if s and s.last_check_at else None,
            "policy_version": policy_version,
            "rejected_version": rejected,
            "reject_reason": ack.reason if ack is not None and rejected is not None else None,
            "today": counts,
            "attention": status in ("offline", "quiet") or bool(alarms) or backlog_late or rejected is not None,
        }


class Collector:
    """`Collector(address, view).start()`: subscribe and feed `view` until `stop()`; reconnects by itself."""

    def __init__(self, address: Any, view: FleetView, *, client_id: str = "sentinel-dashboard") -> None:
        self.address = address
        self.view = view
        self.client_id = client_id
        self._client: Any = None
        self._stopping = False
        view.broker = str(address)

    def start(self, timeout_s: float = 15.0) -> None:
        from sentinel.dashboard.mqtt import client, connect_and_wait

        c = self._client = client(self.address, self.client_id)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        connect_and_wait(c, self.address, timeout_s=timeout_s)

    def _on_connect(self, c, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("the broker at %s refused the dashboard: %s", self.address, reason_code)
            return
        p = self.view.prefix
        c.subscribe([(f"{p}/+/+/state", 1), (f"{p}/+/+/counters", 1), (f"{p}/+/+/policy_ack", 1), (f"{p}/+/policy", 1)])
        self.view.broker_connected = True
        log.info("dashboard connected to %s", self.address)

    def _on_disconnect(self, c, userdata, flags, reason_code, properties) -> None:
        self.view.broker_connected = False
        if self._stopping:
            return
        log.warning("dashboard lost the broker at %s (%s); reconnecting", self.address, reason_code)

    def _on_message(self, c, userdata, message) -> None:
        self.view.handle(message.topic, message.payload)

    def stop(self) -> None:
        self._stopping = True
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None
        self.view.broker_connected = False

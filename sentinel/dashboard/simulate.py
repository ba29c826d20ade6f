"""Simulated sentinels for `sentinel demo --fleet N`, the dashboard's tests and bench/fleet.py.

Each simulated device is a real `sentinel.fleet.link.FleetLink` (the device side's own code: same
topics, same last will, same policy checks) with a made-up `health()` and random checks counted
through `FleetLink.count`, so what the dashboard shows is what real sentinels would send. A fleet of
N is spread over sites named like a district's (malls, compounds, factories…), 3 to 8 devices each.
A few devices have trouble, chosen by the seed: a growing backlog, a gate fault, a camera fault.

`run_demo` is `sentinel demo --fleet N`: a broker (the one given, or a throwaway Mosquitto on
loopback), a fresh signing key, the collector and the dashboard page, N devices, a first policy per
site and, half a minute later, a policy change (the NAT window going from 48 to 24 hours) that the
page shows being acknowledged. `python -m sentinel.dashboard.simulate --broker H:P --devices N`
runs devices alone in a process of their own (a test kills it to see the last will arrive).

How it fails: no broker given and Mosquitto not installed is one line and exit 2 (install
`mosquitto`, or pass `--broker`); a broker that cannot be reached is one line and exit 1. A device
whose link fails to start is logged and left out; the others run.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self

from sentinel.config import PolicyConfig
from sentinel.dashboard.mqtt import BrokerAddress

log = logging.getLogger("sentinel.dashboard.simulate")

SITE_KINDS = ("mall", "compound", "factory", "station", "hospital", "market", "school", "office")
#: share of checks by kind: pass, deny, staff check, unreadable code
MIX = (("pass", 0.84), ("deny", 0.05), ("manual", 0.07), ("decode_failure", 0.04))
SIM_VERSION = "sim-0.1"


def layout(n: int, rng: random.Random) -> list[tuple[str, list[str]]]:
    """n device ids spread over sites, 3 to 8 each: [(site, [device, …]), …]."""
    sites: list[tuple[str, list[str]]] = []
    left, i = n, 0
    while left > 0:
        size = min(left, rng.randint(3, 8))
        kind = SITE_KINDS[i % len(SITE_KINDS)]
        site = f"{kind}-{i // len(SITE_KINDS) + 1:02d}"
        sites.append((site, [f"{site}-gate-{j + 1}" for j in range(size)]))
        left -= size
        i += 1
    return sites


@dataclass
class SimulatedDevice:
    site: str
    device: str
    rng: random.Random
    started: float
    clock: Callable[[], float]
    wall: Callable[[], datetime]
    trouble: str | None = None  # "backlog", "gate", "camera"
    link: Any = None
    policies: list[tuple[int | None, PolicyConfig]] = field(default_factory=list)
    last_check: datetime | None = None

    def health(self) -> dict[str, Any]:
        up = self.clock() - self.started
        depth, oldest = 0, None
        alarms: list[str] = []
        gate, camera = "closed", "ok"
        if self.trouble == "backlog":  # the uplink is down: records pile up
            depth, oldest = 40 + int(up / 2), 1200.0 + up
            alarms.append("outbox_overdue")
        elif self.trouble == "gate":
            gate = "fault"
            alarms.append("gate_fault")
        elif self.trouble == "camera":
            camera = "fault"
            alarms.append("camera_fault")
        return {
            "uptime_s": 3600 * 5 + up,
            "outbox": {"depth": depth, "oldest_age_s": oldest},
            "alarms": alarms,
            "camera": camera,
            "gate": gate,
            "door": "closed",
            "clock_offset_s": round(self.rng.uniform(-0.4, 0.4), 2),
            "last_check_at": self.last_check,
        }

    def apply_policy(self, policy: PolicyConfig) -> None:
        self.policies.append((self.link.policy_version if self.link is not None else None, policy))


class SimulatedFleet:
    """`with SimulatedFleet(address, devices=20, public_key_file=pub) as fleet: …`"""

    def __init__(
        self,
        address: BrokerAddress,
        *,
        devices: int,
        public_key_file: Path | None = None,
        prefix: str = "sentinel",
        state_every_s: float = 60.0,
        keepalive_s: int = 30,
        checks_per_minute: float = 3.0,
        seed: int = 20,
        trouble: bool = True,
        state_dir: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        only: set[str] | None = None,
    ) -> None:
        self.address = address
        self.public_key_file = public_key_file
        self.prefix = prefix
        self.state_every_s = state_every_s
        self.keepalive_s = keepalive_s
        self.checks_per_minute = checks_per_minute
        self.state_dir = state_dir
        self.clock = clock
        self.wall = wall
        self.rng = random.Random(seed)
        self.sites = layout(devices, self.rng)
        self.devices: list[SimulatedDevice] = []
        now = clock()
        all_ids = [(s, d) for s, ds in self.sites for d in ds]
        troubled = dict(zip(self.rng.sample(all_ids, min(len(all_ids), 3)), ("backlog", "gate", "camera"))) if trouble and len(all_ids) >= 6 else {}
        for site, device in all_ids:
            if only is not None and device not in only:
                continue
            self.devices.append(SimulatedDevice(site, device, random.Random(f"{seed}/{device}"), now, clock, wall, troubled.get((site, device))))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.checks = 0

    def config(self) -> Any:
        from sentinel.fleet.config import FleetConfig

        return FleetConfig(
            type="mqtt", host=self.address.host, port=self.address.port, topic_prefix=self.prefix,
            username=self.address.username or "", password_file=self.address.password_file,
            tls=self.address.cafile is not None, ca_file=self.address.cafile,
            policy_public_key_file=self.public_key_file, state_every_s=self.state_every_s, keepalive_s=self.keepalive_s,
        )  # fmt: skip

    def start(self) -> SimulatedFleet:
        from sentinel.fleet.link import FleetLink

        config = self.config()
        for d in self.devices:
            state_dir = None
            if self.state_dir is not None:
                state_dir = self.state_dir / d.device
                state_dir.mkdir(parents=True, exist_ok=True)
            try:
                d.link = FleetLink(config, site=d.site, device=d.device, state_dir=state_dir, health=d.health,
                                   apply_policy=d.apply_policy, version=SIM_VERSION, clock=self.clock, wall=self.wall)  # fmt: skip
                d.link.start()
            except Exception:
                log.exception("simulated device %s did not start", d.device)
                d.link = None
        self._thread = threading.Thread(target=self._checks, name="fleet-sim-checks", daemon=True)
        self._thread.start()
        return self

    def _checks(self) -> None:
        """Random checks on every device, about `checks_per_minute` each (Poisson), until stop."""
        tick = 0.25
        p = self.checks_per_minute / 60.0 * tick
        kinds = [k for k, _ in MIX]
        weights = [w for _, w in MIX]
        while not self._stop.wait(tick):
            for d in self.devices:
                if d.link is None or d.rng.random() >= p:
                    continue
                kind = d.rng.choices(kinds, weights)[0]
                offline = kind != "decode_failure" and d.trouble == "backlog"  # its service is unreachable
                try:
                    d.link.count(kind, offline=offline)
                except Exception:
                    log.exception("count on %s", d.device)
                    continue
                d.last_check = self.wall()
                self.checks += 1

    def stop(self, timeout_s: float = 2.0) -> None:
        """Every device says goodbye (online=false) and disconnects, many at a time: within about
        `timeout_s` for a few dozen, a few times that for hundreds on a busy machine."""
        from concurrent.futures import ThreadPoolExecutor

        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

        def end(d: SimulatedDevice) -> None:
            try:
                d.link.stop(timeout_s)
            except Exception:
                log.exception("stopping %s", d.device)

        with ThreadPoolExecutor(max_workers=32, thread_name_prefix="fleet-sim-stop") as pool:
            list(pool.map(end, [d for d in self.devices if d.link is not None]))

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- the demo --------------------------------------------------------------------------------------

#: the demo's policy, then the change it publishes half a minute in (the district's NAT window going from 48 to 24 hours)
DEMO_POLICY = PolicyConfig(allowed_colours=["green"], yellow="manual_check", nat_window_h=48, offline="deny")
DEMO_CHANGE = DEMO_POLICY.model_copy(update={"nat_window_h": 24})
CHANGE_AFTER_S = 30.0


def run_demo(
    devices: int,
    *,
    broker: str | None = None,
    listen: str = "127.0.0.1:8090",
    duration: float | None = None,
    state_every_s: float = 10.0,
    change_after_s: float = CHANGE_AFTER_S,
    stop: threading.Event | None = None,
    out=sys.stdout,
) -> int:
    """`sentinel demo --fleet N`: runs until `duration` (seconds), `stop` or Ctrl-C; the exit status."""
    from sentinel.dashboard.broker import MosquittoBroker, find_mosquitto
    from sentinel.dashboard.collector import Collector, FleetView
    from sentinel.dashboard.mqtt import client, connect_and_wait
    from sentinel.dashboard.publisher import keygen, publish_policy
    from sentinel.dashboard.web import DashboardServer
    from sentinel.fleet.protocol import load_public_key

    if devices < 1:
        print("sentinel demo: --fleet needs at least 1 device", file=sys.stderr)
        return 2
    try:
        where = BrokerAddress.parse(listen, port_zero=True)  # the same HOST:PORT grammar
        address = BrokerAddress.parse(broker) if broker is not None else None
    except ValueError as exc:
        print(f"sentinel demo: {exc}", file=sys.stderr)
        return 2
    owned = None
    if broker is None:
        binary, why = find_mosquitto()
        if binary is None:
            print(f"sentinel demo --fleet: {why}, or give a running broker with --broker HOST:PORT", file=sys.stderr)
            return 2
        try:
            owned = MosquittoBroker().start()
        except RuntimeError as exc:
            print(f"sentinel demo --fleet: {exc}", file=sys.stderr)
            return 1
        address = BrokerAddress.parse(owned.address)
    with tempfile.TemporaryDirectory(prefix="sentinel-fleet-demo-") as tmp:
        work = Path(tmp)
        private_path, public_path = keygen(work / "keys")
        private_pem = private_path.read_bytes()
        view = FleetView(public_key=load_public_key(public_path.read_bytes()), quiet_after_s=3 * state_every_s + 30)
        collector = Collector(address, view)
        server = DashboardServer(view, where.host, where.port)
        fleet = SimulatedFleet(address, devices=devices, public_key_file=public_path, state_every_s=state_every_s,
                               checks_per_minute=6.0, state_dir=work / "devices")  # fmt: skip
        publisher = None
        try:
            try:
                collector.start()
                url = server.start()
                publisher = client(address, "sentinel-demo-publisher")
                connect_and_wait(publisher, address)
            except (ConnectionError, OSError) as exc:
                print(f"sentinel demo --fleet: {exc}", file=sys.stderr)
                return 1
            print(f"fleet dashboard: {url}  (broker {address}, {devices} simulated sentinels in {len(fleet.sites)} sites; "
                  "checks arrive once a minute; Ctrl-C to stop)", file=out, flush=True)  # fmt: skip
            for site, _ in fleet.sites:
                publish_policy(publisher, site=site, version=1, private_key_pem=private_pem, policy=DEMO_POLICY)
            fleet.start()
            started = time.monotonic()
            changed = False
            stop = stop or threading.Event()
            while (duration is None or time.monotonic() - started < duration) and not stop.wait(0.5):
                if not changed and time.monotonic() - started > change_after_s:
                    for site, _ in fleet.sites:
                        publish_policy(publisher, site=site, version=2, private_key_pem=private_pem, policy=DEMO_CHANGE)
                    print("published policy v2 to every site (NAT window 48 h -> 24 h): watch the policy column", file=out, flush=True)
                    changed = True
        except KeyboardInterrupt:
            pass
        finally:
            fleet.stop()
            if publisher is not None:
                publisher.disconnect()
                publisher.loop_stop()
            server.stop()
            collector.stop()
            if owned is not None:
                owned.stop()
    return 0


# -- devices alone, in a process of their own -------------------------------------------------------


def fast_wall(speed: float, start: datetime | None = None) -> Callable[[], datetime]:
    """A UTC wall clock that runs `speed` times faster than real time from `start` (default now):
    compressed minutes for benches (speed 1 is the real clock)."""
    if speed == 1.0 and start is None:
        return lambda: datetime.now(UTC)
    origin, t0 = start or datetime.now(UTC), time.monotonic()
    return lambda: origin + timedelta(seconds=(time.monotonic() - t0) * speed)



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sentinel.dashboard.simulate", description="simulated sentinels against a broker")
    parser.add_argument("--broker", required=True, help="HOST:PORT")
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--only", action="append", help="run only this device id of the layout (repeatable)")
    parser.add_argument("--public-key", type=Path)
    parser.add_argument("--prefix", default="sentinel")
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--state-every", type=float, default=5.0)
    parser.add_argument("--keepalive", type=int, default=5)
    parser.add_argument("--checks-per-minute", type=float, default=6.0, help="per device, in the devices' (possibly fast) minutes")
    parser.add_argument("--speed", type=float, default=1.0, help="the devices' wall clock runs this many times faster (a minute's counters every 60/SPEED s)")
    parser.add_argument("--shard", default="0/1", metavar="I/K", help="run only every K-th device of the layout, from the I-th")
    args = parser.parse_args(argv)
    shard, shards = (int(x) for x in args.shard.split("/"))
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    ids = [d for _, ds in layout(args.devices, random.Random(args.seed)) for d in ds]
    only = set(args.only) if args.only else set(ids[shard::shards]) if shards > 1 else None
    fleet = SimulatedFleet(BrokerAddress.parse(args.broker), devices=args.devices, public_key_file=args.public_key, prefix=args.prefix,
                           seed=args.seed, state_every_s=args.state_every, keepalive_s=args.keepalive, wall=fast_wall(args.speed),
                           checks_per_minute=args.checks_per_minute * args.speed, only=only)  # fmt: skip
    fleet.start()
    print("started " + " ".join(d.device for d in fleet.devices if d.link is not None), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fleet.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

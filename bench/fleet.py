"""300 sentinels and one broker: what a district's Mosquitto holds, what the dashboard's collector
costs, and how long a policy change takes to reach every device (issue 20; goal: every device
acknowledges within 5 s).

    .venv/bin/python bench/fleet.py [--devices 300] [--processes 3] [--speed 12] [--window 60] [--json OUT]
    .venv/bin/python bench/fleet.py --screenshot docs/img/fleet-dashboard.png [--devices 20]

The devices are real `FleetLink`s (sentinel/dashboard/simulate.py) in `--processes` child processes
(so the bench process holds only the collector), against a throwaway Mosquitto on loopback
(sentinel/dashboard/broker.py). Time is compressed: the devices' wall clock runs `--speed` times
faster, so each sends its minute's counters every 60/speed seconds, and its state every 5 s (the
shortest `state_every_s`); at speed 12 the message rate is that of 12 × 300 devices reporting every
minute, so the broker's and the collector's costs per real minute are the figures ÷ 12.

Measured: the time until all devices are online on the dashboard; over `--window` seconds of steady
reporting, the broker's CPU (from /proc) and the collector's (this process's CPU time: it does
nothing else but one `snapshot()` a second, as one browser would cause), messages per second and
the collector's cost per message; the broker's RSS idle and with every client; `snapshot()`'s time
and JSON size; then two policy changes (v1, then v2: the NAT window from 48 to 24 h), each
published to every site, and the time from the first publish until the collector has seen every
device acknowledge it (p50, p95, max over devices).

`--screenshot PATH` instead runs `--devices` (default 20) devices in this process, with a policy
published, one device killed, one refusing a rogue-signed policy, and a few minutes of checks, and
saves the dashboard as headless chromium shows it (1600 px wide), for docs/img/.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sentinel.config import PolicyConfig
from sentinel.dashboard.broker import MosquittoBroker, find_mosquitto
from sentinel.dashboard.collector import Collector, FleetView
from sentinel.dashboard.mqtt import BrokerAddress, client, connect_and_wait
from sentinel.dashboard.publisher import keygen, publish_policy
from sentinel.dashboard.simulate import SimulatedFleet, fast_wall, layout
from sentinel.dashboard.web import DashboardServer
from sentinel.fleet.protocol import load_public_key

POLICY_V1 = PolicyConfig(allowed_colours=["green"], yellow="manual_check", nat_window_h=48, offline="deny")
POLICY_V2 = POLICY_V1.model_copy(update={"nat_window_h": 24})


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait(condition, timeout: float, what: str, step: float = 0.05) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise SystemExit(f"bench/fleet.py: timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)
    return time.monotonic() - start


def policy_round(view: FleetView, publisher, sites: list[str], version: int, policy: PolicyConfig, key: bytes, n: int) -> dict:
    """Publish `version` to every site; seconds from the first publish to each device's ack."""
    seen: dict[str, float] = {}
    t0 = time.monotonic()
    for site in sites:
        publish_policy(publisher, site=site, version=version, private_key_pem=key, policy=policy)
    published_s = time.monotonic() - t0
    while len(seen) < n:
        now = time.monotonic() - t0
        for d in view.snapshot()["devices"]:
            if d["policy_version"] == version and d["device"] not in seen:
                seen[d["device"]] = now
        if now > 120:
            raise SystemExit(f"bench/fleet.py: only {len(seen)} of {n} devices acknowledged v{version} within 120 s")
        time.sleep(0.02)
    times = sorted(seen.values())
    return {"version": version, "sites": len(sites), "publish_all_s": round(published_s, 3), "p50_s": round(statistics.median(times), 3),
            "p95_s": round(times[int(0.95 * (len(times) - 1))], 3), "max_s": round(times[-1], 3)}


def bench(args: argparse.Namespace) -> dict:
    n = args.devices
    tmp = Path(tempfile.mkdtemp(prefix="sentinel-bench-fleet-"))
    private, public = keygen(tmp / "keys")
    key = private.read_bytes()
    sites = [s for s, _ in layout(n, random.Random(20))]
    broker = MosquittoBroker().start()
    children: list[subprocess.Popen] = []
    try:
        time.sleep(0.5)
        out: dict = {"devices": n, "sites": len(sites), "processes": args.processes, "speed": args.speed, "window_s": args.window,
                     "broker_rss_idle_mb": round(rss_mb(broker.process.pid), 1)}  # fmt: skip
        address = BrokerAddress.parse(broker.address)
        view = FleetView(public_key=load_public_key(public.read_bytes()), wall=fast_wall(args.speed), quiet_after_s=3600)
        collector = Collector(address, view)
        collector.start()
        publisher = client(address, "bench-publisher")
        connect_and_wait(publisher, address)
        for i in range(args.processes):
            children.append(subprocess.Popen(
                [sys.executable, "-m", "sentinel.dashboard.simulate", "--broker", broker.address, "--devices", str(n),
                 "--shard", f"{i}/{args.processes}", "--public-key", str(public), "--state-every", "5", "--keepalive", "30",
                 "--speed", str(args.speed), "--checks-per-minute", "6"],
                cwd=ROOT, stdout=subprocess.DEVNULL))  # fmt: skip
        out["all_online_s"] = round(wait(lambda: view.snapshot()["headline"]["online"] >= n, 180, f"{n} devices online", 0.2), 1)
        print(f"{n} devices online after {out['all_online_s']} s", file=sys.stderr)
        time.sleep(5)  # past the connection burst
        out["policy"] = [policy_round(view, publisher, sites, 1, POLICY_V1, key, n)]
        print(f"policy v1: {out['policy'][0]}", file=sys.stderr)
        # steady reporting
        b0, c0, k0 = cpu_s(broker.process.pid), time.process_time(), [cpu_s(c.pid) for c in children]
        m0 = view.snapshot()["messages"]["accepted"]
        w0 = time.monotonic()
        snap_times, size = [], 0
        while time.monotonic() - w0 < args.window:
            s0 = time.perf_counter()
            body = json.dumps(view.snapshot(), separators=(",", ":"))
            snap_times.append(time.perf_counter() - s0)
            size = len(body)
            time.sleep(max(0.0, 1.0 - (time.perf_counter() - s0)))
        elapsed = time.monotonic() - w0
        b1, c1, k1 = cpu_s(broker.process.pid), time.process_time(), [cpu_s(c.pid) for c in children]
        m1 = view.snapshot()["messages"]["accepted"]
        messages = m1 - m0
        collector_cpu = (c1 - c0) - sum(snap_times)
        out.update({
            "messages_per_s": round(messages / elapsed, 1),
            "broker_cpu_pct": round(100 * (b1 - b0) / elapsed, 1),
            "broker_rss_mb": round(rss_mb(broker.process.pid), 1),
            "collector_cpu_pct": round(100 * collector_cpu / elapsed, 1),
            "collector_us_per_message": round(1e6 * collector_cpu / max(1, messages), 1),
            "collector_rss_mb": round(rss_mb(os.getpid()), 1),
            "snapshot_ms": round(1000 * statistics.median(snap_times), 1),
            "snapshot_kb": round(size / 1024, 1),
            "simulator_cpu_pct": round(100 * sum(b - a for a, b in zip(k0, k1)) / elapsed, 1),
            "scans_to_date": view.snapshot()["headline"]["scans_to_date"],
            "dropped": view.snapshot()["messages"]["dropped"],
        })  # fmt: skip
        out["policy"].append(policy_round(view, publisher, sites, 2, POLICY_V2, key, n))
        print(f"policy v2: {out['policy'][1]}", file=sys.stderr)
        out["broker_rss_mb"] = max(out["broker_rss_mb"], round(rss_mb(broker.process.pid), 1))
        publisher.disconnect()
        publisher.loop_stop()
        collector.stop()
        return out
    finally:
        for c in children:
            if c.poll() is None:
                c.send_signal(signal.SIGINT)
        for c in children:
            try:
                c.wait(30)
            except subprocess.TimeoutExpired:
                c.kill()
        broker.stop()


def screenshot(args: argparse.Namespace) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from sentinel.dashboard.simulate import DEMO_POLICY

    tmp = Path(tempfile.mkdtemp(prefix="sentinel-fleet-shot-"))
    private, public = keygen(tmp / "keys")
    rogue, _ = keygen(tmp / "rogue")
    # half a minute of checks per second, from 09:00 UTC today (no midnight in the picture)
    wall = fast_wall(30.0, datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0))
    with MosquittoBroker() as broker:
        address = BrokerAddress.parse(broker.address)
        view = FleetView(public_key=load_public_key(public.read_bytes()), wall=wall, quiet_after_s=3600)
        collector = Collector(address, view)
        collector.start()
        server = DashboardServer(view, port=0)
        url = server.start()
        publisher = client(address, "shot-publisher")
        connect_and_wait(publisher, address)
        fleet = SimulatedFleet(address, devices=args.devices, public_key_file=public, state_every_s=5, keepalive_s=5, wall=wall,
                               checks_per_minute=6 * 30, state_dir=tmp / "devices").start()  # fmt: skip
        for site, _ in fleet.sites:
            publish_policy(publisher, site=site, version=1, private_key_pem=private.read_bytes(), policy=DEMO_POLICY)
        wait(lambda: view.snapshot()["headline"]["online"] >= args.devices, 120, "devices online")
        wait(lambda: all(d["policy_version"] == 1 for d in view.snapshot()["devices"]), 60, "v1 everywhere")
        for site, _ in fleet.sites[:-1]:
            publish_policy(publisher, site=site, version=2, private_key_pem=private.read_bytes(), policy=DEMO_POLICY.model_copy(update={"nat_window_h": 24}))
        last_site = fleet.sites[-1][0]
        publish_policy(publisher, site=last_site, version=2, private_key_pem=rogue.read_bytes(), policy=DEMO_POLICY)
        time.sleep(12)  # a few (fast) minutes of checks
        victim = next(d for d in fleet.devices if d.trouble is None and d.site != last_site)
        victim.link.stop(1.0)  # a device switched off: offline on the page
        victim.link = None
        time.sleep(4)
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for a in ("--headless=new", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1600,1200", "--hide-scrollbars"):
            options.add_argument(a)
        if os.geteuid() == 0:
            options.add_argument("--no-sandbox")
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        try:
            driver.get(url)
            time.sleep(2.5)
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(1600, min(max(height + 20, 600), 4000))
            time.sleep(1.5)
            Path(args.screenshot).parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(args.screenshot))
        finally:
            driver.quit()
            fleet.stop(1.0)
            publisher.disconnect()
            publisher.loop_stop()
            server.stop()
            collector.stop()
    print(f"saved {args.screenshot}", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int)
    parser.add_argument("--processes", type=int, default=3, help="child processes the devices are spread over")
    parser.add_argument("--speed", type=float, default=12.0, help="the devices' clock runs this many times faster")
    parser.add_argument("--window", type=float, default=60.0, help="seconds of steady reporting measured")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument("--screenshot", type=Path, help="save the dashboard with --devices (default 20) devices as a PNG instead")
    args = parser.parse_args()
    binary, why = find_mosquitto()
    if binary is None:
        print(f"bench/fleet.py: {why}", file=sys.stderr)
        return 2
    if args.screenshot:
        args.devices = args.devices or 20
        screenshot(args)
        return 0
    args.devices = args.devices or 300
    out = bench(args)
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

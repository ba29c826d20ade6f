"""Telemetry overhead per check on the device (issue 20): what a FleetLink adds to a check.

    .venv/bin/python bench/fleet_device.py [--calls 200000] [--rounds 4] [--json]

A check reaches the fleet link through the kiosk's on_outcome chain (build_kiosk's
`chain_outcomes`, sentinel/kiosk_parts.py): `ServiceContact.observe_outcome` first, then
`FleetLink.observe_outcome`. Measured side by side, the same chain of real objects with and
without the link attached, on real `CheckOutcome`s (a mix of pass, deny, staff check, offline
verdicts and refused payloads), in interleaved batches of BATCH calls (without, with, with,
without, ...) so both see the same machine; the median batch's mean per call is reported (a batch
the scheduler preempted on a busy machine does not count), and the fastest batch's. Then the
link's cost per call in the states it can be in, each against a real
Mosquitto broker (tests/mosquitto.py, a free loopback port):

- connected, idle (the sender thread wakes every TICK_S; counters once a minute);
- the broker down (paho retrying in the background, messages buffered);
- the broker back with a full buffer being flushed (`buffer_max` minutes of counters handed to
  paho while the checks go on): the worst moment for the check's thread, since the sender and
  paho's threads then compete with it for the GIL. Per-call p50 / p99 / max are timed one call at
  a time there.

And the link's own threads' CPU (the sender and paho's loop, read from /proc/self/task) over a
window while connected, per minute. The goal (issue 20): invisible next to a verdict, < 1 % of a
check's 7-15 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CHECK_MS = (7.0, 15.0)  # a verdict's time on this machine (docs/benchmarks.md): the yardstick


def outcomes(n: int) -> list:
    from sentinel.pipeline import CheckOutcome
    from sentinel.policy import Verdict, VerdictKind

    kinds = [
        CheckOutcome("health_code", "green", Verdict(VerdictKind.PASS, "ok"), False, 0.01, "r", person="张*"),
        CheckOutcome("health_code", "red", Verdict(VerdictKind.DENY, "red_code"), False, 0.01, "r"),
        CheckOutcome("id_number", "yellow", Verdict(VerdictKind.MANUAL_CHECK, "yellow_code"), False, 0.01, "r"),
        CheckOutcome("health_code", None, Verdict(VerdictKind.PASS, "ok"), True, 0.01, "r"),
        CheckOutcome(None, None, Verdict(VerdictKind.DENY, "unrecognised"), False, 0.01, None),
    ]
    return [kinds[i % len(kinds)] for i in range(n)]


def chain(link) -> object:
    from sentinel.heartbeat import ServiceContact

    try:
        from sentinel.kiosk_parts import chain_outcomes  # build_kiosk's outcome chain
    except ImportError:
        from sentinel.kiosk import _chain as chain_outcomes  # before kiosk_parts.py

    contact = ServiceContact()
    return chain_outcomes(contact.observe_outcome, link.observe_outcome if link is not None else None)


BATCH = 1000  # calls timed together; the median batch is reported, so a batch the scheduler preempted does not count


def batch_means_ns(listener, items: list) -> list[float]:
    clock = time.perf_counter_ns
    means = []
    for i in range(0, len(items) - BATCH + 1, BATCH):
        batch = items[i:i + BATCH]
        started = clock()
        for o in batch:
            listener(o)
        means.append((clock() - started) / BATCH)
    return means


def mean_ns(listener, items: list) -> float:
    """The median over batches of the mean time per call."""
    return statistics.median(batch_means_ns(listener, items))


def side_by_side_ns(a, b, items: list, rounds: int) -> tuple[float, float, float, float]:
    """Median and fastest batch time of `a` and `b` (a median, b median, a min, b min), batches
    interleaved (a b b a ...) so both see the same machine."""
    out_a: list[float] = []
    out_b: list[float] = []
    for r in range(rounds):
        for i in range(0, len(items) - BATCH + 1, BATCH):
            batch = items[i:i + BATCH]
            pair = [(a, out_a), (b, out_b)] if (r + i // BATCH) % 2 == 0 else [(b, out_b), (a, out_a)]
            for listener, out in pair:
                out += batch_means_ns(listener, batch)
    return statistics.median(out_a), statistics.median(out_b), min(out_a), min(out_b)


def one_by_one_us(listener, items: list) -> list[float]:
    out = []
    clock = time.perf_counter_ns
    for o in items:
        t = clock()
        listener(o)
        out.append((clock() - t) / 1000)
    return out


def thread_cpu_s(native_ids: list[int]) -> float:
    """CPU time of these threads so far, from the scheduler's own account (ns, not clock ticks)."""
    total = 0
    for tid in native_ids:
        try:
            total += int(Path(f"/proc/self/task/{tid}/schedstat").read_text().split()[0])
        except OSError:
            continue
    return total / 1e9


def make_link(broker, buffer_max: int = 1440):
    from sentinel.fleet.config import FleetConfig
    from sentinel.fleet.link import FleetLink

    health = {"outbox": {"depth": 0, "oldest_age_s": None}, "uptime_s": 1.0, "alarms": [], "camera": "ok", "gate": "closed"}
    config = FleetConfig(type="mqtt", host=broker.host, port=broker.port, keepalive_s=10, buffer_max=buffer_max)
    return FleetLink(config, site="bench-site", device="bench-dev", state_dir=None, health=lambda: health, apply_policy=lambda p: None)


def wait(condition, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise SystemExit("timed out: is the broker working?")
        time.sleep(0.01)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200_000, help="outcomes per round (default 200000)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds each way (default 4)")
    parser.add_argument("--cpu-window", type=float, default=20.0, help="seconds to read the link's threads' CPU over (default 20)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from tests.mosquitto import MosquittoBroker, find_mosquitto

    binary, why = find_mosquitto()
    if binary is None:
        raise SystemExit(why)
    items = outcomes(args.calls)
    result: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
                    "calls": args.calls, "rounds": args.rounds}
    with MosquittoBroker() as broker:
        link = make_link(broker)
        link.start()
        wait(lambda: link.status()["connected"])
        without, with_link = chain(None), chain(link)
        (result["chain_without_ns"], result["chain_with_ns"],
         result["chain_without_min_ns"], result["chain_with_min_ns"]) = side_by_side_ns(without, with_link, items, args.rounds)
        result["count_connected_ns"] = mean_ns(lambda o: link.count("pass"), items * args.rounds)
        result["observe_connected_ns"] = mean_ns(link.observe_outcome, items * args.rounds)

        # the link's own threads while connected (and counting at a busy gate's pace: one check a second)
        ids = [link._thread.native_id, link._client._thread.native_id]
        cpu0, t0 = thread_cpu_s(ids), time.monotonic()
        end = t0 + args.cpu_window
        while time.monotonic() < end:
            link.observe_outcome(items[0])
            time.sleep(1.0)
        result["threads_cpu_ms_per_min"] = (thread_cpu_s(ids) - cpu0) / (time.monotonic() - t0) * 60 * 1000

        broker.pause()
        wait(lambda: not link.status()["connected"])
        result["observe_broker_down_ns"] = mean_ns(link.observe_outcome, items * args.rounds)
        link.stop()

        # the worst moment: a full buffer flushed while checks go on
        wall = [datetime(2026, 11, 25, 8, 0, tzinfo=UTC)]
        from sentinel.fleet.config import FleetConfig
        from sentinel.fleet.link import FleetLink

        config = FleetConfig(type="mqtt", host=broker.host, port=broker.port, keepalive_s=10, buffer_max=1440)
        flushing = FleetLink(config, site="bench-site", device="bench-flush", state_dir=None, health=dict, apply_policy=lambda p: None,
                             wall=lambda: wall[0])
        flushing.start()
        for _ in range(1440):  # a day of minutes with checks while the broker was away
            flushing.count("pass")
            wall[0] += timedelta(minutes=1)
        wait(lambda: flushing.status()["buffered"] >= 1440)
        broker.start()
        samples: list[float] = []
        started = time.monotonic()
        while flushing.status()["buffered"] and time.monotonic() - started < 60:
            samples += one_by_one_us(flushing.observe_outcome, items[:2000])
        result["flush_s"] = time.monotonic() - started
        result["flush_samples"] = len(samples)
        samples.sort()
        result["observe_flushing_us"] = {"p50": samples[len(samples) // 2], "p99": samples[int(len(samples) * 0.99)], "max": samples[-1]}
        flushing.stop()
        # the same one-by-one timing, as many calls, without a link, for comparison
        idle: list[float] = []
        while len(idle) < len(samples):
            idle += one_by_one_us(without, items[:2000])
        idle.sort()
        result["chain_without_one_by_one_us"] = {"p50": idle[len(idle) // 2], "p99": idle[int(len(idle) * 0.99)], "max": idle[-1]}

    overhead_ns = result["chain_with_ns"] - result["chain_without_ns"]
    result["overhead_per_check_ns"] = overhead_ns
    result["overhead_percent"] = {f"{ms:g} ms": overhead_ns / (ms * 1e6) * 100 for ms in CHECK_MS}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    load = os.getloadavg()[0]
    print(f"machine: {result['machine']}, load average {load:.1f} at the end; {args.calls} outcomes x {args.rounds} rounds each way")
    print("| measure | value |")
    print("|---|---|")
    print(f"| on_outcome chain without a fleet link (ServiceContact only), per check, median (fastest) batch | "
          f"{result['chain_without_ns'] / 1000:.2f} ({result['chain_without_min_ns'] / 1000:.2f}) µs |")
    print(f"| the same chain with FleetLink.observe_outcome attached, per check, median (fastest) batch | "
          f"{result['chain_with_ns'] / 1000:.2f} ({result['chain_with_min_ns'] / 1000:.2f}) µs |")
    print(f"| **overhead per check** | **{overhead_ns / 1000:.2f} µs = "
          + " / ".join(f"{p:.3f} % of a {k} check" for k, p in result["overhead_percent"].items()) + "** |")
    fast = (result["chain_with_min_ns"] - result["chain_without_min_ns"]) / 1000
    print(f"| overhead per check, fastest batches (the CPU cost without preemption) | {fast:.2f} µs = "
          f"{fast / (CHECK_MS[0] * 1000) * 100:.3f} % of a {CHECK_MS[0]:g} ms check |")
    print(f"| FleetLink.count(), connected | {result['count_connected_ns'] / 1000:.2f} µs |")
    print(f"| FleetLink.observe_outcome(), connected | {result['observe_connected_ns'] / 1000:.2f} µs |")
    print(f"| FleetLink.observe_outcome(), broker down (buffering) | {result['observe_broker_down_ns'] / 1000:.2f} µs |")
    f = result["observe_flushing_us"]
    print(f"| observe_outcome() while 1,440 buffered minutes are flushed ({result['flush_s']:.1f} s), p50 / p99 / max | "
          f"{f['p50']:.2f} / {f['p99']:.2f} / {f['max']:.0f} µs |")
    g = result["chain_without_one_by_one_us"]
    print(f"| chain without a link, timed one by one, as many calls, p50 / p99 / max | {g['p50']:.2f} / {g['p99']:.2f} / {g['max']:.0f} µs |")
    print(f"| the link's threads (sender + paho loop), connected, one check/s | {result['threads_cpu_ms_per_min']:.1f} ms CPU per minute |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The reference service under a district's load: N simulated devices against SQLite or PostgreSQL,
with 1, 2 or 4 service processes (issue 21).

Each simulated device does what a kiosk at a busy entrance does: one `POST /v1/verify` every
`--interval` seconds (2 s: one person checked every 2 s), one `POST /v1/records` batch every
`--batch-every` seconds with the records of its checks since the last batch, and one heartbeat a
minute. Devices start at random offsets within one interval, so the load is even rather than in
bursts. The service runs as `--workers` separate `sentinel service` processes on one database
(a SQLite file, or one database of a throwaway PostgreSQL server from tests/postgres.py, or
`--pg-url`), each on its own loopback port; device i talks to process i mod workers, as behind a
load balancer. Each device has its own token and keep-alive session.

    .venv/bin/python bench/service.py [--stores sqlite,postgresql] [--workers 1,2,4] [--devices 10,300]
                                      [--duration 20] [--stored 0] [--pg-url URL] [--json]

Measured per run: verifies/s and records/s actually answered (200) over the run, p50/p99 of the
request latency (send to answer) for verifies and record batches, errors (non-200 or no answer
within 5 s), and how many actions started more than 100 ms late (the load generator itself fell
behind: then the figures understate the service). The load generator shares the machine with the
service (on the bench's 2 cores that is a real cost: the numbers are for one small machine).
`--stored N` puts N generated records in the database first (not counted), to see the listing
and insert paths with a populated table; large N takes long to generate.
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import requests
import uuid6

from sentinel.contract import RecordIn
from sentinel.demo_data import demo_person
from sentinel.service.seed import DEMO_SITE, SEEDS
from sentinel.service.store import Store

ADMIN = "adm_bench-service-000000000000000000000000"
TIMEOUT_S = 5.0
LATE_S = 0.1
HEARTBEAT_EVERY_S = 60.0
THREADS = 48


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def record_body(device_id: str, when: datetime) -> dict:
    return {
        "id": str(uuid6.uuid7()), "created_at": when.isoformat(), "device_id": device_id, "site_id": DEMO_SITE.id,
        "credential_kind": "health_code", "credential_hash": uuid.uuid4().hex * 2,
        "person": {"name_masked": "王*明", "id_masked": "1101**********002X"},
        "status": "green", "verdict": "pass", "reason": "ok", "mode": "online", "extra": {"verify_ms": 12},
    }  # fmt: skip


def prepare(db: str, devices: int, stored: int) -> list[tuple[str, str]]:
    """Seed the demo world, bind `devices` bench devices, and store `stored` generated records."""
    store = Store(db)
    try:
        now = datetime.now(UTC)
        SEEDS["demo"](store, now)
        made = []
        for n in range(devices):
            device_id, token = f"bench-{n:04d}", f"sdt_bench-{n:04d}-{uuid.uuid4().hex}"
            store.set_device(device_id, DEMO_SITE.id, token, now)
            made.append((device_id, token))
        for start in range(0, stored, 500):
            batch = [RecordIn.model_validate(record_body(made[(start + i) % len(made)][0], now - timedelta(days=1)))
                     for i in range(min(500, stored - start))]  # fmt: skip
            store.add_records(batch, now)
        return made
    finally:
        store.close()


def start_services(db: str, workers: int, token_file: Path, log: Path) -> tuple[list[subprocess.Popen], list[str]]:
    procs, urls = [], []
    with open(log, "ab") as out:
        for _ in range(workers):
            port = free_port()
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "sentinel", "-q", "service", "--db", db, "--port", str(port),
                 "--admin-token-file", str(token_file), "--retention-days", "0"],
                cwd=REPO, stdout=subprocess.DEVNULL, stderr=out))  # fmt: skip
            urls.append(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 60
    for proc, url in zip(procs, urls):
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"a service process exited ({proc.returncode}); see {log}")
            try:
                if requests.get(url + "/healthz", timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the service did not start; see {log}")
            time.sleep(0.1)
    return procs, urls


def stop_services(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Tally:
    verify: list[float] = field(default_factory=list)
    records: list[float] = field(default_factory=list)
    heartbeat: list[float] = field(default_factory=list)
    records_stored: int = 0
    errors: int = 0
    late: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def drive(devices: list[tuple[str, str]], urls: list[str], args, tally: Tally, stop_at: float, rng: random.Random) -> None:
    """One generator thread: its share of the devices, each action at its due time."""
    token_of = {}
    sessions = {}
    due: list[tuple[float, int, str, str]] = []
    pending: dict[str, list[dict]] = {}
    start = time.monotonic()
    for n, (device_id, token) in enumerate(devices):
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        sessions[device_id], token_of[device_id] = session, token
        pending[device_id] = []
        offset = rng.uniform(0, args.interval)
        heapq.heappush(due, (start + offset, n, device_id, "verify"))
        heapq.heappush(due, (start + offset + rng.uniform(0, args.batch_every), n, device_id, "records"))
        heapq.heappush(due, (start + rng.uniform(0, HEARTBEAT_EVERY_S), n, device_id, "heartbeat"))
    url_of = {device_id: urls[int(device_id.split("-")[1]) % len(urls)] for device_id, _ in devices}
    token = demo_person("green").token
    while due:
        at, n, device_id, action = heapq.heappop(due)
        if at >= stop_at:
            continue
        wait = at - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        elif -wait > LATE_S:
            with tally.lock:
                tally.late += 1
        session, url = sessions[device_id], url_of[device_id]
        sent = time.monotonic()
        ok, stored = False, 0
        try:
            if action == "verify":
                body = {"device_id": device_id, "site_id": DEMO_SITE.id, "credential": {"kind": "health_code", "value": token},
                        "scanned_at": datetime.now(UTC).isoformat()}  # fmt: skip
                answer = session.post(f"{url}/v1/verify", json=body, timeout=TIMEOUT_S)
                ok = answer.status_code == 200
                if ok:
                    pending[device_id].append(record_body(device_id, datetime.now(UTC)))
                nxt = args.interval
            elif action == "records":
                batch, pending[device_id] = pending[device_id], []
                answer = session.post(f"{url}/v1/records", json={"records": batch}, timeout=TIMEOUT_S)
                ok = answer.status_code == 200
                stored = len(answer.json().get("accepted", [])) if ok else 0
                if not ok:
                    pending[device_id] = batch + pending[device_id]
                nxt = args.batch_every
            else:
                answer = session.post(f"{url}/v1/devices/{device_id}/heartbeat", json={"version": "bench", "queue_depth": 0}, timeout=TIMEOUT_S)
                ok = answer.status_code == 200
                nxt = HEARTBEAT_EVERY_S
        except requests.RequestException:
            nxt = {"verify": args.interval, "records": args.batch_every}.get(action, HEARTBEAT_EVERY_S)
        took = time.monotonic() - sent
        with tally.lock:
            if ok:
                getattr(tally, action).append(took)
                tally.records_stored += stored
            else:
                tally.errors += 1
        heapq.heappush(due, (at + nxt, n, device_id, action))


def run_one(store_kind: str, workers: int, n_devices: int, args, pg) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench-service-"))
    db = str(tmp / "service.db") if store_kind == "sqlite" else (args.pg_url or pg.new_database())
    token_file = tmp / "admin-token"
    token_file.write_text(ADMIN + "\n")
    token_file.chmod(0o600)
    devices = prepare(db, n_devices, args.stored)
    procs, urls = start_services(db, workers, token_file, tmp / "service.log")
    tally = Tally()
    try:
        stop_at = time.monotonic() + args.duration
        threads = []
        shares = [devices[i::THREADS] for i in range(min(THREADS, len(devices)))]
        began = time.monotonic()
        for i, share in enumerate(shares):
            thread = threading.Thread(target=drive, args=(share, urls, args, tally, stop_at, random.Random(i)), daemon=True)
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - began
    finally:
        stop_services(procs)
    return {
        "store": store_kind, "workers": workers, "devices": n_devices, "stored_before": args.stored, "seconds": round(elapsed, 1),
        "verifies_per_s": round(len(tally.verify) / elapsed, 1), "records_per_s": round(tally.records_stored / elapsed, 1),
        "verify_p50_ms": round(percentile(tally.verify, 50) * 1000, 1), "verify_p99_ms": round(percentile(tally.verify, 99) * 1000, 1),
        "batch_p50_ms": round(percentile(tally.records, 50) * 1000, 1), "batch_p99_ms": round(percentile(tally.records, 99) * 1000, 1),
        "heartbeats": len(tally.heartbeat), "errors": tally.errors, "late": tally.late,
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--devices", default="10,300")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load per run")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between one device's verifies")
    parser.add_argument("--batch-every", type=float, default=10.0, help="seconds between one device's record uploads")
    parser.add_argument("--stored", type=int, default=0, help="records generated into the database before the run")
    parser.add_argument("--pg-url", help="an existing PostgreSQL database (emptied by nobody: use a scratch one)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    stores = args.stores.split(",")
    pg = None
    if "postgresql" in stores and not args.pg_url:
        from tests.postgres import PostgresServer, find_binaries

        if find_binaries()[0] is None:
            print(f"skipping postgresql: {find_binaries()[1]}", file=sys.stderr)
            stores.remove("postgresql")
        else:
            pg = PostgresServer().start()
    rows = []
    try:
        for store_kind in stores:
            for workers in (int(w) for w in args.workers.split(",")):
                for n_devices in (int(d) for d in args.devices.split(",")):
                    row = run_one(store_kind, workers, n_devices, args, pg)
                    rows.append(row)
                    print(json.dumps(row) if args.json else
                          f"{row['store']:<10} {row['workers']} worker(s) {row['devices']:>5} devices: {row['verifies_per_s']:>7} verifies/s "
                          f"p50 {row['verify_p50_ms']} ms p99 {row['verify_p99_ms']} ms; {row['records_per_s']:>7} records/s "
                          f"batch p50 {row['batch_p50_ms']} ms p99 {row['batch_p99_ms']} ms; errors {row['errors']} late {row['late']}",
                          flush=True)  # fmt: skip
    finally:
        if pg is not None:
            pg.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

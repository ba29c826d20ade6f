"""The reference service under a district's load: N simulated devices against SQLite or PostgreSQL,
with 1, 2 or 4 service processes (issue 21).

Each simulated device does what a kiosk at a busy entrance does: one `POST /v1/verify` every
`--interval` seconds (2 s: one person checked every 2 s), one `POST /v1/records` batch every
`--batch-every` seconds with the records of its checks since the last batch, and one heartbeat a
minute. Devices start at random offsets within one interval, so the load is even rather than in
bursts. The service runs as `--workers` separate `sentinel service` processes on one database
(a SQLite file, or one database of a kept PostgreSQL cluster started by tests/postgres.py, fsync
off), each on its own loopback port; device i talks to process i mod workers, as behind a
load balancer. Each device has its own token and keep-alive session. The devices are split over
`--generators` processes (default 2) of threads, so that one process's GIL is not part of every
latency measured.

    .venv/bin/python bench/service.py [--stores sqlite,postgresql] [--workers 1,2,4] [--devices 10,300,1000]
                                      [--stored 1,1000000,10000000] [--duration 20] [--generators 2] [--explain] [--json]

Measured per run: verifies/s and records/s actually answered (200) over the run, p50/p99 of the
request latency (send to answer) for verifies and record batches, errors (non-200 or no answer
within 5 s), how many actions started more than 100 ms late (the load generator itself fell
behind: then the figures understate the service), a device's first page of its own records
after the load (`GET /v1/records`, p50 of 20), and the machine's load average. The load generator
shares the machine with the service (on the bench's 2 cores that is a real cost).

`--stored N` runs against a database holding N records first: 1,000 bench devices bound with the
same tokens every time and N check records over the 30 days before, generated in SQL (seconds per
million on a quiet machine) and cached under ~/.cache/sentinel/bench-service/ (SQLite files; a kept
PostgreSQL cluster, in /var/tmp/sentinel-bench-service/ when run as root, since the server runs as
`nobody` and cannot enter /root; $SENTINEL_BENCH_CACHE moves both). What a run adds is deleted
after it, so the cache stays at N. `--explain` prints, instead of loading, the plans and times of
a device's first page (the store's own query, `Store.records_query`) and of one day's purge.
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import json
import os
import random
import sqlite3
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
from sentinel.service.store import Store, utc_text
from sentinel.service.store.schema import KIND_TABLES, MIGRATIONS, migration_sql
from tests.postgres import free_port, stop_processes

ADMIN = "adm_bench-service-000000000000000000000000"
TIMEOUT_S = 5.0
LATE_S = 0.1
HEARTBEAT_EVERY_S = 60.0
THREADS = 48
MAX_DEVICES = 1000
LISTINGS = 20
CACHE = Path(os.environ.get("SENTINEL_BENCH_CACHE", Path.home() / ".cache" / "sentinel" / "bench-service"))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def record_body(device_id: str, when: datetime) -> dict:
    return {
        "id": str(uuid6.uuid7()), "created_at": when.isoformat(), "device_id": device_id, "site_id": DEMO_SITE.id,
        "credential_kind": "health_code", "credential_hash": uuid.uuid4().hex * 2,
        "person": {"name_masked": "王*明", "id_masked": "1101**********002X"},
        "status": "green", "verdict": "pass", "reason": "ok", "mode": "online", "extra": {"verify_ms": 12},
    }  # fmt: skip


def device_token(n: int) -> str:
    """The same token every run, so a cached database's devices keep their bindings (and records)."""
    return f"sdt_bench-{n:04d}-{hashlib.sha256(f'bench {n}'.encode()).hexdigest()[:32]}"


def pg_home() -> Path:
    """The kept PostgreSQL cluster. As root the server runs as `nobody`, who cannot enter /root
    (0700), so it lives in /var/tmp then."""
    if os.geteuid() == 0 and str(CACHE).startswith("/root"):
        return Path("/var/tmp/sentinel-bench-service/pg")
    return CACHE / "pg"


class Db:
    """One database of the bench: a cached SQLite file or a database of the kept cluster, with a
    plain driver connection for what the store does not do (generation, EXPLAIN, tidying)."""

    def __init__(self, kind: str, stored: int, pg) -> None:
        self.kind, self.stored = kind, stored
        CACHE.mkdir(parents=True, exist_ok=True)
        if kind == "sqlite":
            self.url = str(CACHE / f"sqlite-{stored}.db")
        else:
            self.name = f"bench_{stored}"
            self.url = pg.url.rsplit("/", 1)[0] + "/" + self.name
            self._admin = pg.url

    def connect(self):
        if self.kind == "sqlite":
            conn = sqlite3.connect(self.url, isolation_level=None)
            return conn, "?"
        import psycopg

        return psycopg.connect(self.url, autocommit=True), "%s"

    def ready(self) -> bool:
        if self.kind == "postgresql":
            import psycopg

            with psycopg.connect(self._admin, autocommit=True) as conn:
                if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.name,)).fetchone() is None:
                    conn.execute(f"CREATE DATABASE {self.name}")  # a name made here, never input
                    return False
        elif not Path(self.url).exists():
            return False
        conn, mark = self.connect()
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS bench_meta (stored BIGINT NOT NULL, made_at TEXT NOT NULL)")
            return conn.execute(f"SELECT 1 FROM bench_meta WHERE stored = {mark}", (self.stored,)).fetchone() is not None
        finally:
            conn.close()


def generate(db: Db, bindings: list[tuple[str, str]], now: datetime) -> float:
    """`db.stored` records over the 30 days before `now`, spread over the bench devices, straight
    in SQL (a recursive CTE in SQLite, generate_series in PostgreSQL): ids in time order like the
    devices' uuid7s, bodies a real record's JSON. The listing and purging indexes are dropped first
    and built once at the end (faster than keeping them up to date row by row). Seconds taken."""
    began = time.monotonic()
    template = RecordIn.model_validate(record_body("bench-template", now)).model_dump_json()
    made = json.loads(template)
    template = template.replace(made["id"], "@ID@").replace(made["created_at"], "@AT@").replace('"bench-template"', '"@DEV@"')
    start_ms, span_ms = int((now - timedelta(days=30)).timestamp() * 1000), 30 * 86400 * 1000
    conn, mark = db.connect()
    try:
        conn.execute("CREATE TEMPORARY TABLE devs (n INTEGER PRIMARY KEY, id TEXT, binding_id TEXT)")
        for n, (device_id, binding_id) in enumerate(bindings):
            conn.execute(f"INSERT INTO devs VALUES ({mark}, {mark}, {mark})", (n, device_id, binding_id))
        for index in ("device", "site", "binding", "received"):
            conn.execute(f"DROP INDEX IF EXISTS records_by_{index}")
        body = f"replace(replace(replace({mark}, '@ID@', r.id), '@AT@', r.at), '@DEV@', d.id)"
        insert = f"INSERT INTO records (id, device_id, site_id, created_at, received_at, body, binding_id) SELECT r.id, d.id, {mark}, r.at, r.at, {body}, d.binding_id"
        if db.kind == "sqlite":
            hexms = f"printf('%012x', {start_ms} + n * {span_ms} / {db.stored})"
            conn.execute("BEGIN")
            conn.execute(
                f"WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g WHERE n < {db.stored - 1}) {insert} FROM "
                f"(SELECT n, substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-7' || printf('%03x', n % 4096) || '-8' || printf('%03x', (n / 4096) % 4096) "
                f"|| '-' || printf('%012x', n) AS id, strftime('%Y-%m-%dT%H:%M:%f', ms / 1000.0, 'unixepoch') || '000+00:00' AS at "
                f"FROM (SELECT n, {hexms} AS h, {start_ms} + n * {span_ms} / {db.stored} AS ms FROM g)) r JOIN devs d ON d.n = r.n % {len(bindings)}",
                (DEMO_SITE.id, template),
            )
            conn.execute("COMMIT")
        else:
            for lo in range(0, db.stored, 2_000_000):  # one statement (and transaction) per 2 M rows
                hi = min(db.stored, lo + 2_000_000) - 1
                conn.execute(
                    f"{insert} FROM (SELECT n, substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-7' || lpad(to_hex(mod(n, 4096)), 3, '0') || '-8' "
                    f"|| lpad(to_hex(mod(n / 4096, 4096)), 3, '0') || '-' || lpad(to_hex(n), 12, '0') AS id, "
                    f"to_char(to_timestamp(ms / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US') || '+00:00' AS at "
                    f"FROM (SELECT n, lpad(to_hex(ms), 12, '0') AS h, ms FROM (SELECT n, {start_ms}::bigint + n * {span_ms}::bigint / {db.stored} AS ms "
                    f"FROM generate_series({lo}::bigint, {hi}::bigint) AS n) AS t) AS u) AS r JOIN devs d ON d.n = mod(r.n, {len(bindings)})",
                    (DEMO_SITE.id, template),
                )
                print(f"  {hi + 1:,} of {db.stored:,} rows ({time.monotonic() - began:.0f} s)", file=sys.stderr, flush=True)
            conn.execute("SET maintenance_work_mem = '512MB'")
        for _version, _what, sql in MIGRATIONS:  # every statement is IF NOT EXISTS: builds what was dropped
            if db.kind == "sqlite":
                conn.executescript(migration_sql(sql, db.kind))
            elif migration_sql(sql, db.kind):
                conn.execute(migration_sql(sql, db.kind))
        conn.execute("ANALYZE")
        conn.execute("CREATE TABLE IF NOT EXISTS bench_meta (stored BIGINT NOT NULL, made_at TEXT NOT NULL)")
        conn.execute(f"INSERT INTO bench_meta VALUES ({mark}, {mark})", (db.stored, now.isoformat()))
    finally:
        conn.close()
    return time.monotonic() - began


def prepare(db: Db, devices: int) -> list[tuple[str, str]]:
    """Seed the demo world, bind the bench devices (the same tokens every run), and generate
    the stored records unless the cached database has them; the `devices` first devices."""
    made = not db.ready()
    store = Store(db.url)
    try:
        now = datetime.now(UTC)
        SEEDS["demo"](store, now)
        bench = [(f"bench-{n:04d}", device_token(n)) for n in range(MAX_DEVICES)]
        for device_id, token in bench:
            if store.get_device(device_id) is None:
                store.set_device(device_id, DEMO_SITE.id, token, now)
        if made:
            seconds = generate(db, [(d, store.get_device(d).binding_id) for d, _ in bench], now)
            print(f"generated {db.stored:,} records into {db.kind} in {seconds:.0f} s ({db.stored / seconds:,.0f}/s)", file=sys.stderr, flush=True)
        return bench[:devices]
    finally:
        store.close()


def tidy(db: Db, since: datetime) -> None:
    """Remove what a run added (its records, rate-limit state), so the cache stays at its size."""
    conn, mark = db.connect()
    try:
        for table in KIND_TABLES.values():
            conn.execute(f"DELETE FROM {table} WHERE received_at >= {mark}", (utc_text(since),))
        conn.execute("DELETE FROM limit_state")
    finally:
        conn.close()


#: one day's purge, as Store.purge_records runs it for each table
PURGE = "DELETE FROM records WHERE received_at < {mark}"


def explain(db: Db, device_id: str) -> None:
    """Print the plans of a device's first page (the store's own query) and of one day's purge,
    and time them (the purge rolled back)."""
    store = Store(db.url)
    try:
        device = store.get_device(device_id)
        listing, params = store.records_query(device_id=device_id, binding_id=device.binding_id, own_binding=True, limit=100)
    finally:
        store.close()
    conn, mark = db.connect()
    conn.execute("ANALYZE records")  # statistics as autovacuum would have them by now
    first_day = conn.execute("SELECT MIN(received_at) FROM records").fetchone()[0]
    cutoff = utc_text(datetime.fromisoformat(first_day) + timedelta(days=1))
    prefix = "EXPLAIN QUERY PLAN " if db.kind == "sqlite" else "EXPLAIN (ANALYZE, BUFFERS) "
    try:
        for title, sql, values in (("a device's first page", listing.replace("?", mark), params), ("purge of one day", PURGE.format(mark=mark), (cutoff,))):
            print(f"-- {db.kind}, {db.stored:,} records: {title}")
            conn.execute("BEGIN")
            plan = conn.execute(prefix + sql, values).fetchall()
            if db.kind == "sqlite":  # EXPLAIN QUERY PLAN does not run it: time the statement itself
                began = time.monotonic()
                rows = conn.execute(sql, values)
                count = len(rows.fetchall()) if sql.startswith("SELECT") else rows.rowcount
                print(f"   ({count:,} rows in {(time.monotonic() - began) * 1000:.1f} ms)")
            conn.execute("ROLLBACK")
            for line in plan:
                print("   " + (line[-1] if db.kind == "sqlite" else line[0]))
    finally:
        conn.close()


def start_services(db: str, workers: int, token_file: Path, log: Path, extra: tuple[str, ...] = ()) -> tuple[list[subprocess.Popen], list[str]]:
    procs, urls = [], []
    with open(log, "ab") as out:
        for _ in range(workers):
            port = free_port()
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "sentinel", "-q", "service", "--db", db, "--port", str(port),
                 "--admin-token-file", str(token_file), "--retention-days", "0", *extra],
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


def generator_process(devices: list[tuple[str, str]], urls: list[str], args, stop_at: float, seed: int, out) -> None:
    """One load generator process: its share of the devices over THREADS // --generators threads;
    its tally goes back through `out` (a multiprocessing queue)."""
    tally = Tally()
    threads_here = max(1, THREADS // args.generators)
    shares = [devices[i::threads_here] for i in range(min(threads_here, len(devices)))]
    threads = [threading.Thread(target=drive, args=(share, urls, args, tally, stop_at, random.Random(seed * 1000 + i)), daemon=True)
               for i, share in enumerate(shares)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put({"verify": tally.verify, "records": tally.records, "heartbeat": tally.heartbeat,
             "records_stored": tally.records_stored, "errors": tally.errors, "late": tally.late})  # fmt: skip


def run_one(db: Db, workers: int, n_devices: int, args) -> dict:
    import multiprocessing

    tmp = Path(tempfile.mkdtemp(prefix="bench-service-"))
    token_file = tmp / "admin-token"
    token_file.write_text(ADMIN + "\n")
    token_file.chmod(0o600)
    devices = prepare(db, n_devices)
    began_at = datetime.now(UTC)
    procs, urls = start_services(db.url, workers, token_file, tmp / "service.log")
    tally = Tally()
    load = os.getloadavg()[0]
    try:
        # Several generator processes, so that one process's GIL (48 threads of `requests`) is not
        # what the latencies measure; CLOCK_MONOTONIC is one clock for all of them.
        context = multiprocessing.get_context("fork")
        out = context.Queue()
        began = time.monotonic()
        stop_at = began + args.duration
        generators = [context.Process(target=generator_process, args=(devices[i :: args.generators], urls, args, stop_at, i, out), daemon=True)
                      for i in range(min(args.generators, len(devices)))]  # fmt: skip
        for generator in generators:
            generator.start()
        for _ in generators:
            part = out.get(timeout=args.duration + 60)
            tally.verify += part["verify"]
            tally.records += part["records"]
            tally.heartbeat += part["heartbeat"]
            tally.records_stored += part["records_stored"]
            tally.errors += part["errors"]
            tally.late += part["late"]
        for generator in generators:
            generator.join()
        elapsed = time.monotonic() - began
        listing = []
        for device_id, token in devices[:LISTINGS]:  # a device's first page of its own records, after the load
            sent = time.monotonic()
            answer = requests.get(f"{urls[0]}/v1/records?device_id={device_id}&limit=100", headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT_S)
            if answer.ok:
                listing.append(time.monotonic() - sent)
    finally:
        stop_processes(procs)
        tidy(db, began_at)
    return {
        "store": db.kind, "workers": workers, "devices": n_devices, "stored_before": db.stored, "seconds": round(elapsed, 1),
        "verifies_per_s": round(len(tally.verify) / elapsed, 1), "records_per_s": round(tally.records_stored / elapsed, 1),
        "verify_p50_ms": round(percentile(tally.verify, 50) * 1000, 1), "verify_p99_ms": round(percentile(tally.verify, 99) * 1000, 1),
        "batch_p50_ms": round(percentile(tally.records, 50) * 1000, 1), "batch_p99_ms": round(percentile(tally.records, 99) * 1000, 1),
        "list_p50_ms": round(percentile(listing, 50) * 1000, 1), "heartbeats": len(tally.heartbeat), "errors": tally.errors,
        "late": tally.late, "generators": args.generators, "load_before": round(load, 1), "load_after": round(os.getloadavg()[0], 1),
    }  # fmt: skip


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def request_cost(db: Db, verifies: int, block: int = 100) -> dict:
    """One device's verifies one after the other (no queueing, no other load) against one service
    process: the service's CPU per verify (median over blocks of `block`; the database server's
    own CPU is not in it) and the latency."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-service-"))
    token_file = tmp / "admin-token"
    token_file.write_text(ADMIN + "\n")
    token_file.chmod(0o600)
    ((device_id, token),) = prepare(db, 1)
    cpu_per_verify, latencies = [], []
    began_at = datetime.now(UTC)
    procs, urls = start_services(db.url, 1, token_file, tmp / "service.log")
    try:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        person = demo_person("green").token
        for round_ in range(-1, verifies // block):  # round -1 warms up
            cpu, times = cpu_seconds(procs[0].pid), []
            for _ in range(block):
                body = {"device_id": device_id, "site_id": DEMO_SITE.id, "credential": {"kind": "health_code", "value": person},
                        "scanned_at": datetime.now(UTC).isoformat()}  # fmt: skip
                sent = time.monotonic()
                session.post(f"{urls[0]}/v1/verify", json=body, timeout=TIMEOUT_S).raise_for_status()
                times.append(time.monotonic() - sent)
            if round_ >= 0:
                cpu_per_verify.append((cpu_seconds(procs[0].pid) - cpu) / block)
                latencies.extend(times)
    finally:
        stop_processes(procs)
        tidy(db, began_at)
    return {"cpu_ms_per_verify": round(percentile(cpu_per_verify, 50) * 1000, 2), "p50_ms": round(percentile(latencies, 50) * 1000, 2),
            "p99_ms": round(percentile(latencies, 99) * 1000, 2), "verifies": len(latencies)}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--devices", default="10,300", help=f"devices per run, each at most {MAX_DEVICES}")
    parser.add_argument("--stored", default="1", help="records in the database before each run, e.g. 1,1000000,10000000 (generated once, cached)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load per run")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between one device's verifies")
    parser.add_argument("--batch-every", type=float, default=10.0, help="seconds between one device's record uploads")
    parser.add_argument("--generators", type=int, default=2, help=f"load generator processes (the {THREADS} threads split among them)")
    parser.add_argument("--cost", type=int, default=0, metavar="N",
                        help="instead of loading: N verifies one at a time against one service process, its CPU per verify")
    parser.add_argument("--explain", action="store_true", help="print the plans of the device listing and the purge instead of loading")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    stores = args.stores.split(",")
    pg = None
    if "postgresql" in stores:
        from tests.postgres import PostgresServer, find_binaries

        if find_binaries()[0] is None:
            print(f"skipping postgresql: {find_binaries()[1]}", file=sys.stderr)
            stores.remove("postgresql")
        else:
            pg = PostgresServer(home=pg_home()).start()
    try:
        for stored in (int(s) for s in args.stored.split(",")):
            for store_kind in stores:
                db = Db(store_kind, stored, pg)
                if args.explain:
                    explain(db, prepare(db, 1)[0][0])
                    continue
                if args.cost:
                    cost = request_cost(db, args.cost)
                    print(json.dumps({"store": store_kind, "stored_before": stored, **cost}) if args.json else
                          f"{store_kind:<10} {cost['cpu_ms_per_verify']} ms service CPU per verify; latency p50 {cost['p50_ms']} ms "
                          f"p99 {cost['p99_ms']} ms ({cost['verifies']} verifies one at a time)", flush=True)  # fmt: skip
                    continue
                for workers in (int(w) for w in args.workers.split(",")):
                    for n_devices in (int(d) for d in args.devices.split(",")):
                        row = run_one(db, workers, n_devices, args)
                        print(json.dumps(row) if args.json else
                              f"{row['store']:<10} {row['stored_before']:>10,} stored {row['workers']} worker(s) {row['devices']:>5} devices: "
                              f"{row['verifies_per_s']:>7} verifies/s p50 {row['verify_p50_ms']} ms p99 {row['verify_p99_ms']} ms; "
                              f"{row['records_per_s']:>7} records/s batch p50 {row['batch_p50_ms']} ms p99 {row['batch_p99_ms']} ms; "
                              f"listing p50 {row['list_p50_ms']} ms; errors {row['errors']} late {row['late']} load {row['load_before']}",
                              flush=True)  # fmt: skip
    finally:
        if pg is not None:
            pg.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

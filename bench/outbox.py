"""The outbox's figures: what a check pays to commit its record with the uploader live, durable
commits per second, drain rate to a loopback service (as the service confirms it), and the
kiosk's resident memory while a 100,000-record backlog drains (it must stay flat).

    .venv/bin/python bench/outbox.py [--commits 3000] [--drain 20000] [--backlog 100000]
                                     [--dir DIR] [--json]

The reference service runs as a separate process (`sentinel service --seed demo` on a free
loopback port) for all of them.

1. **Checks** (what a check pays): per check, the record made (`RecordMaker.make`: pydantic,
   HMAC, uuid7) and committed the pipeline's way (`Outbox.add(record, wake=False)`, durable, then
   `Outbox.wake(record_id, latency_ms=…)` once the relay has moved), while the kiosk's `Uploader`
   thread runs against the service and acknowledges (deletes) what it delivered, competing for the
   outbox's lock and the disk. Afterwards the service is asked which of the records it stores.
2. **Commits**: `Outbox.add` of ready-made check records, one at a time, nobody uploading: the
   durable write alone (WAL, synchronous=FULL: one fsync of the -wal per record), in a file under
   `--dir` (default: a temporary folder on the filesystem of the repository; on a Pi, the SD card).
3. **Drain**: `--drain` records already in the outbox, uploaded by `Uploader.drain` (batches of
   500, the contract maximum, through `ServiceClient`); records per second from the first upload
   to an empty outbox, acknowledgement and deletion included. Delivered counts only the records
   the service lists afterwards (`GET /v1/records`); set-aside records are reported apart.
4. **Memory**: a `--backlog` of records is written by a child process into the outbox of a whole
   kiosk (`build_kiosk`, bench/e2e.py's config: replay camera showing an empty view, HTTP verifier,
   mock relay, no display) run in its own process; its uploader drains the backlog while a thread
   of the kiosk samples the **kiosk's** resident set size (/proc/self/statm) every 0.25 s. Reported:
   RSS before the drain, its minimum, maximum and last value during the drain; flat means max − min
   stays in the single-digit MB, independent of the backlog's size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import requests  # noqa: E402

from sentinel.credentials import Credential, CredentialKind  # noqa: E402
from sentinel.health import HealthStatus, Nat, NatResult, Person, Status  # noqa: E402
from sentinel.outbox import Outbox  # noqa: E402
from sentinel.policy import Verdict, VerdictKind  # noqa: E402
from sentinel.records import RecordMaker  # noqa: E402
from sentinel.service.seed import DEMO_DEVICE_ID, DEMO_DEVICE_TOKEN, DEMO_SITE  # noqa: E402
from sentinel.client import ServiceClient  # noqa: E402
from sentinel.uploader import Uploader  # noqa: E402

MAKER = RecordMaker(DEMO_DEVICE_ID, DEMO_SITE.id, b"bench-record-key-32-bytes-long!!")
STATUS = HealthStatus(
    status=Status.GREEN,
    person=Person(name_masked="王*明", id_masked="1101**********002X"),
    nat=Nat(result=NatResult.NEGATIVE, sampled_at=datetime(2026, 11, 24, 8, 0, tzinfo=UTC)),
)


def make_record(i: int):
    """A typical online green record (about 600 bytes as JSON), with a small `extra`."""
    return MAKER.make(Credential(CredentialKind.HEALTH_CODE, f"bench-token-{i:08d}"), STATUS, Verdict(VerdictKind.PASS, "ok"),
                      False, datetime.now(UTC), verify_ms=42)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def fill(path: Path, n: int) -> None:
    """Write n records quickly: 1,000 per transaction (the kiosk commits one at a time; this is setup)."""
    Outbox(path).close()  # schema and pragmas as the kiosk makes them
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    for start in range(0, n, 1000):
        rows = []
        for i in range(start, min(n, start + 1000)):
            r = make_record(i)
            rows.append((r.id, r.created_at.isoformat(), r.model_dump_json()))
        db.execute("BEGIN")
        db.executemany("INSERT INTO records (id, created_at, body) VALUES (?, ?, ?)", rows)
        db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def fill_in_child(path: Path, n: int) -> None:
    subprocess.run([sys.executable, __file__, "--fill-only", str(n), "--db", str(path)], check=True, cwd=REPO)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def service(tmp: Path):
    port = free_port()
    admin = tmp / "admin-token"
    admin.write_text("sat_bench-outbox-admin\n")
    admin.chmod(0o600)  # the service refuses a token file others can read
    cmd = [sys.executable, "-m", "sentinel", "-q", "service", "--db", str(tmp / "svc.sqlite3"), "--seed", "demo",
           "--port", str(port), "--admin-token-file", str(admin)]  # fmt: skip
    with open(tmp / "service.log", "wb") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=log)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the reference service did not start")
                time.sleep(0.05)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def confirmed(transport: ServiceClient, ids: set[str], since: datetime) -> int:
    """How many of `ids` the service lists as stored for this device (records made since `since`)."""
    listed = transport.list_records(since=since.isoformat(), limit=1000, timeout_s=120)
    return len(ids & {r["id"] for r in listed})


def bench_checks(folder: Path, n: int, url: str) -> dict:
    """Record made + durable commit + uploader woken, the uploader thread live (module docstring, 1)."""
    outbox = Outbox(folder / "checks.sqlite3")
    transport = ServiceClient(url, DEMO_DEVICE_TOKEN, device_id=DEMO_DEVICE_ID, site_id=DEMO_SITE.id)
    uploader = Uploader(outbox, transport, batch_size=500, timeout_s=60)
    since = datetime.now(UTC)
    uploader.start()
    ids: set[str] = set()
    try:
        for i in range(50):  # warm up: file, pages, the uploader's connection
            r = make_record(i)
            outbox.add(r, wake=False)
            outbox.wake(r.id, latency_ms=5.0)
            ids.add(r.id)
        started = time.perf_counter()
        for i in range(50, n):
            r = make_record(i)
            outbox.add(r, wake=False)
            outbox.wake(r.id, latency_ms=5.0)
            ids.add(r.id)
        elapsed = time.perf_counter() - started
        deadline = time.monotonic() + 120
        while outbox.health().depth and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        uploader.stop()
    left = outbox.health().depth
    outbox.close()
    stored = confirmed(transport, ids, since)
    transport.close()
    count = n - 50
    return {"records": count, "seconds": round(elapsed, 3), "per_second": round(count / elapsed, 1),
            "ms_each": round(elapsed / count * 1000, 3), "uploaded_during_run": uploader.delivered,
            "service_stores": stored, "made": len(ids), "left_in_outbox": left, "set_aside": uploader.set_aside}


def bench_commits(folder: Path, n: int) -> dict:
    records = [make_record(i) for i in range(n)]
    ob = Outbox(folder / "commits.sqlite3")
    for r in records[:50]:  # warm up: file created, first pages allocated
        ob.add(r)
    started = time.perf_counter()
    for r in records[50:]:
        ob.add(r)
    elapsed = time.perf_counter() - started
    ob.close()
    count = n - 50
    return {"records": count, "seconds": round(elapsed, 3), "per_second": round(count / elapsed, 1), "ms_each": round(elapsed / count * 1000, 3)}


def drain(path: Path, url: str, sample: bool) -> dict:
    """Module docstring, 3 (and, with `sample`, this process's RSS: the old figure, kept for
    comparison with the kiosk's in `kiosk_drain`)."""
    db = sqlite3.connect(path)
    ids = {row[0] for row in db.execute("SELECT id FROM records")}
    since = datetime.fromisoformat(db.execute("SELECT MIN(created_at) FROM records").fetchone()[0])
    db.close()
    outbox = Outbox(path)
    depth = outbox.health().depth
    transport = ServiceClient(url, DEMO_DEVICE_TOKEN, device_id=DEMO_DEVICE_ID, site_id=DEMO_SITE.id)
    uploader = Uploader(outbox, transport, batch_size=500, timeout_s=60)
    samples: list[tuple[float, int]] = []
    stop = threading.Event()

    def sampler():
        t0 = time.perf_counter()
        while not stop.is_set():
            samples.append((time.perf_counter() - t0, rss_bytes()))
            stop.wait(0.25)

    before = rss_bytes()
    thread = threading.Thread(target=sampler, daemon=True)
    if sample:
        thread.start()
    started = time.perf_counter()
    result = uploader.drain(max_failures=5)
    elapsed = time.perf_counter() - started
    stop.set()
    if sample:
        thread.join()
    outbox.close()
    stored = confirmed(transport, ids, since)
    transport.close()
    if not result.complete:
        raise RuntimeError(f"drain stopped with {result.remaining} records left: {result.last_error}")
    out = {"records": depth, "seconds": round(elapsed, 2), "per_second": round(stored / elapsed, 1),
           "service_stores": stored, "set_aside": result.set_aside}
    if sample:
        mb = [s / 2**20 for _, s in samples]
        out["rss_mb"] = {
            "before": round(before / 2**20, 1),
            "min": round(min(mb), 1),
            "max": round(max(mb), 1),
            "last": round(mb[-1], 1),
            "spread": round(max(mb) - min(mb), 1),
            "samples": len(mb),
            # the curve, one value per tenth of the drain, to see that it is flat rather than just bounded
            "by_tenth": [round(mb[min(len(mb) - 1, int(len(mb) * k / 10))], 1) for k in range(11)],
        }
    return out


def kiosk_drain(backlog: Path, url: str, tmp: Path) -> dict:
    """Module docstring, 4: a whole kiosk in its own process drains `backlog`; its RSS sampled from here."""
    from PIL import Image

    from sentinel.config import OUTBOX_NAME

    state = tmp / "kiosk"
    (state / "state").mkdir(parents=True)
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{backlog}{suffix}").exists():
            os.replace(f"{backlog}{suffix}", state / "state" / f"{OUTBOX_NAME}{suffix}")
    (state / "pictures").mkdir()
    Image.new("L", (640, 480), 190).save(state / "pictures" / "empty.png")
    token = state / "device-token"
    fd = os.open(token, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(DEMO_DEVICE_TOKEN)
    spec = {"state": str(state), "url": url, "token": str(token)}
    (state / "spec.json").write_text(json.dumps(spec))
    done = subprocess.run([sys.executable, __file__, "--kiosk-drain", str(state / "spec.json")], cwd=REPO,
                          capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"the kiosk failed: {done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    mb = [s / 2**20 for s in result["rss"]]
    return {
        "records": result["depth"], "seconds": result["seconds"], "per_second": round(result["depth"] / result["seconds"], 1),
        "rss_mb": {"before": round(result["rss_before"] / 2**20, 1), "min": round(min(mb), 1), "max": round(max(mb), 1),
                   "last": round(mb[-1], 1), "spread": round(max(mb) - min(mb), 1), "samples": len(mb),
                   "by_tenth": [round(mb[min(len(mb) - 1, int(len(mb) * k / 10))], 1) for k in range(11)]},
    }


def kiosk_drain_child(spec_path: Path) -> None:
    """The kiosk side of `kiosk_drain`: run until the outbox is empty, print what it saw."""
    from bench.e2e import kiosk_config
    from sentinel.kiosk import build_kiosk

    spec = json.loads(spec_path.read_text())
    state = Path(spec["state"])
    config = kiosk_config(state, state / "pictures", 10, spec["url"], Path(spec["token"]), faces=False, loop=True)
    k = build_kiosk(config)
    depth = k.outbox.health().depth
    stop = threading.Event()
    times: dict[str, float] = {}

    rss: list[int] = []

    def watch():  # the kiosk's own RSS, every 0.25 s, from the start of its run to an empty outbox
        times["started"] = time.perf_counter()
        while k.outbox.health().depth and not stop.is_set():
            rss.append(rss_bytes())
            stop.wait(0.25)
        times["ended"] = time.perf_counter()
        rss.append(rss_bytes())
        stop.set()

    rss_before = rss_bytes()
    threading.Thread(target=watch, daemon=True).start()
    k.run(stop=stop)
    print(json.dumps({"depth": depth, "seconds": round(times["ended"] - times["started"], 2), "rss_before": rss_before, "rss": rss}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=3000)
    parser.add_argument("--drain", type=int, default=20000)
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, help="where the outbox files go (default: a temporary folder in the repository)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--fill-only", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--kiosk-drain", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fill_only:
        fill(args.db, args.fill_only)
        return 0
    if args.kiosk_drain:
        kiosk_drain_child(args.kiosk_drain)
        return 0

    base = args.dir or REPO
    with tempfile.TemporaryDirectory(prefix=".bench-outbox-", dir=base) as tmp_name:
        tmp = Path(tmp_name)
        results = {
            "machine": {"nproc": os.cpu_count(), "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
                        "platform": platform.platform(), "dir": str(base)},
            "commits": bench_commits(tmp, args.commits),
        }
        with service(tmp) as url:
            results["checks"] = bench_checks(tmp, args.commits, url)
            fill_in_child(tmp / "drain.sqlite3", args.drain)
            results["drain"] = drain(tmp / "drain.sqlite3", url, sample=False)
            fill_in_child(tmp / "backlog.sqlite3", args.backlog)
            results["backlog"] = kiosk_drain(tmp / "backlog.sqlite3", url, tmp)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    m, c, d, b = results["machine"], results["commits"], results["drain"], results["backlog"]
    print(f"machine: nproc {m['nproc']}, Python {m['python']}, SQLite {m['sqlite']}, {m['platform']}, files in {m['dir']}")
    k = results["checks"]
    print(f"checks (made + committed + uploader live): {k['per_second']:>9,.0f} /s  ({k['ms_each']} ms each, {k['records']:,} records; "
          f"service stores {k['service_stores']:,} of {k['made']:,}, {k['left_in_outbox']} left, {k['set_aside']} set aside)")
    print(f"durable commits alone (premade):           {c['per_second']:>9,.0f} /s  ({c['ms_each']} ms each, {c['records']:,} records)")
    print(f"drain (loopback, confirmed by the service): {d['per_second']:>9,.0f} records/s  ({d['service_stores']:,} of {d['records']:,} "
          f"in {d['seconds']} s, {d['set_aside']} set aside)")
    r = b["rss_mb"]
    print(f"backlog drain by a whole kiosk: {b['per_second']:>9,.0f} records/s  ({b['records']:,} records in {b['seconds']} s)")
    print(f"  kiosk RSS MB: before {r['before']}, during min {r['min']} max {r['max']} last {r['last']} (spread {r['spread']}, "
          f"{r['samples']} samples)")
    print(f"  RSS MB by tenth of the drain: {r['by_tenth']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

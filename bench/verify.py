"""Verify round trip over loopback, and how many checks per second the reference service sustains.

A kiosk spends its scan-to-gate budget (0.2–0.5 s claimed by turnstile vendors, docs/design.md) on
decoding, the verify round trip and the gate; this measures the round trip on a warm connection,
the device's way (`ServiceClient.verify`: one kept-alive `requests.Session`, the overall-deadline
watchdog, size limit and model validation), next to a bare `requests.Session.post` of the same
request, which is the floor the client's own work sits on.

    .venv/bin/python bench/verify.py [--n 2000] [--devices 1,8] [--duration 5] [--max-checks 5000]
                                     [--in-process] [--json]

By default the reference service runs as a separate process (`sentinel service --seed demo` on a
free loopback port, logging only warnings) so that the client and the server do not share a GIL;
`--in-process` runs it as a thread of this process instead (`ReferenceServer`), as the tests do.
Throughput: each simulated device is its own process with its own `ServiceClient` (own Session,
own connection), all the demo device's token; they start together and each stops after
`--duration` seconds or `--max-checks` checks, whichever comes first. Loopback only.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import requests  # noqa: E402

from sentinel.client import ServiceClient  # noqa: E402  (the repository is put on the path above)
from sentinel.credentials import Credential, CredentialKind  # noqa: E402
from sentinel.demo_data import demo_person  # noqa: E402
from sentinel.health import Status  # noqa: E402
from sentinel.service.seed import DEMO_DEVICE_ID, DEMO_DEVICE_TOKEN, DEMO_SITE  # noqa: E402

CREDENTIAL = Credential(CredentialKind.HEALTH_CODE, demo_person("green").token)
TIMEOUT_S = 1.5  # the device's deadline (docs/design.md); a bench answer is far below it
WARMUP = 50


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary(latencies_s: list[float]) -> dict[str, float]:
    ms = [t * 1000 for t in latencies_s]
    return {
        "n": len(ms),
        "p50_ms": statistics.median(ms),
        "p90_ms": percentile(ms, 90),
        "p99_ms": percentile(ms, 99),
        "mean_ms": statistics.fmean(ms),
        "max_ms": max(ms),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, timeout_s: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"sentinel service exited with {proc.returncode}")
        try:
            if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"the service at {url} did not come up within {timeout_s:.0f} s")


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of a process, all its threads (Linux /proc); None where unknown."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def service(in_process: bool):
    """The reference service with the demo seed; yields (base URL, its process id or None)."""
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        db = Path(tmp) / "service.db"
        if in_process:
            from sentinel.service.server import ReferenceServer

            with ReferenceServer(db, seed="demo") as srv:
                yield srv.url, None
            return
        admin = Path(tmp) / "admin-token"
        admin.write_text("sat_bench-admin-token\n")
        admin.chmod(0o600)  # the service refuses a token file others can read
        port = free_port()
        cmd = [sys.executable, "-m", "sentinel", "-q", "service", "--db", str(db), "--seed", "demo",
               "--port", str(port), "--admin-token-file", str(admin)]  # fmt: skip
        with open(Path(tmp) / "service.log", "wb") as log:
            proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=log)
            try:
                url = f"http://127.0.0.1:{port}"
                wait_healthy(url, proc=proc)
                yield url, proc.pid
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def make_client(url: str) -> ServiceClient:
    return ServiceClient(url, DEMO_DEVICE_TOKEN, device_id=DEMO_DEVICE_ID, site_id=DEMO_SITE.id)


def round_trips(url: str, n: int) -> dict[str, dict]:
    """n sequential checks through ServiceClient and n as a bare POST, each on its own warm
    Session, interleaved one for one (client, bare, client, ...), so that both see the same
    moments of a shared machine rather than one block after the other."""
    client = make_client(url)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {DEMO_DEVICE_TOKEN}"
    body = {"device_id": DEMO_DEVICE_ID, "site_id": DEMO_SITE.id,
            "credential": {"kind": CREDENTIAL.kind.value, "value": CREDENTIAL.value}, "scanned_at": ""}  # fmt: skip

    def via_client() -> bool:
        return client.verify(CREDENTIAL, TIMEOUT_S).status == Status.GREEN

    def bare() -> bool:
        body["scanned_at"] = datetime.now(UTC).isoformat()
        response = session.post(f"{url}/v1/verify", json=body, timeout=TIMEOUT_S)
        answer = response.json()
        return response.status_code == 200 and answer.get("status") == "green"

    ways = {"ServiceClient.verify": via_client, "requests.Session.post (bare)": bare}
    for _ in range(WARMUP):
        for way in ways.values():
            way()
    times: dict[str, list[float]] = {name: [] for name in ways}
    errors = dict.fromkeys(ways, 0)
    for i in range(n):
        # alternate which goes first, so neither always follows the other
        for name in (list(ways) if i % 2 == 0 else list(ways)[::-1]):
            t0 = time.perf_counter()
            ok = ways[name]()
            times[name].append(time.perf_counter() - t0)
            errors[name] += not ok
    client.close()
    session.close()
    return {name: {**summary(times[name]), "errors": errors[name]} for name in ways}


def _device(url: str, duration_s: float, max_checks: int, barrier, results) -> None:
    """One simulated device (a process of its own): warm up, wait for the others, then check."""
    client = make_client(url)
    for _ in range(10):
        client.verify(CREDENTIAL, TIMEOUT_S)
    barrier.wait()
    times, errors = [], 0
    started = time.perf_counter()
    while len(times) < max_checks and time.perf_counter() - started < duration_s:
        t0 = time.perf_counter()
        status = client.verify(CREDENTIAL, TIMEOUT_S)
        times.append(time.perf_counter() - t0)
        errors += status.status != Status.GREEN
    results.put({"elapsed_s": time.perf_counter() - started, "latencies": times, "errors": errors})
    client.close()


def throughput(url: str, devices: int, duration_s: float, max_checks: int, server_pid: int | None = None) -> dict:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(devices), ctx.Queue()
    procs = [ctx.Process(target=_device, args=(url, duration_s, max_checks, barrier, results)) for _ in range(devices)]
    for p in procs:
        p.start()
    cpu_before = cpu_seconds(server_pid)  # the devices' warm-up may be counted in: a few dozen checks
    done = [results.get(timeout=duration_s + 120) for _ in procs]
    cpu_after = cpu_seconds(server_pid)
    for p in procs:
        p.join(timeout=30)
    latencies = [t for d in done for t in d["latencies"]]
    elapsed = max(d["elapsed_s"] for d in done)
    checks = len(latencies)
    return {
        "devices": devices,
        "checks": checks,
        "seconds": elapsed,
        "checks_per_s": checks / elapsed,
        "per_device_checks_per_s": checks / elapsed / devices,
        "errors": sum(d["errors"] for d in done),
        "server_cpu_percent": None if cpu_before is None else 100 * (cpu_after - cpu_before) / elapsed,
        "server_cpu_ms_per_check": None if cpu_before is None else 1000 * (cpu_after - cpu_before) / checks,
        **{k: v for k, v in summary(latencies).items() if k != "n"},
    }


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for name in ("requests", "urllib3", "fastapi", "uvicorn", "pydantic"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "python": platform.python_version(), "system": platform.platform(), **versions}


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        f"Service: {report['server']}. Machine: nproc = {m['nproc']}, CPU \"{m['cpu']}\", Python {m['python']}, "
        f"requests {m.get('requests')}, urllib3 {m.get('urllib3')}, uvicorn {m.get('uvicorn')}, fastapi {m.get('fastapi')}.",
        "",
        f"Round trip, one warm Session, {report['n']} sequential checks (after {WARMUP} warm-up):",
        "",
        "| path | n | p50 ms | p90 ms | p99 ms | mean ms | max ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in report["round_trip"].items():
        lines.append(
            f"| {name} | {s['n']} | {s['p50_ms']:.2f} | {s['p90_ms']:.2f} | {s['p99_ms']:.2f} | {s['mean_ms']:.2f} | {s['max_ms']:.2f} | {s['errors']} |"
        )
    lines += [
        "",
        f"Throughput, each device a process with its own ServiceClient, for {report['duration_s']:g} s or "
        f"{report['max_checks']} checks each:",
        "",
        "| devices | checks | seconds | checks/s | per device | p50 ms | p99 ms | max ms | errors | server CPU | server CPU ms/check |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t in report["throughput"]:
        cpu = "n/a" if t["server_cpu_percent"] is None else f"{t['server_cpu_percent']:.0f} %"
        per = "n/a" if t["server_cpu_ms_per_check"] is None else f"{t['server_cpu_ms_per_check']:.2f}"
        lines.append(
            f"| {t['devices']} | {t['checks']} | {t['seconds']:.2f} | {t['checks_per_s']:.0f} | {t['per_device_checks_per_s']:.0f} | "
            f"{t['p50_ms']:.2f} | {t['p99_ms']:.2f} | {t['max_ms']:.2f} | {t['errors']} | {cpu} | {per} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="sequential checks for the round-trip percentiles (default 2000)")
    parser.add_argument("--devices", default="1,8", help="comma-separated numbers of concurrent devices (default 1,8)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds each throughput run lasts at most (default 5)")
    parser.add_argument("--max-checks", type=int, default=5000, help="checks per device at most in a throughput run (default 5000)")
    parser.add_argument("--in-process", action="store_true", help="run the service as a thread of this process, not a separate one")
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of markdown")
    args = parser.parse_args(argv)
    devices = [int(d) for d in args.devices.split(",") if d.strip()]
    if args.n < 1 or not devices or min(devices) < 1 or args.duration <= 0 or args.max_checks < 1:
        parser.error("--n, --devices, --duration and --max-checks must be positive")

    with service(args.in_process) as (url, server_pid):
        report = {
            "server": "in-process thread (ReferenceServer)" if args.in_process else "separate process (`sentinel service --seed demo`), loopback",
            "url": url,
            "machine": machine(),
            "n": args.n,
            "duration_s": args.duration,
            "max_checks": args.max_checks,
            "round_trip": round_trips(url, args.n),
            "throughput": [throughput(url, d, args.duration, args.max_checks, server_pid) for d in devices],
        }
    print(json.dumps(report, ensure_ascii=False, indent=2) if args.json else markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())

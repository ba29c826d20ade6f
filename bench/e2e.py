"""End to end, measured from outside: code in view -> relay energised, against the raw floor.

    .venv/bin/python bench/e2e.py [--rounds 4] [--people 40] [--per-min 100] [--faces] [--raw between|rounds] [--json]

Three kinds of process, as on a device:

- the **reference service** (`ReferenceServer`, its own process, loopback HTTP), seeded with the
  demo world plus `--people` green people of its own;
- the **real kiosk** (`build_kiosk` from a `SentinelConfig`, `Kiosk.run`, its own process, a fresh
  state directory each round): replay camera on a folder of 640x480 pictures (each person's QR
  code for `frames_per_image` frames, then an empty view as long), the HTTP verifier, the SQLite
  outbox and the live uploader, gpiozero's MockFactory for the relay (`[gate] type = "gpio"`,
  `pin_factory = "mock"`), display `none`, logging at INFO to a file as the journal would get it;
  `--faces` turns `[faces]` on (engine loaded, empty gallery; `--liveness off` without the liveness
  check and so without the 68-point landmark model) to measure its memory and cost.
  Two timestamps are taken inside it, on CLOCK_MONOTONIC: when the camera hands a frame over
  (`source.read` returns it: the frame's picture names the person) and when the relay pin goes
  high (`MockPin` state change). code in view -> relay = the first relay edge after the first
  hand-over of a person's code. The kiosk's own `CheckOutcome.latency_s` is kept beside it.
- the **raw floor** (this process, `RawFloor`): per person, zxing-cpp on the same
  picture (QR only, plain text, as the kiosk's first decoder asks), one bare `requests.Session.post` of the verify request on a kept-alive connection, and
  one durable SQLite commit (WAL, synchronous=FULL) of a record-sized row: what a check cannot
  avoid paying.

`--face-arrivals N` measures a face instead of a code: the service is seeded with the demo world's
resident enrolled in the site's face gallery (`seed_demo_faces`), the kiosk has `[faces]` on with
`liveness = "off"` (a still picture shows no sign of life) and syncs that gallery from the service
at start; the replay shows 3 s of the empty face scene, then N times the resident's face scene
(`12_face.png`) for 1 s and the empty one (`11_empty.png`) for 1 s; `[credentials] debounce_s` is
0.8 s so that each arrival is one new check (the matcher looks every 0.5 s while a face is in view,
and the view is empty for 1 s between arrivals). face in view -> relay = the first relay edge after the
first hand-over of each face picture; there is no raw floor for a face (rounds: kiosk and, with
--before, the before tree).

Where the raw floor runs: by default (`--raw between`) inside each kiosk round, person i's raw check
three quarters of a period after the kiosk's person i came into view (in the empty view that
follows, when the kiosk only reads empty frames), so every kiosk check has a raw one beside it,
under half a second apart; `kiosk / raw floor` is then also given **paired**: the median over
rounds of the round's kiosk p50 ÷ the raw p50 measured between its people. On this shared 2-core
VM the machine's speed drifts by 10-30 % from one minute to the next: in separate rounds the
ratio of one kiosk moved between 1.08x and 1.35x from run to run, paired by a few hundredths
(docs/benchmarks.md, issue 18's fifth round). `--raw rounds` is the earlier way: rounds of their
own, alternating with the kiosk's (kiosk, raw, raw, kiosk, ...). Each round's p50 is taken and the
median over rounds reported, with p99 and max over all people. The kiosk's peak RSS (VmHWM) and
RSS at the end of its run are read from /proc.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEVICE_TOKEN_NAME = "device-token"
FPS = 30.0
PIN = 17


def id_number(i: int) -> str:
    """A valid-looking 18-digit ID number (the check digit computed as GB 11643 says)."""
    body = f"310101199001{i:05d}"[:17]
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights)) % 11]


def people(n: int):
    from sentinel.demo_data import DemoPerson

    return [DemoPerson(f"bench{i}", f"BenchE2E{i:08d}", "测试人", id_number(i), "green", "negative", 20.0, None, 3) for i in range(n)]


# --- the service process -----------------------------------------------------------------------


def serve(db: str, n: int, faces: bool = False) -> None:
    from datetime import UTC, datetime

    from sentinel.service.seed import _row, seed_demo, seed_demo_faces
    from sentinel.service.server import ReferenceServer
    from sentinel.service.store import Store

    now = datetime.now(UTC)
    store = Store(db)
    (seed_demo_faces if faces else seed_demo)(store, now)
    for person in people(n):
        store.add_person(_row(person, now), now, replace=True)
    store.close()
    with ReferenceServer(db) as srv:
        print(srv.url, flush=True)
        sys.stdin.read()  # until the bench closes our stdin


# --- the kiosk process -------------------------------------------------------------------------


def kiosk_config(state: Path, pictures: Path, frames_per_image: int, url: str, token_file: Path, faces: bool, loop: bool = False,
                 liveness: str = "blink_or_move", debounce_s: float | None = None):
    """The kiosk's config (also bench/outbox.py's): a shipped kiosk's parts with a replay camera,
    the mock relay and no display."""
    from sentinel.config import (
        CredentialConfig,
        DeviceConfig,
        DisplayConfig,
        FacesConfig,
        GpioGateConfig,
        HttpVerifierConfig,
        PolicyConfig,
        ReplayCameraConfig,
        SentinelConfig,
    )
    from sentinel.service.seed import DEMO_DEVICE_ID, DEMO_SITE

    return SentinelConfig(
        device=DeviceConfig(id=DEMO_DEVICE_ID, site_id=DEMO_SITE.id, site_name=DEMO_SITE.name, language="en", state_dir=state / "state"),
        camera=ReplayCameraConfig(path=pictures, fps=FPS, frames_per_image=frames_per_image, loop=loop),
        verifier=HttpVerifierConfig(url=url, token_file=token_file),
        policy=PolicyConfig(nat_window_h=48),
        gate=GpioGateConfig(type="gpio", pin=PIN, pulse_s=0.2, pin_factory="mock"),
        display=DisplayConfig(type="none", result_s=0.5),
        faces=FacesConfig(enabled=faces, liveness=liveness),
        **({"credentials": CredentialConfig(debounce_s=debounce_s)} if debounce_s is not None else {}),
    )


def kiosk(spec_path: str) -> None:
    import logging

    from gpiozero.pins.mock import MockPin

    spec = json.loads(Path(spec_path).read_text())
    state = Path(spec["state"])
    logging.basicConfig(level=logging.INFO, filename=str(state / "kiosk.log"), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    relay: list[float] = []
    real_change = MockPin._change_state

    def change(self, value):  # the relay pin written (any thread): the moment the gate moves
        changed = real_change(self, value)
        if changed and value and self.info.name.endswith(str(PIN)):
            relay.append(time.monotonic())
        return changed

    MockPin._change_state = change

    from sentinel.kiosk import build_kiosk

    extra = {"liveness": spec["liveness"]} if spec.get("liveness") else {}  # a --before tree may not know the key's values
    if spec.get("debounce_s") is not None:
        extra["debounce_s"] = spec["debounce_s"]
    config = kiosk_config(state, Path(spec["pictures"]), spec["frames_per_image"], spec["url"], Path(spec["token_file"]), spec["faces"], **extra)
    outcomes: list = []
    k = build_kiosk(config, on_outcome=outcomes.append)
    handed: list[tuple[float, str]] = []
    read = k.source.read

    def timed_read(timeout):  # the frame hand-over
        frame = read(timeout)
        if frame is not None:
            handed.append((time.monotonic(), str(frame.origin or "")))
        return frame

    k.source.read = timed_read
    print("ready", flush=True)
    k.run(stop=threading.Event(), until_finished=True, drain_s=5.0)
    status = Path("/proc/self/status").read_text()
    mem = {line.split(":")[0]: int(line.split()[1]) for line in status.splitlines() if line.startswith(("VmRSS", "VmHWM"))}
    out = {
        "handed": [(t, Path(o).stem) for t, o in handed],
        "relay": relay,
        "outcomes": [(o.verdict.kind.value, o.latency_s) for o in outcomes],
        "rss_kb": mem.get("VmRSS"),
        "hwm_kb": mem.get("VmHWM"),
    }
    Path(spec["result"]).write_text(json.dumps(out))


# --- the bench -----------------------------------------------------------------------------------


def make_pictures(folder: Path, persons) -> dict[str, object]:
    """One code picture and one empty picture per person, named so that sorted order is the
    queue; returns {picture stem: grey array} of the code pictures (for the raw floor)."""
    import io

    import numpy as np
    import segno
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    greys = {}
    for i, person in enumerate(persons):
        canvas = Image.new("L", (640, 480), 190)
        buf = io.BytesIO()
        segno.make(person.payload, error="m", micro=False).save(buf, kind="png", scale=6, border=4)
        code = Image.open(buf).convert("L")
        canvas.paste(code, ((640 - code.width) // 2, (480 - code.height) // 2))
        stem = f"{i:03d}a-code"
        canvas.save(folder / f"{stem}.png")
        Image.new("L", (640, 480), 190).save(folder / f"{i:03d}b-empty.png")
        greys[stem] = np.asarray(canvas)
    return greys


def make_face_pictures(folder: Path, arrivals: int) -> None:
    """3 s of the empty face scene (the gallery's first sync), then per arrival the resident's
    face scene and the empty one, 1 s each at frames_per_image = FPS."""
    import shutil

    from sentinel.faces.demo import FACE_SCENES

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(3):
        shutil.copy(FACE_SCENES / "11_empty.png", folder / f"000-{i}-empty.png")
    for i in range(1, arrivals + 1):
        shutil.copy(FACE_SCENES / "12_face.png", folder / f"{i:03d}a-face.png")
        shutil.copy(FACE_SCENES / "11_empty.png", folder / f"{i:03d}b-empty.png")


def kiosk_round(args, url: str, token_file: Path, pictures: Path, frames_per_image: int, work: Path, tree: Path = REPO,
                floor: RawFloor | None = None, period_s: float = 0.0) -> dict:
    state = Path(tempfile.mkdtemp(prefix="round-", dir=work))
    spec = {
        "state": str(state), "pictures": str(pictures), "frames_per_image": frames_per_image, "url": url,
        "token_file": str(token_file), "faces": args.faces, "liveness": args.liveness, "result": str(state / "result.json"),
        "debounce_s": 0.8 if args.face_arrivals else None,
    }
    (state / "spec.json").write_text(json.dumps(spec))
    proc = subprocess.Popen([sys.executable, str(tree / "bench" / "e2e.py"), "_kiosk", str(state / "spec.json")], cwd=tree,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    raw: list[float] = []
    if proc.stdout.readline().strip() == "ready" and floor is not None:  # the camera's first frame is read now
        raw = raw_between(floor, time.monotonic(), period_s)
    _, stderr = proc.communicate(timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"kiosk round failed:\n{stderr[-3000:]}")
    result = json.loads((state / "result.json").read_text())
    latencies = []
    relay = sorted(result["relay"])
    first_seen: dict[str, float] = {}
    wanted = "-face" if args.face_arrivals else "-code"
    for t, stem in result["handed"]:
        if stem.endswith(wanted) and stem not in first_seen:
            first_seen[stem] = t
    for stem, seen in sorted(first_seen.items()):
        edge = next((r for r in relay if r >= seen), None)
        if edge is not None and edge - seen < 2.0:
            latencies.append(edge - seen)
    reported = [lat for verdict, lat in result["outcomes"] if verdict == "pass"]
    return {"latencies": latencies, "reported": reported, "seen": len(first_seen), "passes": len(reported),
            "rss_kb": result["rss_kb"], "hwm_kb": result["hwm_kb"], "raw": raw}


class RawFloor:
    """The raw floor, one person at a time: zxing-cpp on the person's picture, one bare
    `requests.Session.post` of the verify request on a warm connection, one durable SQLite commit
    (WAL, synchronous=FULL) of a record-sized row."""

    def __init__(self, url: str, greys: dict, persons, work: Path) -> None:
        import requests

        from sentinel.service.seed import DEMO_DEVICE_ID, DEMO_DEVICE_TOKEN, DEMO_SITE

        self.url = url
        self.pictures = [grey for _, grey in sorted(greys.items())]
        self.request = {"device_id": DEMO_DEVICE_ID, "site_id": DEMO_SITE.id, "scanned_at": "2026-01-01T00:00:00+00:00"}
        db_path = Path(tempfile.mkdtemp(prefix="raw-", dir=work)) / "raw.sqlite3"
        self.db = sqlite3.connect(db_path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("CREATE TABLE records (id TEXT PRIMARY KEY, created_at TEXT NOT NULL, body TEXT NOT NULL) WITHOUT ROWID")
        self.session = requests.Session()
        self.headers = {"Authorization": f"Bearer {DEMO_DEVICE_TOKEN}"}
        self.session.post(url + "/v1/verify", json={**self.request, "credential": {"kind": "health_code", "value": persons[0].token}},
                          headers=self.headers, timeout=5)  # warm connection, as the kiosk's
        self.rows = 0

    def person(self, i: int) -> float:
        """Seconds for person `i`'s check, decode to durable commit."""
        import zxingcpp

        started = time.monotonic()
        (code,) = zxingcpp.read_barcodes(self.pictures[i], formats=zxingcpp.BarcodeFormat.QRCode, text_mode=zxingcpp.TextMode.Plain)
        token = code.text.rsplit("/", 1)[1]
        answer = self.session.post(self.url + "/v1/verify", json={**self.request, "credential": {"kind": "health_code", "value": token}},
                                   headers=self.headers, timeout=5).json()
        self.rows += 1
        self.db.execute("INSERT INTO records VALUES (?, ?, ?)", (f"{self.rows:08d}", "2026-01-01T00:00:00+00:00", json.dumps(answer) + "x" * 300))
        return time.monotonic() - started

    def close(self) -> None:
        self.session.close()
        self.db.close()


def raw_round(url: str, greys: dict, persons, period_s: float, work: Path) -> list[float]:
    """A round of its own (`--raw rounds`): the people paced as they arrive at the kiosk."""
    floor = RawFloor(url, greys, persons, work)
    out = []
    next_at = time.monotonic()
    for i in range(len(floor.pictures)):
        next_at += period_s
        out.append(floor.person(i))
        time.sleep(max(0.0, next_at - time.monotonic()))
    floor.close()
    return out


def raw_between(floor: RawFloor, started: float, period_s: float) -> list[float]:
    """The raw floor inside a kiosk round (`--raw between`, the default): person i three quarters of
    a period after the kiosk's person i came into view, in the middle of the empty view that
    follows (the kiosk then only reads empty frames), so that each of the kiosk's checks has a raw
    check beside it, at most half a second apart, on the same machine in the same state."""
    out = []
    for i in range(len(floor.pictures)):
        time.sleep(max(0.0, started + (i + 0.75) * period_s - time.monotonic()))
        out.append(floor.person(i))
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_serve":
        serve(sys.argv[2], int(sys.argv[3]), sys.argv[4:] == ["1"])
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "_kiosk":
        kiosk(sys.argv[2])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--people", type=int, default=40)
    parser.add_argument("--per-min", type=float, default=100.0, help="people arriving per minute (code in view half the time)")
    parser.add_argument("--faces", action="store_true", help="[faces] on in the kiosk (engine loaded, empty gallery)")
    parser.add_argument("--liveness", choices=["blink_or_move", "off"], default="blink_or_move", help="[faces] liveness with --faces")
    parser.add_argument("--face-arrivals", type=int, default=0, metavar="N",
                        help="measure face in view -> relay for N arrivals of the demo resident instead of codes (implies --faces, liveness off)")
    parser.add_argument("--before", type=Path, help="another source tree (a copy of the repository at an earlier commit, with "
                        "this bench/e2e.py in it): its kiosk runs in the same rounds, interleaved, for a before/after")
    parser.add_argument("--raw", choices=["between", "rounds"], default="between",
                        help="the raw floor between the kiosk's people in its own rounds (default), or in rounds of its own")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from sentinel.service.seed import DEMO_DEVICE_TOKEN

    if args.face_arrivals:
        args.faces, args.liveness = True, "off"
    period_s = 60.0 / args.per_min
    frames_per_image = max(1, round(period_s * FPS / 2))
    work = Path(tempfile.mkdtemp(prefix="sentinel-e2e-"))
    persons = people(args.people)
    if args.face_arrivals:
        greys = {}  # no raw floor for a face
        frames_per_image = round(FPS)
        make_face_pictures(work / "face-pictures", args.face_arrivals)
    else:
        greys = make_pictures(work / "pictures", persons)
    token_file = work / DEVICE_TOKEN_NAME
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(DEMO_DEVICE_TOKEN)
    service = subprocess.Popen([sys.executable, __file__, "_serve", str(work / "svc.sqlite3"), str(args.people), str(int(bool(args.face_arrivals)))],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        url = service.stdout.readline().strip()
        if not url.startswith("http"):
            raise SystemExit("the reference service did not start")
        kiosk_rounds, raw_rounds, before_rounds = [], [], []
        between = not args.face_arrivals and args.raw == "between"
        floor = RawFloor(url, greys, persons, work) if between else None
        kinds = ["kiosk"] + ([] if args.face_arrivals or between else ["raw"]) + (["before"] if args.before else [])
        pictures = work / ("face-pictures" if args.face_arrivals else "pictures")
        for r in range(args.rounds):
            order = kinds[r % len(kinds):] + kinds[: r % len(kinds)]  # rotated each round
            if r % 2:
                order = order[::-1]
            for what in order:
                if what == "kiosk":
                    kiosk_rounds.append(kiosk_round(args, url, token_file, pictures, frames_per_image, work, REPO, floor, period_s))
                elif what == "before":
                    before_rounds.append(kiosk_round(args, url, token_file, pictures, frames_per_image, work, args.before, floor, period_s))
                else:
                    raw_rounds.append(raw_round(url, greys, persons, period_s, work))
        if floor is not None:
            floor.close()
            raw_rounds = [k["raw"] for k in kiosk_rounds + before_rounds]
    finally:
        service.stdin.close()
        service.wait(10)

    def ms(v: float) -> float:
        return round(v * 1000, 2)

    all_kiosk = [x for k in kiosk_rounds for x in k["latencies"]]
    all_reported = [x for k in kiosk_rounds for x in k["reported"]]
    all_raw = [x for r in raw_rounds for x in r]
    kiosk_p50 = statistics.median(statistics.median(k["latencies"]) for k in kiosk_rounds)
    raw_p50 = statistics.median(statistics.median(r) for r in raw_rounds) if raw_rounds else None  # none for faces
    def paired(rounds: list[dict]) -> float | None:
        """Median over rounds of the kiosk's p50 ÷ the raw floor's p50 measured between its people."""
        if not rounds or not all(k["raw"] for k in rounds):
            return None
        return round(statistics.median(statistics.median(k["latencies"]) / statistics.median(k["raw"]) for k in rounds), 3)

    result = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load_1min": os.getloadavg()[0]},
        "settings": {"face_arrivals": args.face_arrivals, "rounds": args.rounds, "people": args.people, "per_min": args.per_min, "fps": FPS,
                     "frames_per_image": frames_per_image, "faces": args.faces, "liveness": args.liveness if args.faces else None},
        "code_to_relay_ms": {"p50_median_of_rounds": ms(kiosk_p50), "p99": ms(percentile(all_kiosk, 99)), "max": ms(max(all_kiosk)),
                             "per_round_p50": [ms(statistics.median(k["latencies"])) for k in kiosk_rounds]},
        "kiosk_reported_ms": {"p50": ms(statistics.median(all_reported)), "p99": ms(percentile(all_reported, 99))},
        "raw_floor_ms": {"p50_median_of_rounds": ms(raw_p50), "p99": ms(percentile(all_raw, 99)), "max": ms(max(all_raw)),
                         "per_round_p50": [ms(statistics.median(r)) for r in raw_rounds]} if raw_rounds else None,
        "ratio_p50": round(kiosk_p50 / raw_p50, 2) if raw_p50 else None,
        "ratio_p50_paired": paired(kiosk_rounds),
        **({"before": {
            "tree": str(args.before),
            "code_to_relay_p50_median_of_rounds": ms(statistics.median(statistics.median(k["latencies"]) for k in before_rounds)),
            "p99": ms(percentile([x for k in before_rounds for x in k["latencies"]], 99)),
            "max": ms(max(x for k in before_rounds for x in k["latencies"])),
            "per_round_p50": [ms(statistics.median(k["latencies"])) for k in before_rounds],
            "kiosk_reported_p50": ms(statistics.median([x for k in before_rounds for x in k["reported"]])),
            "ratio_p50": round(statistics.median(statistics.median(k["latencies"]) for k in before_rounds) / raw_p50, 2) if raw_p50 else None,
            "ratio_p50_paired": paired(before_rounds),
            "memory_mb": {"rss_end": [round(k["rss_kb"] / 1024, 1) for k in before_rounds],
                          "peak": [round(k["hwm_kb"] / 1024, 1) for k in before_rounds]},
        }} if before_rounds else {}),
        "checked": {"people_seen": [k["seen"] for k in kiosk_rounds], "passes": [k["passes"] for k in kiosk_rounds],
                    "relay_matched": [len(k["latencies"]) for k in kiosk_rounds]},
        "kiosk_memory_mb": {"rss_end": [round(k["rss_kb"] / 1024, 1) for k in kiosk_rounds],
                            "peak": [round(k["hwm_kb"] / 1024, 1) for k in kiosk_rounds]},
    }
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        c, raw = result["code_to_relay_ms"], result["raw_floor_ms"]
        what = "face" if args.face_arrivals else "code"
        print(f"{what} in view -> relay energised: p50 {c['p50_median_of_rounds']} ms (rounds {c['per_round_p50']}), p99 {c['p99']}, max {c['max']}")
        print(f"kiosk's own latency_s (passes):  p50 {result['kiosk_reported_ms']['p50']} ms, p99 {result['kiosk_reported_ms']['p99']}")
        if raw is not None:
            print(f"raw floor:                       p50 {raw['p50_median_of_rounds']} ms (rounds {raw['per_round_p50']}), p99 {raw['p99']}, max {raw['max']}")
            print(f"kiosk / raw floor at p50:        {result['ratio_p50']}x"
                  + (f"; paired by round (the raw floor between the kiosk's people): {result['ratio_p50_paired']}x" if result["ratio_p50_paired"] else ""))
        print(f"people seen / passes / relay edges matched per round: {result['checked']}")
        print(f"kiosk memory (MB): {result['kiosk_memory_mb']}")
        if "before" in result:
            bf = result["before"]
            print(f"before ({bf['tree']}): {what} -> relay p50 {bf['code_to_relay_p50_median_of_rounds']} ms (rounds {bf['per_round_p50']}), "
                  f"p99 {bf['p99']}, max {bf['max']}; its own latency_s p50 {bf['kiosk_reported_p50']} ms; "
                  + (f"{bf['ratio_p50']}x the raw floor; " if bf["ratio_p50"] else "")
                  + (f"paired {bf['ratio_p50_paired']}x; " if bf["ratio_p50_paired"] else "") + f"memory {bf['memory_mb']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

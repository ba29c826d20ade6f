"""Device-side time per vehicle on a handheld: the demo's replay of a car with three occupants.

    .venv/bin/python bench/handheld.py [--vehicles 20] [--json]

The handheld demo's camera scenes (sentinel/assets/vehicle_scenes, 640×480, each held 1.2 s at
10 frames per second, as `sentinel demo --profile handheld` plays them) go frame by frame through
the real pipeline and vehicle controller, with the reference service answering verify over
loopback HTTP, the outbox on disk (SQLite, WAL, synchronous=FULL) and every screen the vehicle
shows drawn by the pygame renderer at 800×480 (dummy SDL driver: drawing into memory, which is
the work on the device minus the copy to the panel). Nothing sleeps: time passes on a fake clock,
so what is measured is only the device's own work. Two vehicles, each `--vehicles` times:

- **plain**: driver, passenger 1, passenger 2 (green, green, yellow), one check each;
- **demo**: the demo's scripted car: the same three people, but passenger 1 first shows an expired
  code and is re-scanned, and the driver's phone is shown again at the end (5 checks).

Per vehicle it reports the time spent decoding every frame the camera delivered while the vehicle
was open (frames with and without a code), in verify calls, committing records (each check's and
the vehicle's), and drawing each screen change once, and their sum; the camera view's redraws
(up to 30 a second while a vehicle is open) are the display benchmark's business
(`bench/ui.py`), not counted here.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pygame  # noqa: E402

from hardware.camera.gated import GatedSource  # noqa: E402
from hardware.camera.replay import ReplaySource  # noqa: E402
from hardware.gate import FakeGate  # noqa: E402
from sentinel.client import ServiceClient  # noqa: E402
from sentinel.commands.demo import DEMO_PLATE, seed_vehicle_demo  # noqa: E402
from sentinel.config import ASSETS, CredentialConfig, HandheldConfig, PolicyConfig  # noqa: E402
from sentinel.credentials import CredentialRules  # noqa: E402
from sentinel.decoding import make_decoder  # noqa: E402
from hardware.battery import Battery  # noqa: E402
from sentinel.handheld import HandheldController  # noqa: E402
from sentinel.outbox import Outbox  # noqa: E402
from sentinel.pipeline import Pipeline  # noqa: E402
from sentinel.records import RecordMaker  # noqa: E402
from sentinel.screens import StatusBar  # noqa: E402
from sentinel.service.seed import DEMO_DEVICE_ID, DEMO_DEVICE_TOKEN, DEMO_SITE  # noqa: E402
from sentinel.service.server import ReferenceServer  # noqa: E402
from ui.render import Renderer  # noqa: E402

SCENES = ASSETS / "vehicle_scenes"
FPS = 10.0
HOLD_FRAMES = 12  # 1.2 s per scene, as the demo
PLAIN = ["01_window.jpg", "02_driver_green.jpg", "03_window.jpg", "06_passenger1_refreshed.jpg", "07_window.jpg",
         "08_passenger2_yellow.jpg", "09_window.jpg"]


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


class Timed:
    """Wraps an object and adds up the time spent in one of its methods."""

    def __init__(self, inner, method: str):
        self.inner = inner
        self.method = method
        self.seconds = 0.0
        self.calls = 0

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if name != self.method:
            return attr

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return attr(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started
                self.calls += 1

        return timed


class DrawingDisplay:
    """Draws every screen it is shown once, as the render thread would, and times it."""

    def __init__(self):
        self.renderer = Renderer()
        self.surface = pygame.Surface((800, 480))
        self.status = StatusBar(site_name="Demo checkpoint, lane 3", online=True, outbox_depth=0, battery=80)
        self.seconds = 0.0
        self.draws = 0

    def show(self, screen):
        started = time.perf_counter()
        self.renderer.draw(self.surface, screen, self.status, language=screen.language)
        self.seconds += time.perf_counter() - started
        self.draws += 1

    def preview(self, frame):
        pass


def vehicle_once(client, scenes: Path, tmp: Path, rescan: bool) -> dict:
    clock = Clock()
    display = DrawingDisplay()
    outbox = Timed(Outbox(tmp / f"outbox-{time.monotonic_ns()}.sqlite3"), "add")
    verifier = Timed(client, "verify")
    decoder = Timed(make_decoder(["zxing-cpp", "pyzbar"]), "decode")
    controller = HandheldController(outbox=outbox, device_id=DEMO_DEVICE_ID, site_id=DEMO_SITE.id, display=display,
                                    config=HandheldConfig(enabled=True), language="zh-CN", battery=Battery("none"),
                                    clock=clock, ticker=False)

    class Inline:
        def submit(self, fn, *args):
            from concurrent.futures import Future

            f = Future()
            f.set_result(fn(*args))
            return f

        def shutdown(self, **kw):
            pass

    pipeline = Pipeline(
        decoder=decoder, rules=CredentialRules(CredentialConfig(debounce_s=2.0)), verifier=verifier,
        policy=PolicyConfig(allowed_colours=["green"], yellow="deny", nat_window_h=48, offline="allow_and_flag"),
        records=RecordMaker(DEMO_DEVICE_ID, DEMO_SITE.id, b"b" * 32), outbox=controller.tap(outbox), gate=FakeGate(),
        display=controller.display, language="zh-CN", clock=clock, executor=Inline(), on_outcome=controller.chain(None), result_s=1.0,
    )
    source = GatedSource(ReplaySource(scenes, fps=FPS, frames_per_image=HOLD_FRAMES, realtime=False), controller.scanning_active,
                         clock=clock, sleep=lambda s: None)
    source.start()
    controller.press("start")
    controller.enter_plate(DEMO_PLATE)
    checks = []
    controller.subscribe(lambda e: checks.append(e) if e.kind == "check" else None)
    if rescan:
        controller.subscribe(lambda e: controller.press(f"rescan:{e.add.occupant.seat}")
                             if e.kind == "check" and e.check.verdict.reason == "expired_code" else None)
    frames = 0
    while not source.finished:
        frame = source.read(0.0)
        if frame is not None:
            frames += 1
        pipeline.step(frame)
        clock.t += 1 / FPS
        controller.tick()
    finished = []
    controller.subscribe(lambda e: finished.append(e) if e.kind == "finished" else None)
    controller.finish()
    pipeline.close()
    outbox.inner.close()
    session = finished[0].session
    parts = {"decode": decoder.seconds, "verify": verifier.seconds, "record": outbox.seconds, "screen": display.seconds}
    return {
        "occupants": len(session.occupants),
        "checks": len(checks),
        "frames": frames,
        "screens": display.draws,
        "verdict": finished[0].verdict.kind.value,
        **{f"{k}_ms": v * 1000 for k, v in parts.items()},
        "total_ms": sum(parts.values()) * 1000,
        "check_latency_ms": [round(e.check.latency_s * 1000, 2) for e in checks],
    }


def summarise(runs: list[dict]) -> dict:
    keys = ["decode_ms", "verify_ms", "record_ms", "screen_ms", "total_ms"]
    out = {k: {"median": statistics.median(r[k] for r in runs), "p95": sorted(r[k] for r in runs)[max(0, round(0.95 * len(runs)) - 1)]}
           for k in keys}
    first = runs[0]
    out.update({k: first[k] for k in ("occupants", "checks", "frames", "screens", "verdict")})
    out["decode_per_frame_ms"] = out["decode_ms"]["median"] / first["frames"]
    out["verify_per_check_ms"] = out["verify_ms"]["median"] / first["checks"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vehicles", type=int, default=20, help="vehicles per kind (default 20)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    pygame.init()
    results = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        plain = tmp / "plain"
        plain.mkdir()
        for name in PLAIN:
            shutil.copy(SCENES / name, plain / name)
        with ReferenceServer(tmp / "svc.sqlite3", seed="demo") as server:
            seed_vehicle_demo(server.store, datetime.now(UTC))
            client = ServiceClient(server.url, DEMO_DEVICE_TOKEN, device_id=DEMO_DEVICE_ID, site_id=DEMO_SITE.id)
            vehicle_once(client, SCENES, tmp, True)  # warm-up: first connection, fonts, glyph caches
            for kind, scenes, rescan in (("plain", plain, False), ("demo", SCENES, True)):
                runs = [vehicle_once(client, scenes, tmp, rescan) for _ in range(args.vehicles)]
                results[kind] = summarise(runs)
            client.close()
    report = {
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(), "platform": platform.platform()},
        "vehicles": args.vehicles,
        "results": results,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"Python {report['machine']['python']}, {report['machine']['cpu_count']} CPUs, {report['machine']['platform']}; "
          f"{args.vehicles} vehicles each")
    print("| vehicle | occupants | checks | frames | decode ms | verify ms | records ms | screens (n) ms | total ms (p95) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for kind, r in results.items():
        print(f"| {kind} | {r['occupants']} | {r['checks']} | {r['frames']} | {r['decode_ms']['median']:.1f} | "
              f"{r['verify_ms']['median']:.1f} | {r['record_ms']['median']:.1f} | ({r['screens']}) {r['screen_ms']['median']:.1f} | "
              f"{r['total_ms']['median']:.1f} ({r['total_ms']['p95']:.1f}) |")
    for kind, r in results.items():
        print(f"{kind}: decode {r['decode_per_frame_ms']:.2f} ms per frame, verify {r['verify_per_check_ms']:.2f} ms per check")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How fast the touchscreen draws, and whether the idle screen keeps 30 frames per second.

    .venv/bin/python bench/ui.py [--seconds 3] [--frames 300] [--json]

Two measurements, each at both layouts (800×480 landscape, 1080×1920 portrait), with SDL's dummy
video driver (no screen: what is timed is pygame's drawing into memory, which is also the work on
the Pi, minus the final copy to the panel):

1. Draw time of one frame, by screen: the idle screen with a new 640×480 camera frame each time
   (converted, cropped, scaled and mirrored), the same with colour frames, with smooth scaling, and
   with both (one variable changed at a time against the first: the worst case last), a verdict screen, and the idle screen on a panel turned 90°. The budget at
   30 fps is 33 ms; "max fps" is 1000 / median.
2. The real thing: a PygameDisplay (its own render thread, capped at 30 fps) fed by a fake camera
   at 30 frames per second for --seconds, as the kiosk loop would: frames drawn per second, and
   how long the camera thread's `preview()` and `show()` calls took (they must not wait for
   drawing).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pygame  # noqa: E402
from PIL import Image  # noqa: E402

from sentinel.config import ASSETS, DisplayConfig  # noqa: E402
from sentinel.frames import Frame  # noqa: E402
from sentinel.screens import Screen, ScreenKind, StatusBar  # noqa: E402
from ui.layout import LAYOUTS  # noqa: E402
from ui.preview import Preview  # noqa: E402
from ui.pygame_display import PygameDisplay  # noqa: E402
from ui.render import Renderer  # noqa: E402
from ui.samples import SAMPLE_NOW, samples  # noqa: E402

logging.getLogger("ui.technician").setLevel(logging.ERROR)  # the menu samples enter a wrong PIN on purpose


def scene() -> tuple[np.ndarray, np.ndarray]:
    with Image.open(ASSETS / "scenes" / "02_green.png") as image:
        image = image.convert("RGB").resize((640, 480))
        return np.array(image.convert("L")), np.array(image)


def frames(colour: bool, count: int) -> list[Frame]:
    grey, rgb = scene()
    # distinct arrays, as a camera delivers: nothing cached between frames
    return [Frame(grey=grey.copy(), timestamp=i / 30, sequence=i, colour=rgb.copy() if colour else None) for i in range(count)]


def time_draws(renderer: Renderer, size, screen, status, preview, feed: list[Frame] | None, rotation: int = 0) -> list[float]:
    canvas = pygame.Surface(size)
    panel = pygame.Surface(size[::-1] if rotation in (90, 270) else size)
    times = []
    for i in range(len(feed) if feed else 100):
        if feed:
            preview.frame = feed[i]
        started = time.perf_counter()
        renderer.draw(canvas, screen, status, now=SAMPLE_NOW, preview=preview, language="zh-CN", phase=i % 12)
        if rotation:
            panel.blit(pygame.transform.rotate(canvas, -rotation), (0, 0))
        times.append((time.perf_counter() - started) * 1000)
    return times[5:]  # the first frames fill the caches


def draw_times(count: int) -> list[dict]:
    renderer = Renderer()
    by_name = {s.name: s for s in samples("zh-CN")}
    idle, result = by_name["idle"], by_name["pass"]
    grey_feed, colour_feed = frames(False, count), frames(True, count)
    rows = []
    for layout, size in LAYOUTS.items():
        cases = [
            ("idle, grey camera frame", idle, Preview(), grey_feed, 0),
            # one variable at a time: colour alone, then smooth scaling alone, then both
            ("idle, colour frame", idle, Preview(), colour_feed, 0),
            ("idle, grey frame, smooth scaling", idle, Preview(smooth=True), grey_feed, 0),
            ("idle, colour frame, smooth scaling", idle, Preview(smooth=True), colour_feed, 0),
            ("pass (verdict) screen", result, Preview(), None, 0),
            ("idle, grey frame, panel turned 90°", idle, Preview(), grey_feed, 90),
        ]
        for name, sample, preview, feed, rotation in cases:
            t = time_draws(renderer, size, sample.screen, sample.status, preview, feed, rotation)
            median = statistics.median(t)
            rows.append({
                "layout": layout, "case": name, "median_ms": round(median, 2),
                "p95_ms": round(sorted(t)[int(len(t) * 0.95) - 1], 2), "max_fps": round(1000 / median),
            })
    return rows


def first_draws() -> list[dict]:
    """The first frame of a screen costs more (fitting and rendering its words, drawing its icon):
    with cold caches, and for a new person's verdict once the display has warmed up."""
    from datetime import timedelta

    from sentinel.health import HealthStatus, Nat, NatResult, Person, Status
    from sentinel.policy import Verdict, VerdictKind

    rows = []
    for layout, size in LAYOUTS.items():
        canvas = pygame.Surface(size)
        cold = Renderer()
        times = []
        for sample in samples("zh-CN", technician=False):
            started = time.perf_counter()
            cold.draw(canvas, sample.screen, sample.status, now=SAMPLE_NOW, language="zh-CN")
            times.append((time.perf_counter() - started) * 1000)
        warm = Renderer()
        for sample in samples("zh-CN", technician=False):  # what the display's warm-up does
            warm.draw(canvas, sample.screen, sample.status, now=SAMPLE_NOW, language="zh-CN")
        new_people = []
        for i, name in enumerate(["赵*", "钱*华", "孙*", "周*平", "吴*"]):
            status = HealthStatus(status=Status.GREEN, person=Person(name_masked=name),
                                  nat=Nat(result=NatResult.NEGATIVE, sampled_at=SAMPLE_NOW - timedelta(hours=3 + 7 * i)))
            screen = Screen.result(Verdict(VerdictKind.PASS, "ok"), status, "zh-CN", False, now=SAMPLE_NOW + timedelta(seconds=i))
            started = time.perf_counter()
            warm.draw(canvas, screen, samples("zh-CN", technician=False)[0].status, now=SAMPLE_NOW, language="zh-CN")
            new_people.append((time.perf_counter() - started) * 1000)
        rows.append({
            "layout": layout, "cold_median_ms": round(statistics.median(times), 1), "cold_max_ms": round(max(times), 1),
            "new_person_median_ms": round(statistics.median(new_people), 1), "new_person_max_ms": round(max(new_people), 1),
        })
    return rows


def live(seconds: float) -> list[dict]:
    rows = []
    grey, _ = scene()
    for layout, (w, h) in LAYOUTS.items():
        display = PygameDisplay(DisplayConfig(type="pygame", width=w, height=h, fps=30), language="zh-CN",
                                status=lambda: StatusBar(site_name="徐汇滨江商场 东门", online=True, outbox_depth=0))
        stop = threading.Event()
        calls: list[float] = []

        def camera(display=display, stop=stop, calls=calls) -> None:
            n = 0
            next_at = time.perf_counter()
            while not stop.is_set():
                n += 1
                f = Frame(grey=grey.copy(), timestamp=n / 30, sequence=n)
                started = time.perf_counter()
                display.preview(f)
                if n % 30 == 0:  # a screen change now and then, as the pipeline makes them
                    display.show(Screen.prompt(ScreenKind.IDLE, "zh-CN"))
                calls.append((time.perf_counter() - started) * 1e6)
                next_at += 1 / 30
                time.sleep(max(0.0, next_at - time.perf_counter()))

        thread = threading.Thread(target=camera)
        time.sleep(0.5)
        drawn0, t0 = display.frames_drawn, time.perf_counter()
        thread.start()
        time.sleep(seconds)
        drawn, elapsed = display.frames_drawn - drawn0, time.perf_counter() - t0
        stop.set()
        thread.join()
        display.close()
        rows.append({
            "layout": layout, "size": f"{w}x{h}", "fps": round(drawn / elapsed, 1), "draw_ms": round(display.draw_ms, 2),
            "preview_call_us_median": round(statistics.median(calls), 1), "preview_call_us_max": round(max(calls), 1),
        })
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="how long each live run lasts (default 3)")
    parser.add_argument("--frames", type=int, default=200, help="frames per draw-time case (default 200)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    pygame.init()
    machine = {
        "python": platform.python_version(), "pygame": pygame.version.ver, "sdl": ".".join(map(str, pygame.get_sdl_version())),
        "cpu": platform.processor() or platform.machine(), "nproc": os.cpu_count(), "driver": os.environ["SDL_VIDEODRIVER"],
    }
    draws = draw_times(args.frames)
    firsts = first_draws()
    runs = live(args.seconds)
    if args.json:
        print(json.dumps({"machine": machine, "draw": draws, "first": firsts, "live": runs}, indent=2))
        return 0
    print(f"python {machine['python']}, pygame {machine['pygame']} (SDL {machine['sdl']}), {machine['nproc']} CPUs, "
          f"SDL_VIDEODRIVER={machine['driver']}\n")
    print("| layout | frame | median ms | p95 ms | max fps |\n|---|---|---:|---:|---:|")
    for r in draws:
        print(f"| {r['layout']} | {r['case']} | {r['median_ms']:.2f} | {r['p95_ms']:.2f} | {r['max_fps']} |")
    print("\n| layout | first frame of a screen, cold: median ms | max ms | a new person's pass screen, warm: median ms | max ms |")
    print("|---|---:|---:|---:|---:|")
    for r in firsts:
        print(f"| {r['layout']} | {r['cold_median_ms']} | {r['cold_max_ms']} | {r['new_person_median_ms']} | {r['new_person_max_ms']} |")
    print("\n| layout | fps drawn (camera at 30 fps) | draw ms | preview() median µs | preview() max µs |\n|---|---:|---:|---:|---:|")
    for r in runs:
        print(f"| {r['layout']} {r['size']} | {r['fps']} | {r['draw_ms']:.2f} | {r['preview_call_us_median']} | {r['preview_call_us_max']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

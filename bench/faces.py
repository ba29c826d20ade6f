"""Face matching: what detection and encoding cost per frame, what the loop's frame rate becomes
with face matching on, and the distances the default tolerance rests on.

    .venv/bin/python bench/faces.py [--repeat N] [--seconds S] [--json]

1. Time per frame, at 320×240 and 640×480 camera frames (the shared photos cut to a 4:3 view
   around the person, as tests/test_faces_engine.py does, and the shipped face scenes): detection
   with the kiosk's settings ([faces] defaults: scaled to 320 px wide, upsampled as far as an
   80-px face needs), detection without the upsampling (faces from about 150 px), and one
   encoding (grey plane, colour). Fastest of --repeat runs per frame; median and max over frames.
2. The loop: QR decoding (the kiosk's cascade) and the face matcher on every frame, as fast as
   frames come, on a stream of 640×480 frames with a person in view, with faces off, on at the
   default interval (0.5 s) and on every frame: frames per second and the longest frame.
3. Distances: each shared photo of Barack Obama, as a camera frame (grey and colour) and as a
   still (`sentinel faces match`), to obama.jpg enrolled; biden.jpg to the same; the enrolment
   photos of different people (obama, biden, the demo's astronaut) to each other; and the
   detector scores that set [faces].min_score.

4. Face in view -> match: a person steps into an empty view (30 fps, real time); the matcher
   looking on a change in view, and with the fixed `detect_every_s` clock of before.

Needs the face extra (dlib, face-recognition-models) and ../shared/data/faces.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sentinel.config import FacesConfig  # noqa: E402
from sentinel.decoding import make_decoder  # noqa: E402
from sentinel.faces.engine import FaceEngine, as_rgb, load_rgb, resize, upsample_for  # noqa: E402
from sentinel.faces.enrol import read_enrolment_image  # noqa: E402
from sentinel.faces.gallery import Gallery  # noqa: E402
from sentinel.faces.matcher import FaceMatcher  # noqa: E402
from sentinel.frames import Frame  # noqa: E402

FACES = REPO / ".." / "shared" / "data" / "faces"
FACE_SCENES = REPO / "sentinel" / "assets" / "face_scenes"
FACE_AT = {
    "obama.jpg": (0.53, 0.24), "obama2.jpg": (0.49, 0.35), "obama3.jpg": (0.55, 0.19), "obama-480p.jpg": (0.52, 0.5),
    "obama_small.jpg": (0.5, 0.5), "obama_partial_face.jpg": (0.5, 0.22), "obama_partial_face2.jpg": (0.5, 0.22),
    "biden.jpg": (0.60, 0.18), "two_people.jpg": (0.53, 0.5),
}  # fmt: skip
SAME = ["obama.jpg", "obama2.jpg", "obama3.jpg", "obama-480p.jpg", "obama_small.jpg", "obama_partial_face.jpg", "obama_partial_face2.jpg"]


def camera_rgb(path: Path, size: tuple[int, int]) -> np.ndarray:
    with Image.open(path) as im:
        im = im.convert("RGB")
        if path.name not in FACE_AT:
            return np.asarray(im.resize(size, Image.BILINEAR))
        w, h = im.size
        cw = min(w, round(h * 4 / 3))
        ch = round(cw * 3 / 4)
        fx, fy = FACE_AT[path.name]
        left = min(max(0, round(fx * w - cw / 2)), w - cw)
        top = min(max(0, round(fy * h - ch / 2)), h - ch)
        return np.asarray(im.crop((left, top, left + cw, top + ch)).resize(size, Image.BILINEAR))


def grey_of(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).convert("L"))


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def per_frame(engine: FaceEngine, frames: list[np.ndarray], repeat: int) -> dict:
    cfg = FacesConfig()
    out: dict[str, list[float]] = {"detect": [], "detect_no_upsample": [], "encode_grey": [], "encode_colour": []}
    upsample = None
    for rgb in frames:
        grey = grey_of(rgb)
        width = min(grey.shape[1], cfg.downscale_width)
        scale = width / grey.shape[1]
        upsample = upsample_for(cfg.min_face_px, scale)

        def detect(n):
            small = resize(grey, width) if width != grey.shape[1] else grey
            return engine.detect(small, n, cfg.min_score)

        out["detect"].append(best_of(repeat, lambda: detect(upsample)))
        out["detect_no_upsample"].append(best_of(repeat, lambda: detect(0)))
        boxes = detect(upsample)
        if len(boxes) == 1:
            box = boxes[0].scaled(1 / scale)
            out["encode_grey"].append(best_of(repeat, lambda: engine.encode(as_rgb(grey), [box])))
            out["encode_colour"].append(best_of(repeat, lambda: engine.encode(rgb, [box])))
    summary = {k: {"median_ms": statistics.median(v) * 1000, "max_ms": max(v) * 1000, "n": len(v)} for k, v in out.items() if v}
    summary["upsample"] = upsample
    return summary


def loop_fps(engine: FaceEngine, frames: list[np.ndarray], seconds: float, reference: np.ndarray) -> list[dict]:
    decoder = make_decoder(["zxing-cpp", "pyzbar"])
    results = []
    for label, every in (("faces off", None), ("faces on, every 0.5 s (default)", 0.5), ("faces on, every frame", 1e-9)):
        with Gallery(None) as gallery:
            gallery.enrol("p-obama", "x", [reference])
            matcher = FaceMatcher(gallery, FacesConfig(enabled=True, detect_every_s=every or 1.0), engine=engine)
            n, slowest, detections = 0, 0.0, 0
            start = time.perf_counter()
            while time.perf_counter() - start < seconds:
                rgb = frames[n % len(frames)]
                t = time.perf_counter()
                frame = Frame(grey=grey_of(rgb), timestamp=t, sequence=n)
                codes = decoder.decode(frame.grey)
                if every is not None:
                    seen = matcher.observe(frame, qr_in_view=bool(codes))
                    detections += seen is not None
                slowest = max(slowest, time.perf_counter() - t)
                n += 1
            elapsed = time.perf_counter() - start
        results.append({"loop": label, "fps": n / elapsed, "frames": n, "detections": detections, "longest_frame_ms": slowest * 1000})
    return results


def arrival(engine: FaceEngine, reference: np.ndarray, empty: np.ndarray, face: np.ndarray, arrivals: int, fixed_clock: bool) -> dict:
    """Face in view -> its match: the loop paced at 30 frames per second in real time, an empty
    view for a random 0.6-1.6 s, then the enrolled person; `FaceMatcher.observe` on every frame,
    as the kiosk loop calls it ([faces] defaults, liveness off: the match is the observation that
    starts a check). Timed from the hand-over of the first frame with the face to the return of the
    observation that matched it (detection and encoding included). `fixed_clock`: changes in view
    are ignored, i.e. the fixed `detect_every_s` clock of before (issue 18)."""
    import random

    import sentinel.faces.matcher as matcher_module

    rng = random.Random(18)
    period = 1 / 30
    real_changed = matcher_module.view_changed
    if fixed_clock:
        matcher_module.view_changed = lambda before, now: False
    waits: list[float] = []
    try:
        empty_grey, face_grey = grey_of(empty), grey_of(face)
        with Gallery(None) as gallery:
            gallery.enrol("p-obama", "x", [reference])
            for _ in range(arrivals):
                matcher = FaceMatcher(gallery, FacesConfig(enabled=True, liveness="off"), engine=engine)
                n = 0
                next_at = time.perf_counter()
                arrive_at = next_at + rng.uniform(0.6, 1.6)
                first_in_view: float | None = None
                while True:
                    handed = time.perf_counter()
                    in_view = handed >= arrive_at
                    if in_view and first_in_view is None:
                        first_in_view = handed
                    frame = Frame(grey=face_grey if in_view else empty_grey, timestamp=handed, sequence=n,
                                  colour=face if in_view else empty)
                    seen = matcher.observe(frame)
                    if first_in_view is not None and seen is not None and seen.kind.value == "match":
                        waits.append(time.perf_counter() - first_in_view)
                        break
                    n += 1
                    next_at += period
                    time.sleep(max(0.0, next_at - time.perf_counter()))
    finally:
        matcher_module.view_changed = real_changed
    ms = sorted(w * 1000 for w in waits)
    return {"arrivals": len(ms), "p50_ms": round(statistics.median(ms), 1), "max_ms": round(ms[-1], 1), "min_ms": round(ms[0], 1)}


def distances(engine: FaceEngine) -> list[dict]:
    _, _, obama = read_enrolment_image(engine, FACES / "obama.jpg")
    _, _, biden = read_enrolment_image(engine, FACES / "biden.jpg")
    rows = []
    with Gallery(None) as g:
        g.enrol("p-obama", "x", [obama])
        matcher = FaceMatcher(g, FacesConfig(enabled=True, tolerance=0.8), engine=engine)
        for name in [*SAME, "biden.jpg"]:
            row = {"image": name, "person": "same" if name != "biden.jpg" else "different"}
            rgb = camera_rgb(FACES / name, (640, 480))
            row["frame_grey"] = matcher.analyse(grey_of(rgb)).distance
            row["frame_colour"] = matcher.analyse(grey_of(rgb), rgb).distance
            still = load_rgb(FACES / name)
            seen = matcher.analyse(grey_of(still), still, detect_width=1024, upsample=1)
            row["still_colour"] = seen.distance
            row["to_biden_still"] = float(np.linalg.norm(engine.encode(still, [seen.box])[0] - biden)) if seen.box else None
            rows.append(row)
    return rows


def between_people(engine: FaceEngine) -> list[dict]:
    """Enrolment photos of different people against each other (the shared photos and the demo portrait)."""
    photos = {"obama.jpg": FACES / "obama.jpg", "biden.jpg": FACES / "biden.jpg",
              "astronaut.jpg": REPO / "sentinel" / "assets" / "faces" / "astronaut.jpg"}  # fmt: skip
    encodings = {name: read_enrolment_image(engine, path)[2] for name, path in photos.items()}
    names = list(encodings)
    return [
        {"a": a, "b": b, "distance": float(np.linalg.norm(encodings[a] - encodings[b]))}
        for i, a in enumerate(names) for b in names[i + 1:]
    ]


def scores(engine: FaceEngine) -> list[dict]:
    rows = []
    for path in [*(FACES / n for n in FACE_AT), REPO / "sentinel" / "assets" / "faces" / "astronaut.jpg"]:
        rgb = load_rgb(path)
        small = resize(rgb, min(1024, rgb.shape[1]))
        found = engine.detect_scored(as_rgb(small), 1, -0.5)
        rows.append({"image": path.name, "scores": sorted((round(s, 2) for _, s in found), reverse=True)})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per frame; the fastest counts (default 5)")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long each loop variant runs (default 10)")
    parser.add_argument("--arrivals", type=int, default=15, help="people stepping up, for face in view -> match (default 15)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if not FACES.is_dir():
        print(f"bench/faces.py: {FACES} not found", file=sys.stderr)
        return 2
    import dlib

    engine = FaceEngine()
    names = [n for n in FACE_AT]
    report: dict = {
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(), "dlib": dlib.__version__},
        "per_frame": {},
    }
    for size in ((320, 240), (640, 480)):
        frames = [camera_rgb(FACES / n, size) for n in names] + [camera_rgb(p, size) for p in sorted(FACE_SCENES.glob("*.png"))]
        report["per_frame"][f"{size[0]}x{size[1]}"] = per_frame(engine, frames, args.repeat)
    _, _, reference = read_enrolment_image(engine, FACES / "obama.jpg")
    stream = [camera_rgb(FACES / n, (640, 480)) for n in ("obama2.jpg", "obama3.jpg", "obama-480p.jpg")]
    report["loop"] = loop_fps(engine, stream, args.seconds, reference)
    empty = camera_rgb(FACE_SCENES / "11_empty.png", (640, 480))
    report["arrival"] = {
        label: arrival(engine, reference, empty, stream[0], args.arrivals, fixed)
        for label, fixed in (("on a change in view (now)", False), ("fixed detect_every_s clock (before)", True))
    }
    report["distances"] = distances(engine)
    report["between_people"] = between_people(engine)
    report["scores"] = scores(engine)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"machine: {report['machine']}")
    for size, r in report["per_frame"].items():
        print(f"\n{size} (upsample {r['upsample']}):")
        for k in ("detect", "detect_no_upsample", "encode_grey", "encode_colour"):
            if k in r:
                print(f"  {k:20} median {r[k]['median_ms']:7.1f} ms   max {r[k]['max_ms']:7.1f} ms   ({r[k]['n']} frames)")
    print("\nloop, 640x480 frames with a person in view:")
    for r in report["loop"]:
        print(f"  {r['loop']:34} {r['fps']:7.1f} fps  longest frame {r['longest_frame_ms']:6.1f} ms  ({r['detections']} detections)")
    print("\nface in view -> match (30 fps, liveness off, the matcher on every frame):")
    for label, r in report["arrival"].items():
        print(f"  {label:38} p50 {r['p50_ms']:6.1f} ms  max {r['max_ms']:6.1f} ms  min {r['min_ms']:6.1f} ms  ({r['arrivals']} arrivals)")
    print("\ndistances to obama.jpg enrolled (frame_grey, frame_colour, still_colour) and the still to biden.jpg enrolled:")
    for r in report["distances"]:
        vals = "  ".join("   -  " if r[k] is None else f"{r[k]:.3f}" for k in ("frame_grey", "frame_colour", "still_colour", "to_biden_still"))
        print(f"  {r['image']:26} {r['person']:9}  {vals}")
    print("\ndifferent people, enrolment photos:")
    for r in report["between_people"]:
        print(f"  {r['a']} - {r['b']}: {r['distance']:.3f}")
    print("\ndetector scores (still detection, upsampled once):")
    for r in report["scores"]:
        print(f"  {r['image']:26} {r['scores']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

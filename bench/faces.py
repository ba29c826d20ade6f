"""Face matching: what detection and encoding cost per frame, what the loop's frame rate becomes
with face matching on, and the distances the default tolerance rests on.

    .venv/bin/python bench/faces.py [--repeat N] [--seconds S] [--arrivals N] [--only frame,arrival,...] [--json]

1. Time per frame, at 320×240 and 640×480 camera frames (the shared photos cut to a 4:3 view
   around the person, as tests/test_faces_engine.py does, and the shipped face scenes): detection
   with the kiosk's settings now ([faces] defaults: `engine.detection_size`, the scale of before
   taken from the frame's own pixels: 640 px not upsampled for a 640-px frame), as before (scaled
   to 320 px, upsampled by dlib as far as an 80-px face needs), at 320 px without upsampling (faces from about 144 px),
   and one encoding (grey plane, colour; and colour through dlib's own encoder, the before of
   sentinel/faces/encoder.py). Fastest of --repeat runs per frame; median and max over frames.
2. The loop: QR decoding (the kiosk's cascade) and the face matcher on every frame, as fast as
   frames come, on a stream of 640×480 frames with a person in view, with faces off, on at the
   default interval (0.5 s) and on every frame: frames per second and the longest frame.
3. Distances: each shared photo of Barack Obama, as a camera frame (grey and colour) and as a
   still (`sentinel faces match`), to obama.jpg enrolled; biden.jpg to the same; the enrolment
   photos of different people (obama, biden, the demo's astronaut) to each other; and the
   detector scores that set [faces].min_score.
4. Face in view -> match: a person steps into an empty view (30 fps, real time), --arrivals
   times per variant, the variants interleaved five arrivals at a time: now (a change in view
   looked at, detection on the frame's 640 px, the encoder's network run with numpy); the same
   with dlib's own encoder (the before of sentinel/faces/encoder.py); and before issue 18 (the
   fixed `detect_every_s` clock, 320 px upsampled, dlib's encoder). With the median detection +
   encoding time of the matching look.
5. Idle: an empty view with sensor noise, --seconds twice per variant (interleaved): how many
   looks the matcher takes and the CPU it spends, now (a still view every `IDLE_EVERY_S`) and
   before (every `detect_every_s`, 320 px upsampled).
6. Liveness cues (`liveness_cues`): the 68-point check against what the 5-point landmarks and
   the face's pixels could tell (needs OpenCV, as the dev venv has): why liveness keeps the
   68-point model.
7. BLAS threads (`blas_threads`): encodings 0.5 s apart, wall and process CPU per encoding, with
   the engine's one BLAS thread and with numpy's default (a thread per core).

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
from sentinel.faces.engine import FaceEngine, as_rgb, detection_size, load_rgb, resize, upsample_for  # noqa: E402
from sentinel.faces.enrol import read_enrolment_image  # noqa: E402
from sentinel.faces.gallery import Gallery  # noqa: E402
from sentinel.faces.matcher import FaceMatcher  # noqa: E402
from sentinel.frames import Frame  # noqa: E402
from tests.face_photos import FACE_AT, camera_rgb  # noqa: E402

FACES = REPO / ".." / "shared" / "data" / "faces"
FACE_SCENES = REPO / "sentinel" / "assets" / "face_scenes"
SAME = ["obama.jpg", "obama2.jpg", "obama3.jpg", "obama-480p.jpg", "obama_small.jpg", "obama_partial_face.jpg", "obama_partial_face2.jpg"]


def grey_of(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).convert("L"))


def best_of(repeat: int, fn) -> tuple[float, float]:
    """The fastest of `repeat` runs: (wall time, this thread's CPU time). On a busy machine the CPU
    time is what the work costs, the wall time what it waited besides."""
    walls, cpus = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.thread_time()
        fn()
        cpus.append(time.thread_time() - c)
        walls.append(time.perf_counter() - t)
    return min(walls), min(cpus)


def per_frame(engine: FaceEngine, slow: FaceEngine, frames: list[np.ndarray], repeat: int) -> dict:
    """`detect`: the kiosk's detection now (`detection_size`: the scale of before, from the
    frame's own pixels, not upsampled by dlib); `detect_320_upsampled`: before issue 18's change (scaled
    to `downscale_width`, upsampled by dlib as far as an 80-px face needs), both finding faces
    from 80 px; `detect_320_no_upsample`: faces from about 144 px only. `encode_*`: the engine's
    encoding (the network run with numpy, sentinel/faces/encoder.py); `encode_colour_dlib`: the same
    through dlib's own encoder (`slow`), the before."""
    cfg = FacesConfig()
    out: dict[str, list[tuple[float, float]]] = {"detect": [], "detect_320_upsampled": [], "detect_320_no_upsample": [],
                                   "encode_grey": [], "encode_colour": [], "encode_colour_dlib": []}
    upsample = width = None
    for rgb in frames:
        grey = grey_of(rgb)
        width, upsample = detection_size(grey.shape[1], cfg.min_face_px, cfg.downscale_width)
        width_before = min(grey.shape[1], cfg.downscale_width)
        upsample_before = upsample_for(cfg.min_face_px, width_before / grey.shape[1])

        def detect(w, n):
            small = resize(grey, w) if w != grey.shape[1] else grey
            return engine.detect(small, n, cfg.min_score)

        out["detect"].append(best_of(repeat, lambda: detect(width, upsample)))
        out["detect_320_upsampled"].append(best_of(repeat, lambda: detect(width_before, upsample_before)))
        out["detect_320_no_upsample"].append(best_of(repeat, lambda: detect(width_before, 0)))
        boxes = detect(width, upsample)
        if len(boxes) == 1:
            box = boxes[0].scaled(grey.shape[1] / width)
            out["encode_grey"].append(best_of(repeat, lambda: engine.encode(as_rgb(grey), [box])))
            out["encode_colour"].append(best_of(repeat, lambda: engine.encode(rgb, [box])))
            out["encode_colour_dlib"].append(best_of(repeat, lambda: slow.encode(rgb, [box])))
    summary = {k: {"median_ms": statistics.median(w for w, _ in v) * 1000, "max_ms": max(w for w, _ in v) * 1000,
                   "median_cpu_ms": statistics.median(c for _, c in v) * 1000, "n": len(v)} for k, v in out.items() if v}
    summary["upsample"] = upsample
    summary["width"] = width
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


def arrival(engine: FaceEngine, reference: np.ndarray, empty: np.ndarray, face: np.ndarray, arrivals: int, variant: str) -> dict:
    """Face in view -> its match: the loop paced at 30 frames per second in real time, an empty
    view for a random 0.6-1.6 s, then the enrolled person; `FaceMatcher.observe` on every frame,
    as the kiosk loop calls it ([faces] defaults, liveness off: the match is the observation that
    starts a check). Timed from the hand-over of the first frame with the face to the return of the
    observation that matched it (detection and encoding included). `variant`: "now" and "dlib
    encoder" (the matcher as it is; which encoder is `engine`'s); "fixed clock": changes in view
    ignored and the 320-px upsampled detection, i.e. the fixed `detect_every_s` clock of before
    issue 18."""
    import random

    import sentinel.faces.matcher as matcher_module

    rng = random.Random(18)
    period = 1 / 30
    real = matcher_module.view_changed, matcher_module.detection_size, matcher_module.IDLE_EVERY_S
    if variant == "fixed clock":
        matcher_module.detection_size = lambda w, face, floor: (min(w, floor), upsample_for(face, min(w, floor) / w))
        matcher_module.view_changed = lambda before, now: False
        matcher_module.IDLE_EVERY_S = FacesConfig().detect_every_s
    waits: list[float] = []
    work: list[float] = []
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
                        work.append(seen.detect_s + seen.encode_s)
                        break
                    n += 1
                    next_at += period
                    time.sleep(max(0.0, next_at - time.perf_counter()))
    finally:
        matcher_module.view_changed, matcher_module.detection_size, matcher_module.IDLE_EVERY_S = real
    return {"waits_ms": [w * 1000 for w in waits], "work_ms": [w * 1000 for w in work]}


def blas_threads(engine: FaceEngine, face: np.ndarray, encodings: int = 20) -> dict:
    """Encodings 0.5 s apart (a face in view, looked at every `detect_every_s`): wall time of the
    encoding and the process's CPU time (getrusage: every thread, the 0.5 s after it included) per
    encoding, as the engine runs them (one BLAS thread) and with numpy's BLAS as it is set up (a
    thread per core: OpenBLAS's workers spin after each product). Interleaved, 5 at a time."""
    import resource

    (box,) = engine.detect(grey_of(face), 0)
    network = engine._encoder  # sentinel/faces/encoder.py's ResnetEncoder

    def per_core(image, boxes):  # the engine's steps, the network without its thread limit
        return [network._forward(chip) for chip in engine.chips(image, boxes)]

    variants = {"one BLAS thread (the engine)": engine.encode, "a BLAS thread per core": per_core}
    totals = {label: [0.0, 0.0, 0] for label in variants}
    for _ in range(max(1, encodings // 5)):
        for label, encode in variants.items():
            for _ in range(5):
                before = resource.getrusage(resource.RUSAGE_SELF)
                t = time.perf_counter()
                encode(face, [box])
                wall = time.perf_counter() - t
                time.sleep(0.5)
                after = resource.getrusage(resource.RUSAGE_SELF)
                total = totals[label]
                total[0] += wall
                total[1] += (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
                total[2] += 1
    return {label: {"wall_ms": round(w / n * 1000, 1), "cpu_ms": round(c / n * 1000, 1), "n": n} for label, (w, c, n) in totals.items()}


def idle(engine: FaceEngine, empty: np.ndarray, seconds: float, variant: str) -> dict:
    """An empty view with sensor noise (±6 grey levels) at 30 fps for `seconds`: how often the
    matcher looks and the CPU it spends in `observe` (thread CPU time). "now": a still view is
    looked at every `IDLE_EVERY_S`; "before": every `detect_every_s`, at 320 px upsampled."""
    import sentinel.faces.matcher as matcher_module

    real = matcher_module.detection_size, matcher_module.IDLE_EVERY_S
    if variant == "before":
        matcher_module.detection_size = lambda w, face, floor: (min(w, floor), upsample_for(face, min(w, floor) / w))
        matcher_module.IDLE_EVERY_S = FacesConfig().detect_every_s
    rng = np.random.default_rng(18)
    grey = grey_of(empty).astype(np.int16)
    noisy = [np.clip(grey + rng.integers(-6, 7, grey.shape), 0, 255).astype(np.uint8) for _ in range(8)]
    looks, cpu = 0, 0.0
    try:
        with Gallery(None) as gallery:
            matcher = FaceMatcher(gallery, FacesConfig(enabled=True, liveness="off"), engine=engine)
            start = next_at = time.perf_counter()
            n = 0
            while time.perf_counter() - start < seconds:
                t = time.thread_time()
                looks += matcher.observe(Frame(grey=noisy[n % len(noisy)], timestamp=next_at, sequence=n)) is not None
                cpu += time.thread_time() - t
                n += 1
                next_at += 1 / 30
                time.sleep(max(0.0, next_at - time.perf_counter()))
    finally:
        matcher_module.detection_size, matcher_module.IDLE_EVERY_S = real
    return {"seconds": seconds, "looks": looks, "cpu_ms_per_s": round(cpu * 1000 / seconds, 2)}


def liveness_cues(engine: FaceEngine) -> dict:
    """Why the liveness check reads the 68-point landmarks (issue 18: +70 MB): the cues a check
    could take from the 5-point landmarks and the face's pixels, measured on the same pictures as
    the 68-point check. A flat picture must stay below a cue's threshold, a real change of pose
    (two photos of the same person) above it.

    - `plane_68`: what the check reads now: the 68 landmarks' residual after the best homography
      (`liveness.plane_residual`, inter-ocular distances; threshold `MOVE_RESIDUAL`);
    - `affine_5`: the 5 landmarks' residual after the best affine map (a homography is
      degenerate: four of the five points are on one line), in inter-ocular distances;
    - `pixels_5`: the face's pixels, aligned on the 5 landmarks (`dlib.get_face_chip`, 64 px grey),
      1 - the correlation left after the best homography between two views (OpenCV's ECC):
      blinks, glances and head turns change it, a flat picture moved does not... unless its
      light changes: a glare spot moving over a held glossy print or screen.

    Pictures: the demo's face scene as a print held at 20 angles, slightly out of focus (the
    tests' `tilted`), against the untilted scene and each other; a glare spot (a bright 40-px
    blob) at four places on the same scene, against its first place; and four photos of the same
    person (obama, obama2, obama3, obama-480p: obama-480p is obama at another size), each pair."""
    import cv2
    import dlib

    from sentinel.faces.liveness import plane_residual
    from tests.test_face_liveness import scene, tilted

    def look(rgb):
        grey = grey_of(rgb)
        with Gallery(None) as g:
            box = FaceMatcher(g, FacesConfig(enabled=True), engine=engine).analyse(grey, rgb).box
        rect = dlib.rectangle(box.left, box.top, box.right, box.bottom)
        shape = engine._five_point(rgb, rect)
        five = np.array([(p.x, p.y) for p in shape.parts()], float)
        chip = np.asarray(Image.fromarray(dlib.get_face_chip(rgb, shape, size=64, padding=0.0)).convert("L"), np.float32)
        (sixty_eight,) = engine.landmarks(rgb, [box])
        return {"plane_68": sixty_eight, "affine_5": five, "pixels_5": chip}

    def affine_5(a, b):
        design = np.c_[a, np.ones(len(a))]
        fit, *_ = np.linalg.lstsq(design, b, rcond=None)
        iod = np.linalg.norm((b[0] + b[1]) / 2 - (b[2] + b[3]) / 2)
        return float(np.sqrt(((design @ fit - b) ** 2).sum(axis=1).mean()) / iod)

    def pixels_5(a, b):
        criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-5)
        rho, _ = cv2.findTransformECC(a, b, np.eye(3, dtype=np.float32), cv2.MOTION_HOMOGRAPHY, criteria, None, 5)
        return 1.0 - float(rho)

    cue = {"plane_68": plane_residual, "affine_5": affine_5, "pixels_5": pixels_5}

    def glare(rgb, cx, cy):
        yy, xx = np.mgrid[: rgb.shape[0], : rgb.shape[1]]
        spot = 120 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 40**2))
        return np.clip(rgb + spot[..., None], 0, 255).astype(np.uint8)

    base = scene()
    still = look(base)
    held = [look(tilted(base, seed)) for seed in range(20)]
    shone = [look(glare(base, x, y)) for x, y in ((250, 150), (300, 180), (330, 200), (360, 170))]
    names = ["obama.jpg", "obama2.jpg", "obama3.jpg", "obama-480p.jpg"]
    person = {n: look(camera_rgb(FACES / n, (640, 480))) for n in names}
    out = {}
    for name, fn in cue.items():
        photo = [fn(still[name], h[name]) for h in held] + [fn(a[name], b[name]) for a in held[:8] for b in held[:8] if a is not b]
        out[name] = {
            "print_held_max": round(max(photo), 4),
            "glare_moved": [round(fn(shone[0][name], s[name]), 4) for s in shone[1:]],
            "same_person_pairs": {f"{a}-{b}": round(fn(person[a][name], person[b][name]), 4)
                                  for i, a in enumerate(names) for b in names[i + 1:]},
        }
    return out


def _merge(chunks: list[dict]) -> dict:
    """The arrivals of several chunks as one: p50, max and min over all of them."""
    ms = sorted(w for c in chunks for w in c["waits_ms"])
    work = [w for c in chunks for w in c["work_ms"]]
    return {"arrivals": len(ms), "p50_ms": round(statistics.median(ms), 1), "max_ms": round(ms[-1], 1), "min_ms": round(ms[0], 1),
            "work_p50_ms": round(statistics.median(work), 1)}


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
    parser.add_argument("--only", default="frame,loop,arrival,idle,cues,distances,blas",
                        help="sections to run, comma-separated (default all: frame,loop,arrival,idle,cues,distances,blas)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if not FACES.is_dir():
        print(f"bench/faces.py: {FACES} not found", file=sys.stderr)
        return 2
    import dlib

    only = set(args.only.split(","))
    engine = FaceEngine()
    # the before, dlib's own encoder (22 MB more, loaded only for the sections that compare it)
    slow = FaceEngine(dlib_encoder=True) if {"frame", "arrival"} & only else None
    names = [n for n in FACE_AT]
    report: dict = {
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(), "dlib": dlib.__version__},
        "per_frame": {},
    }
    if "frame" in only:
        for size in ((320, 240), (640, 480)):
            frames = [camera_rgb(FACES / n, size) for n in names] + [camera_rgb(p, size) for p in sorted(FACE_SCENES.glob("*.png"))]
            report["per_frame"][f"{size[0]}x{size[1]}"] = per_frame(engine, slow, frames, args.repeat)
    _, _, reference = read_enrolment_image(engine, FACES / "obama.jpg")
    stream = [camera_rgb(FACES / n, (640, 480)) for n in ("obama2.jpg", "obama3.jpg", "obama-480p.jpg")]
    if "loop" in only:
        report["loop"] = loop_fps(engine, stream, args.seconds, reference)
    empty = camera_rgb(FACE_SCENES / "11_empty.png", (640, 480))
    if "arrival" in only:
        # the variants interleaved, a few arrivals at a time, so that each sees the same machine
        variants = {"now": "on a change, 640 px, numpy encoder (now)", "dlib encoder": "on a change, 640 px, dlib's encoder",
                    "fixed clock": "fixed clock, 320 px upsampled, dlib's encoder"}
        chunks: dict[str, list[dict]] = {v: [] for v in variants}
        left = args.arrivals
        while left > 0:
            n = min(5, left)
            for v in variants:
                chunks[v].append(arrival(engine if v == "now" else slow, reference, empty, stream[0], n, v))
            left -= n
        report["arrival"] = {variants[v]: _merge(c) for v, c in chunks.items()}
    if "idle" in only:
        report["idle"] = {}
        for v in ("now", "before", "now", "before"):
            r = idle(engine, empty, args.seconds, v)
            prev = report["idle"].get(v)
            report["idle"][v] = r if prev is None else {"seconds": prev["seconds"] + r["seconds"], "looks": prev["looks"] + r["looks"],
                                                         "cpu_ms_per_s": round((prev["cpu_ms_per_s"] + r["cpu_ms_per_s"]) / 2, 2)}
    if "blas" in only and engine.encoder_backend == "numpy":
        report["blas"] = blas_threads(engine, stream[0])
    if "cues" in only:
        report["liveness_cues"] = liveness_cues(engine)
    if "distances" in only:
        report["distances"] = distances(engine)
        report["between_people"] = between_people(engine)
        report["scores"] = scores(engine)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"machine: {report['machine']}")
    for size, r in report["per_frame"].items():
        print(f"\n{size} (the kiosk's detection now: {r['width']} px wide, upsample {r['upsample']}):")
        for k in ("detect", "detect_320_upsampled", "detect_320_no_upsample", "encode_grey", "encode_colour", "encode_colour_dlib"):
            if k in r:
                print(f"  {k:24} median {r[k]['median_ms']:7.1f} ms (CPU {r[k]['median_cpu_ms']:7.1f} ms)   max {r[k]['max_ms']:7.1f} ms"
                      f"   ({r[k]['n']} frames)")
    if "loop" in report:
        print("\nloop, 640x480 frames with a person in view:")
    for r in report.get("loop", []):
        print(f"  {r['loop']:34} {r['fps']:7.1f} fps  longest frame {r['longest_frame_ms']:6.1f} ms  ({r['detections']} detections)")
    if "arrival" in report:
        print("\nface in view -> match (30 fps, liveness off, the matcher on every frame; variants interleaved):")
    for label, r in report.get("arrival", {}).items():
        print(f"  {label:46} p50 {r['p50_ms']:6.1f} ms  max {r['max_ms']:6.1f} ms  min {r['min_ms']:6.1f} ms"
              f"  detection+encoding p50 {r['work_p50_ms']:6.1f} ms  ({r['arrivals']} arrivals)")
    if "idle" in report:
        print("\nan empty view with sensor noise, 30 fps (the matcher's looks and CPU):")
    for label, r in report.get("idle", {}).items():
        print(f"  {label:8} {r['looks']:4d} looks in {r['seconds']:.0f} s   {r['cpu_ms_per_s']:6.2f} ms CPU per second")
    if "blas" in report:
        print("\nencodings 0.5 s apart: wall time of the encoding, process CPU per encoding (all threads, the 0.5 s after included):")
    for label, r in report.get("blas", {}).items():
        print(f"  {label:30} wall {r['wall_ms']:6.1f} ms   CPU {r['cpu_ms']:6.1f} ms   ({r['n']} encodings)")
    if "liveness_cues" in report:
        print("\nliveness cues (a flat picture must stay below, a change of pose above; liveness_cues()):")
    for name, r in report.get("liveness_cues", {}).items():
        print(f"  {name:9} print held, 20 angles: max {r['print_held_max']:.4f}   glare spot moved: {r['glare_moved']}")
        print(f"  {'':9} same person, other photo: {r['same_person_pairs']}")
    if "distances" not in report:
        return 0
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

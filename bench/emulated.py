"""What can be measured of the Pi's userland without a Pi: the same small benchmark run natively and
in the emulated arm64 root (tools/pi-emulated.sh), compared as ratios.

Under qemu-user every arm64 instruction is translated, so a figure from the root is not a Pi figure:
the ratio says how much slower the emulated run is than this machine, which tells whether
something is unexpectedly slow on arm64 builds (a wheel without NEON, a pure-Python fallback), not
how fast a Pi is. The Pi 4 / Pi 5 rows in docs/benchmarks.md stay open until they are run on a Pi.

    .venv/bin/python bench/emulated.py [--json OUT]       measure here, print (and write) the figures
    .venv/bin/python bench/emulated.py --compare A B      a table of two such files: B / A

Measured (medians): interpreter + `import sentinel.kiosk` start-up (fresh processes), `sentinel
check-config` wall time, zxing-cpp decode of real phone photos (../shared/data/qr/zxing-blackbox),
dlib face detection (HOG) and encoding (ResNet) of a portrait (../shared/data/faces), and the peak
RSS of a process that loaded the decoder and the face models.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
REPEATS = 5


def _median_seconds(run, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def startup() -> dict[str, float]:
    python = sys.executable
    sentinel = str(Path(python).with_name("sentinel"))
    config = str(ROOT / "config" / "pillar.toml")
    return {
        "python_start_ms": 1000 * _median_seconds(lambda: subprocess.run([python, "-c", "pass"], check=True)),
        "import_kiosk_ms": 1000 * _median_seconds(lambda: subprocess.run([python, "-c", "import sentinel.kiosk"], check=True, cwd=ROOT)),
        "check_config_ms": 1000 * _median_seconds(
            lambda: subprocess.run([sentinel, "check-config", config], check=True, capture_output=True)
        ),
    }


def decode() -> dict[str, float]:
    import numpy as np
    import zxingcpp
    from PIL import Image

    folder = SHARED / "qr" / "zxing-blackbox"
    photos = sorted(path for path in folder.glob("*/*") if path.suffix.lower() in (".png", ".jpg"))[::4][:16]
    if not photos:
        return {}
    greys = []
    for path in photos:
        image = Image.open(path).convert("L")
        image.thumbnail((1280, 1280))
        greys.append(np.asarray(image))
    read = sum(1 for grey in greys if zxingcpp.read_barcodes(grey))
    per_photo = _median_seconds(lambda: [zxingcpp.read_barcodes(grey) for grey in greys]) / len(greys)
    empty = np.full((480, 640), 128, np.uint8)
    empty_cost = _median_seconds(lambda: [zxingcpp.read_barcodes(empty) for _ in range(20)]) / 20
    return {"decode_photo_ms": 1000 * per_photo, "decode_empty_frame_ms": 1000 * empty_cost, "photos": len(greys), "photos_read": read}


def faces() -> dict[str, float]:
    try:
        import dlib
        import face_recognition_models as models
        import numpy as np
        from PIL import Image
    except ImportError as e:
        return {"faces": f"unavailable: {e}"}
    portrait = SHARED / "faces" / "obama-480p.jpg"
    if not portrait.exists():
        return {}
    image = np.asarray(Image.open(portrait).convert("RGB"))
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
    encoder = dlib.face_recognition_model_v1(models.face_recognition_model_location())
    boxes = detector(image, 0)
    if not boxes:
        return {"faces": "no face found"}
    shape = predictor(image, boxes[0])
    return {
        "face_detect_ms": 1000 * _median_seconds(lambda: detector(image, 0)),
        "face_encode_ms": 1000 * _median_seconds(lambda: encoder.compute_face_descriptor(image, shape)),
    }


def measure() -> dict:
    figures = {"machine": platform.machine(), "python": platform.python_version()}
    figures.update(startup())
    figures.update(decode())
    figures.update(faces())
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return figures


def compare(native: dict, emulated: dict) -> str:
    lines = [f"{'measure':<24}{native['machine']:>12}{emulated['machine'] + ' (qemu)':>18}{'ratio':>8}"]
    for key, value in native.items():
        other = emulated.get(key)
        if key in ("machine", "python") or not isinstance(value, (int, float)) or not isinstance(other, (int, float)):
            continue
        ratio = f"{other / value:.1f}x" if value and key not in ("photos", "photos_read") else ""
        lines.append(f"{key:<24}{value:>12.1f}{other:>18.1f}{ratio:>8}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("NATIVE", "EMULATED"))
    args = parser.parse_args()
    if args.compare:
        native, emulated = (json.loads(path.read_text()) for path in args.compare)
        print(compare(native, emulated))
        return 0
    figures = measure()
    print(json.dumps(figures, indent=1))
    if args.json:
        args.json.write_text(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())

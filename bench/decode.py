"""How many real QR photos each decoder reads, how long it takes, and what an empty frame costs.

The kiosk's decoder order (zxing-cpp; pyzbar on what it located but could not read; WeChat) rests
on numbers like these; rerun this after changing a decoder, its options or its version, and on the
Pi itself, whose CPU is what the scan-to-gate budget is spent on. Only decoding is timed: images
are loaded and converted to grey first, as the camera's Y plane would be.

    .venv/bin/python bench/decode.py [FOLDER] [--repeat N] [--empty-runs N] [--categories A,B] [--json]

FOLDER holds `N.png|jpg|gif` with the expected text in `N.txt`, in any depth of subfolders
(default: ../shared/data/qr/zxing-blackbox from the repository root), or is a labelled set like
../shared/data/qr/boofcv-dev (BoofCV's qrcodes_v3: `<category>/imageNNN.jpg` with `imageNNN.txt`,
"SETS" then the 4 corners of each code, no text). A labelled set is scored as that benchmark is:
a labelled code is read when the centre of a decoded code's corners lies inside its quadrilateral
(one to one), the share read per category, averaged over the categories; as shipped and scaled
to the lores stream's 640 px, with each decoder's mean time per photo ÷ zxing-cpp's, and then the
empty frames below, all in one run. `--categories` measures a subset while iterating.

Besides each backend alone, three cascades (zxing-cpp, then pyzbar) are compared: "N=1" runs pyzbar
on every frame in which zxing-cpp read nothing (the cascade before the fallback was gated), "A"
only on frames where zxing-cpp located a QR symbol it could not decode, and the default also on
every Nth frame without anything located. A photo is judged as the kiosk would see it held up to
the camera: a cascade that runs pyzbar only every N frames gets N consecutive frames of it (each
image's time is then the mean per frame over those N, fastest of --repeat such windows), and it
counts as read if any of them reads it; a single backend keeps no state, so one frame tells all.

The second measurement is the idle cost: a kiosk camera mostly sees nobody, so what each decoder
spends on a frame without a code decides how much of the frame budget is left. It decodes 640×480
frames (the lores stream's size) of scenes without a code: the generated camera backdrops
`sentinel/assets/scenes/*_empty.png`, and the face photos in ../shared/data/faces (real photos with
texture, cropped to 4:3 and resized), `--empty-runs` times each.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sentinel.decoding import (  # noqa: E402  (the repository is put on the path above)
    DEFAULT_FALLBACK_EVERY,
    DEFAULT_ORDER,
    CascadeDecoder,
    Decoder,
    ImageError,
    PyzbarDecoder,
    ZxingDecoder,
    centre,
    inside,
    load_grey,
    make_decoder,
)
from sentinel.decoding.detail import scan_with_detail  # noqa: E402

DEFAULT_FOLDER = REPO / ".." / "shared" / "data" / "qr" / "zxing-blackbox"
EMPTY_SCENES = REPO / "sentinel" / "assets" / "scenes"
FACES = REPO / ".." / "shared" / "data" / "faces"
KIOSK_FRAME = (640, 480)  # the lores stream's size: what the decoder reads on the kiosk
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif"}


@dataclass
class Case:
    name: str  # path relative to the data folder, e.g. qrcode-2/14.png
    folder: str  # e.g. qrcode-2
    grey: object  # np.ndarray
    expected: str


@dataclass
class Outcome:
    decoder: str
    frames: int = 1  # consecutive frames each image is held up for
    read: dict[str, bool] = field(default_factory=dict)  # case name → read correctly
    wrong: dict[str, bool] = field(default_factory=dict)  # case name → found codes, none with the expected text
    ms: dict[str, float] = field(default_factory=dict)  # case name → decode time

    def summary(self) -> dict:
        times = list(self.ms.values())
        read = sum(self.read.values())
        return {
            "decoder": self.decoder,
            "frames": self.frames,
            "read": read,
            "total": len(self.read),
            "wrong_text": sum(self.wrong.values()),
            "rate_pct": round(100 * read / len(self.read), 1) if self.read else 0.0,
            "mean_ms": round(statistics.fmean(times), 2) if times else 0.0,
            "median_ms": round(statistics.median(times), 2) if times else 0.0,
        }


def normalise(text: str) -> str:
    """The expected files were written on several systems; only line endings differ between them."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def load_cases(folder: Path) -> tuple[list[Case], list[str]]:
    """Every image with an expected text, and the names of the images that could not be used."""
    cases, skipped = [], []
    for image in sorted(folder.rglob("*"), key=_natural):
        if image.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        name = image.relative_to(folder).as_posix()
        expected = image.with_suffix(".txt")
        if not expected.is_file():
            skipped.append(f"{name}: no {expected.name}")
            continue
        try:
            grey = load_grey(image)
        except ImageError as exc:
            skipped.append(f"{name}: {exc.reason}")
            continue
        text = normalise(expected.read_text(encoding="utf-8"))
        cases.append(Case(name, image.parent.relative_to(folder).as_posix(), grey, text))
    return cases, skipped


def _natural(path: Path) -> list:
    """qrcode-1/2.png before qrcode-1/10.png, so tables and lists read in the data set's order."""
    return [(0, int(run), "") if run.isdigit() else (1, 0, run) for run in re.split(r"(\d+)", path.as_posix())]


def compared() -> list[tuple[str, Decoder]]:
    """(label, decoder): the backends alone, and the cascade as it was and as it could be."""
    return [
        ("zxing-cpp", ZxingDecoder()),
        ("pyzbar", PyzbarDecoder()),
        ("cascade N=1 (before)", CascadeDecoder([ZxingDecoder(), PyzbarDecoder()], fallback_every=1)),
        ("cascade A", CascadeDecoder([ZxingDecoder(), PyzbarDecoder()], fallback_every=None)),
        (f"cascade N={DEFAULT_FALLBACK_EVERY} (default)", make_decoder(DEFAULT_ORDER)),
    ]


class WithDetail:
    """A decoder as the kiosk's pipeline runs it on a Pi camera's frame: symbols located but not
    read in the lores plane (the photo scaled to 640 px) read again from the main stream (the
    photo as shipped; `scan_with_detail`, sentinel/decoding/detail.py). Photos as shipped have no
    larger stream: there it is the decoder alone."""

    def __init__(self, decoder: Decoder) -> None:
        self.decoder = decoder
        self.name = getattr(decoder, "name", "decoder")
        self.detail = None  # set per photo by measure_labelled

    def decode(self, grey) -> list:
        detail = self.detail
        return scan_with_detail(self.decoder, self.decoder.scan(grey), (lambda: detail) if detail is not None else None, grey.shape).codes


def labelled_compared() -> list[tuple[str, Decoder]]:
    """(label, decoder) on the labelled photos: zxing-cpp alone first (the time ratios are to it),
    the cascade as `scan-image` ran it before issue 17 (pyzbar on the whole frame whenever
    zxing-cpp read nothing), zxing-cpp with its second looks, the kiosk's cascade without and with
    WeChat (one frame per photo: the later backends only where zxing-cpp located a symbol it could
    not read, pyzbar on those regions; pyzbar also on 1 empty frame in N), and the cascade as
    `scan-image` runs it (every backend on a photo without a code)."""
    return [
        ("zxing-cpp", ZxingDecoder(second_looks=False)),
        ("before: zxing-cpp, pyzbar", CascadeDecoder([ZxingDecoder(second_looks=False), PyzbarDecoder()], fallback_every=1)),
        ("zxing-cpp + second looks", ZxingDecoder()),
        (f"kiosk: zxing-cpp, pyzbar, N={DEFAULT_FALLBACK_EVERY}", make_decoder(["zxing-cpp", "pyzbar"])),
        (f"kiosk: zxing-cpp, pyzbar, N={DEFAULT_FALLBACK_EVERY}, + main stream", WithDetail(make_decoder(["zxing-cpp", "pyzbar"]))),
        (f"kiosk: {', '.join(DEFAULT_ORDER)}, N={DEFAULT_FALLBACK_EVERY}", make_decoder(DEFAULT_ORDER)),
        (f"scan-image: {', '.join(DEFAULT_ORDER)}", make_decoder(DEFAULT_ORDER, fallback_every=1)),
    ]


def empty_compared() -> list[tuple[str, Decoder]]:
    return [
        ("zxing-cpp", ZxingDecoder(second_looks=False)),
        ("before: kiosk cascade zxing-cpp, pyzbar N=5", CascadeDecoder([ZxingDecoder(second_looks=False), PyzbarDecoder()], fallback_every=5)),
        (f"kiosk cascade zxing-cpp, pyzbar N={DEFAULT_FALLBACK_EVERY}", make_decoder(["zxing-cpp", "pyzbar"])),
        (f"kiosk cascade {', '.join(DEFAULT_ORDER)} N={DEFAULT_FALLBACK_EVERY}", make_decoder(DEFAULT_ORDER)),
    ]


def held_for(decoder: Decoder) -> int:
    """How many frames a still image must be shown for every part of `decoder` to have run on it."""
    return getattr(decoder, "fallback_every", None) or 1


def measure(decoders: list[tuple[str, Decoder]], cases: list[Case], repeat: int) -> list[Outcome]:
    """Fastest of `repeat` runs per image, since noise on a shared machine only ever adds time.
    The decoders take turns on each image, so a busy spell slows them all alike; one cascade sees
    all the images in turn, as the kiosk's sees one person after another."""
    import numpy as np

    for _, decoder in decoders:
        decoder.decode(np.full((64, 64), 255, dtype=np.uint8))  # load the library outside the timing
    outcomes = [Outcome(label, held_for(decoder)) for label, decoder in decoders]
    for case in cases:
        for (_, decoder), outcome in zip(decoders, outcomes):
            codes, seconds = _fastest(decoder, case.grey, repeat, outcome.frames)
            outcome.read[case.name] = any(normalise(code.text) == case.expected for code in codes)
            outcome.wrong[case.name] = bool(codes) and not outcome.read[case.name]
            outcome.ms[case.name] = seconds * 1000
    return outcomes


def _fastest(decoder: Decoder, grey, repeat: int, frames: int = 1) -> tuple[list, float]:
    """Every code found in the first of `repeat` windows of `frames` consecutive frames of the same
    image, and the fastest window's mean time per frame."""
    best, found = float("inf"), None
    for _ in range(repeat):
        window = []
        start = time.perf_counter()
        for _ in range(frames):
            window += decoder.decode(grey)
        best = min(best, (time.perf_counter() - start) / frames)
        found = window if found is None else found
    return found or [], best


def per_folder(cases: list[Case], outcomes: list[Outcome]) -> list[dict]:
    folders = sorted({case.folder for case in cases}, key=lambda f: _natural(Path(f)))
    rows = []
    for folder in folders:
        names = [case.name for case in cases if case.folder == folder]
        row = {"folder": folder, "total": len(names)}
        for outcome in outcomes:
            row[outcome.decoder] = sum(outcome.read[name] for name in names)
        rows.append(row)
    return rows


def disagreements(zxing: Outcome, zbar: Outcome) -> dict[str, list[str]]:
    """The images that make a cascade worth having (or not)."""
    return {
        f"only {zxing.decoder}": [n for n in zxing.read if zxing.read[n] and not zbar.read[n]],
        f"only {zbar.decoder}": [n for n in zbar.read if zbar.read[n] and not zxing.read[n]],
    }


# --- empty frames ------------------------------------------------------------------------------


def kiosk_frame(path: Path):
    """An image as a 640×480 grey camera frame: cropped to 4:3 around its centre, then resized."""
    import numpy as np
    from PIL import Image

    image = Image.fromarray(load_grey(path))
    width, height = KIOSK_FRAME
    if image.size != KIOSK_FRAME:
        scale = min(image.width / width, image.height / height)
        w, h = round(width * scale), round(height * scale)
        left, top = (image.width - w) // 2, (image.height - h) // 2
        image = image.resize(KIOSK_FRAME, Image.Resampling.BILINEAR, box=(left, top, left + w, top + h))
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))


def empty_sets() -> list[tuple[str, list[tuple[str, object]]]]:
    """(description, [(name, 640×480 grey frame)]) for each set of scenes without a code that is present."""
    sets = []
    scenes = sorted(EMPTY_SCENES.glob("*_empty.png"), key=_natural)
    if scenes:
        sets.append(("generated backdrops, sentinel/assets/scenes/*_empty.png", [(p.name, kiosk_frame(p)) for p in scenes]))
    faces = sorted(FACES.glob("*.jpg"), key=_natural)
    if faces:
        sets.append(("face photos, ../shared/data/faces/*.jpg cropped to 4:3", [(p.name, kiosk_frame(p)) for p in faces]))
    return sets


def measure_empty(decoders: list[tuple[str, Decoder]], frames: list[tuple[str, object]], runs: int) -> list[dict]:
    """Every decoder on every frame, `runs` times over; the decoders take turns on each frame, so a
    busy spell slows them all alike, in a shuffled order, since a decoder pays for what the one
    before it did to the CPU's caches (pyzbar evicts more than zxing-cpp). Frames follow each other as a camera's
    would, so a decoder that keeps state between frames (the cascade's every-Nth-frame fallback)
    is timed in its steady state; its per-frame times are then a mix of cheap and expensive
    frames, and the mean, not the median, is what it costs on average."""
    for _, decoder in decoders:
        decoder.decode(frames[0][1])  # load the library outside the timing
    times: list[list[float]] = [[] for _ in decoders]
    found = [0 for _ in decoders]
    order, shuffle = list(range(len(decoders))), random.Random(0).shuffle
    for _ in range(runs):
        for _, grey in frames:
            shuffle(order)
            for i in order:
                decoder = decoders[i][1]
                start = time.perf_counter()
                codes = decoder.decode(grey)
                times[i].append((time.perf_counter() - start) * 1000)
                found[i] += bool(codes)
    rows = []
    for (label, _), ms, hits in zip(decoders, times, found):
        rows.append(
            {
                "decoder": label,
                "frames": len(ms),
                "frames_with_codes": hits,
                "median_ms": round(statistics.median(ms), 3),
                "mean_ms": round(statistics.fmean(ms), 3),
                "p95_ms": round(sorted(ms)[int(0.95 * (len(ms) - 1))], 3),
            }
        )
    return rows


def run_empty(runs: int, decoders=None) -> list[dict]:
    decoders = decoders or compared
    report = []
    for description, frames in empty_sets():
        report.append(
            {
                "set": description,
                "images": [name for name, _ in frames],
                "runs": runs,
                "decoders": measure_empty(decoders(), frames, runs),
            }
        )
    return report


# --- labelled photos: BoofCV's qrcodes_v3 (corners, no text) -----------------------------------

LABELLED_SIZES = (None, 640)  # as shipped (longer side <= 1280 px), and scaled to the lores stream's 640 px


@dataclass
class Photo:
    name: str  # e.g. glare/image003.jpg
    category: str
    grey: object  # np.ndarray
    quads: list  # [[(x, y) * 4], ...] in this grey frame's pixels
    detail: object = None  # the photo as shipped where `grey` is scaled down: the camera's main stream


def is_labelled(folder: Path) -> bool:
    """A BoofCV-style folder: `<category>/imageNNN.jpg` beside `imageNNN.txt` that starts with SETS."""
    for txt in folder.glob("*/*.txt"):
        return txt.read_text(encoding="utf-8", errors="replace").lstrip().startswith("SETS")
    return False


def load_photos(folder: Path, longest: int | None, categories: list[str] | None = None) -> list[Photo]:
    """Every labelled photo, scaled (area-averaged, as a camera's ISP scales its lores stream) so
    its longer side is `longest` px, labels scaled alike; None keeps it as shipped."""
    import numpy as np
    from PIL import Image

    photos = []
    for image in sorted(folder.glob("*/*.jpg"), key=_natural):
        category = image.parent.name
        if categories and category not in categories:
            continue
        quads = []
        for line in image.with_suffix(".txt").read_text(encoding="utf-8").splitlines():
            numbers = line.split()
            if len(numbers) == 8 and not line.startswith("SETS"):
                values = [float(v) for v in numbers]
                quads.append([(values[i], values[i + 1]) for i in range(0, 8, 2)])
        grey = load_grey(image)
        detail = None
        if longest is not None and max(grey.shape) > longest:
            detail = grey
            scale = longest / max(grey.shape)
            size = (max(1, round(grey.shape[1] * scale)), max(1, round(grey.shape[0] * scale)))
            grey = np.ascontiguousarray(np.asarray(Image.fromarray(grey).resize(size, Image.Resampling.BOX)))
            quads = [[(x * scale, y * scale) for x, y in quad] for quad in quads]
        photos.append(Photo(image.relative_to(folder).as_posix(), category, grey, quads, detail))
    return photos


def matched(codes: list, quads: list) -> int:
    """Labelled codes read: a code counts for the first unmatched label whose quadrilateral holds
    the centre of its corners, each label and each code at most once."""
    taken = [False] * len(quads)
    for code in codes:
        middle = centre(code.corners)
        for i, quad in enumerate(quads):
            if not taken[i] and inside(middle, quad):
                taken[i] = True
                break
    return sum(taken)


def measure_labelled(decoders: list[tuple[str, Decoder]], photos: list[Photo], repeat: int) -> list[dict]:
    """Per decoder: labels read per photo and the fastest of `repeat` decode times; the decoders
    take turns on each photo, so a busy spell slows them all alike. Each photo is one frame."""
    import numpy as np

    for _, decoder in decoders:
        decoder.decode(np.full((64, 64), 255, dtype=np.uint8))
    rows = [{"decoder": label, "read": {}, "ms": {}, "texts": {}} for label, _ in decoders]
    for photo in photos:
        for (_, decoder), row in zip(decoders, rows):
            if isinstance(decoder, WithDetail):
                decoder.detail = photo.detail
            codes, seconds = _fastest(decoder, photo.grey, repeat)
            row["read"][photo.name] = matched(codes, photo.quads)
            row["ms"][photo.name] = seconds * 1000
            row["texts"][photo.name] = sorted({code.text for code in codes})
    return rows


def labelled_summary(photos: list[Photo], rows: list[dict]) -> dict:
    categories = sorted({p.category for p in photos})
    labels = {c: sum(len(p.quads) for p in photos if p.category == c) for c in categories}
    base_ms = statistics.fmean(rows[0]["ms"].values())
    out = {"categories": categories, "labels": labels, "photos": len(photos), "decoders": []}
    for row in rows:
        per = {c: sum(row["read"][p.name] for p in photos if p.category == c) for c in categories}
        shares = [per[c] / labels[c] for c in categories if labels[c]]
        mean_ms = statistics.fmean(row["ms"].values())
        out["decoders"].append(
            {
                "decoder": row["decoder"],
                "per_category": per,
                "read": sum(per.values()),
                "total": sum(labels.values()),
                "category_average_pct": round(100 * statistics.fmean(shares), 1),
                "mean_ms": round(mean_ms, 2),
                "median_ms": round(statistics.median(row["ms"].values()), 2),
                "time_ratio": round(mean_ms / base_ms, 2) if base_ms else None,
            }
        )
    return out


def run_labelled(folder: Path, repeat: int, categories: list[str] | None, decoders) -> list[dict]:
    report = []
    for longest in LABELLED_SIZES:
        photos = load_photos(folder, longest, categories)
        if not photos:
            raise SystemExit(f"no labelled photos under {folder}")
        rows = measure_labelled(decoders(), photos, repeat)
        summary = labelled_summary(photos, rows)
        summary["size"] = "as shipped" if longest is None else f"longer side {longest} px"
        report.append(summary)
    return report


def labelled_markdown(report: list[dict]) -> list[str]:
    lines = []
    for size in report:
        names = [d["decoder"] for d in size["decoders"]]
        lines += [
            f"{size['photos']} photos, {size['size']}: labelled codes read per category "
            "(centre of a decoded code's corners inside its labelled quadrilateral, one to one).",
            "",
            "| category | codes | " + " | ".join(names) + " |",
            "|---|---:|" + "---:|" * len(names),
        ]
        for c in size["categories"]:
            lines.append(f"| {c} | {size['labels'][c]} | " + " | ".join(str(d["per_category"][c]) for d in size["decoders"]) + " |")
        lines.append("| **category average** | | " + " | ".join(f"**{d['category_average_pct']:.1f} %**" for d in size["decoders"]) + " |")
        lines.append("| codes read | " + str(size["decoders"][0]["total"]) + " | " + " | ".join(str(d["read"]) for d in size["decoders"]) + " |")
        lines.append("| mean ms per photo | | " + " | ".join(f"{d['mean_ms']:.1f}" for d in size["decoders"]) + " |")
        lines.append("| ÷ zxing-cpp's time | | " + " | ".join(f"{d['time_ratio']:.2f}×" for d in size["decoders"]) + " |")
        lines.append("| median ms per photo | | " + " | ".join(f"{d['median_ms']:.1f}" for d in size["decoders"]) + " |")
        lines.append("")
    return lines


# --- report ------------------------------------------------------------------------------------


def run(folder: Path, repeat: int) -> dict:
    cases, skipped = load_cases(folder)
    if not cases:
        raise SystemExit(f"no images with expected text under {folder}")
    outcomes = measure(compared(), cases, repeat)
    zxing, zbar = outcomes[0], outcomes[1]
    either = sum(zxing.read[n] or zbar.read[n] for n in zxing.read)
    only_zbar = disagreements(zxing, zbar)[f"only {zbar.decoder}"]
    return {
        "folder": str(folder.resolve()),
        "images": len(cases),
        "repeat": repeat,
        "skipped": skipped,
        "decoders": [outcome.summary() for outcome in outcomes],
        "either_read": either,
        "per_folder": per_folder(cases, outcomes),
        "disagreements": disagreements(zxing, zbar),
        "cascade_reads_only_pyzbar": {o.decoder: [n for n in only_zbar if o.read[n]] for o in outcomes[2:]},
    }


def markdown(report: dict) -> str:
    lines = [
        f"{report['images']} images, decode time = fastest of {report['repeat']} runs per image "
        "(mean per frame over the frames an image is held for).",
        "",
        "| decoder | frames held | read / total | rate | wrong text | mean ms | median ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for d in report["decoders"]:
        lines.append(
            f"| {d['decoder']} | {d['frames']} | {d['read']} / {d['total']} | {d['rate_pct']:.1f} % | {d['wrong_text']} "
            f"| {d['mean_ms']:.2f} | {d['median_ms']:.2f} |"
        )
    lines += [
        "",
        "wrong text: a code was found but its text is not the expected one (a misread, or a wrong charset guess).",
        f"Read by zxing-cpp or pyzbar (an upper bound for the cascade): {report['either_read']}.",
        "",
    ]
    names = [d["decoder"] for d in report["decoders"]]
    lines += ["| folder | images | " + " | ".join(names) + " |", "|---|---:|" + "---:|" * len(names)]
    for row in report["per_folder"]:
        lines.append(f"| {row['folder']} | {row['total']} | " + " | ".join(str(row[n]) for n in names) + " |")
    lines.append("")
    for label, images in report["disagreements"].items():
        lines.append(f"Read {label} ({len(images)}): {', '.join(images) or '–'}")
    for label, images in report["cascade_reads_only_pyzbar"].items():
        lines.append(f"Of those only pyzbar reads, {label} reads ({len(images)}): {', '.join(images) or '–'}")
    if report["skipped"]:
        lines += ["", f"Skipped ({len(report['skipped'])}): " + "; ".join(report["skipped"])]
    for empty in report.get("empty", []):
        lines += ["", *empty_markdown(empty)]
    return "\n".join(lines)


def empty_markdown(empty: dict) -> list[str]:
    rows = empty["decoders"]
    zxing = next((r for r in rows if r["decoder"] == "zxing-cpp"), rows[0])
    lines = [
        f"Empty 640×480 frames: {empty['set']} ({len(empty['images'])} images × {empty['runs']} runs "
        f"= {rows[0]['frames']} frames per decoder).",
        "",
        "| decoder | median ms | mean ms | p95 ms | mean ÷ zxing-cpp's | frames with a code |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = r["mean_ms"] / zxing["mean_ms"] if zxing["mean_ms"] else float("nan")
        lines.append(
            f"| {r['decoder']} | {r['median_ms']:.2f} | {r['mean_ms']:.2f} | {r['p95_ms']:.2f} | {ratio:.1f}× "
            f"| {r['frames_with_codes']} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_FOLDER, help="data folder (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per image; the fastest counts (default: %(default)s)")
    parser.add_argument(
        "--empty-runs", type=int, default=50, help="passes over the empty frames; 0 skips that measurement (default: %(default)s)"
    )
    parser.add_argument("--categories", help="labelled folders only: comma-separated categories to measure (default: all)")
    parser.add_argument("--json", action="store_true", help="print the full report as JSON instead of markdown")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        parser.error(f"{args.folder} is not a folder (the shared data set is not present?)")
    if is_labelled(args.folder):
        categories = args.categories.split(",") if args.categories else None
        labelled = run_labelled(args.folder, max(1, args.repeat), categories, labelled_compared)
        empty = run_empty(args.empty_runs, empty_compared) if args.empty_runs > 0 else []
        if args.json:
            print(json.dumps({"folder": str(args.folder.resolve()), "labelled": labelled, "empty": empty}, ensure_ascii=False, indent=2))
        else:
            lines = labelled_markdown(labelled)
            for e in empty:
                lines += [*empty_markdown(e), ""]
            print("\n".join(lines))
        return 0
    report = run(args.folder, max(1, args.repeat))
    if args.empty_runs > 0:
        report["empty"] = run_empty(args.empty_runs)
    print(json.dumps(report, ensure_ascii=False, indent=2) if args.json else markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())

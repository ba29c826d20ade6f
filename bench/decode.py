"""How many real QR photos each decoder reads, and how long it takes.

The kiosk's decoder order (zxing-cpp, then pyzbar) rests on numbers like these; rerun this after
changing a decoder, its options or its version, and on the Pi itself, whose CPU is what the
scan-to-gate budget is spent on. Only decoding is timed: images are loaded and converted to grey
first, as the camera's Y plane would be.

    .venv/bin/python bench/decode.py [FOLDER] [--repeat N] [--json]

FOLDER holds `N.png|jpg|gif` with the expected text in `N.txt`, in any depth of subfolders
(default: ../shared/data/qr/zxing-blackbox from the repository root).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sentinel.decoding import (  # noqa: E402  (the repository is put on the path above)
    DEFAULT_ORDER,
    Decoder,
    ImageError,
    PyzbarDecoder,
    ZxingDecoder,
    load_grey,
    make_decoder,
)

DEFAULT_FOLDER = REPO / ".." / "shared" / "data" / "qr" / "zxing-blackbox"
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
    read: dict[str, bool] = field(default_factory=dict)  # case name → read correctly
    wrong: dict[str, bool] = field(default_factory=dict)  # case name → found codes, none with the expected text
    ms: dict[str, float] = field(default_factory=dict)  # case name → decode time

    def summary(self) -> dict:
        times = list(self.ms.values())
        read = sum(self.read.values())
        return {
            "decoder": self.decoder,
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


def measure(decoders: list[Decoder], cases: list[Case], repeat: int) -> list[Outcome]:
    """Fastest of `repeat` runs per image, since noise on a shared machine only ever adds time.
    The decoders take turns on each image, so a busy spell slows them all alike."""
    import numpy as np

    for decoder in decoders:
        decoder.decode(np.full((64, 64), 255, dtype=np.uint8))  # load the library outside the timing
    outcomes = [Outcome(decoder.name) for decoder in decoders]
    for case in cases:
        for decoder, outcome in zip(decoders, outcomes):
            codes, seconds = _fastest(decoder, case.grey, repeat)
            outcome.read[case.name] = any(normalise(code.text) == case.expected for code in codes)
            outcome.wrong[case.name] = bool(codes) and not outcome.read[case.name]
            outcome.ms[case.name] = seconds * 1000
    return outcomes


def _fastest(decoder: Decoder, grey, repeat: int) -> tuple[list, float]:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        codes = decoder.decode(grey)
        best = min(best, time.perf_counter() - start)
    return codes, best


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


def run(folder: Path, repeat: int) -> dict:
    cases, skipped = load_cases(folder)
    if not cases:
        raise SystemExit(f"no images with expected text under {folder}")
    outcomes = measure([ZxingDecoder(), PyzbarDecoder(), make_decoder(DEFAULT_ORDER)], cases, repeat)
    zxing, zbar = outcomes[0], outcomes[1]
    either = sum(zxing.read[n] or zbar.read[n] for n in zxing.read)
    return {
        "folder": str(folder.resolve()),
        "images": len(cases),
        "repeat": repeat,
        "skipped": skipped,
        "decoders": [outcome.summary() for outcome in outcomes],
        "either_read": either,
        "per_folder": per_folder(cases, outcomes),
        "disagreements": disagreements(zxing, zbar),
    }


def markdown(report: dict) -> str:
    lines = [
        f"{report['images']} images, decode time = fastest of {report['repeat']} runs per image.",
        "",
        "| decoder | read / total | rate | wrong text | mean ms | median ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for d in report["decoders"]:
        lines.append(
            f"| {d['decoder']} | {d['read']} / {d['total']} | {d['rate_pct']:.1f} % | {d['wrong_text']} "
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
    if report["skipped"]:
        lines += ["", f"Skipped ({len(report['skipped'])}): " + "; ".join(report["skipped"])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_FOLDER, help="data folder (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per image; the fastest counts (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the full report as JSON instead of markdown")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        parser.error(f"{args.folder} is not a folder (the shared data set is not present?)")
    report = run(args.folder, max(1, args.repeat))
    print(json.dumps(report, ensure_ascii=False, indent=2) if args.json else markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())

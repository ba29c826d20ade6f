"""The demo's camera scenes: what the kiosk demo shows and what pipeline tests replay."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import sentinel
from hardware.camera import ReplaySource
from sentinel.demo_data import DEMO_NOT_FOUND_PERSON, DEMO_UNKNOWN_PAYLOAD, demo_person

zxingcpp = pytest.importorskip("zxingcpp")

SCENES = Path(sentinel.__file__).parent / "assets" / "scenes"
GENERATOR = Path(__file__).resolve().parents[1] / "tools" / "make_demo_scenes.py"
EXPECTED = {
    "01_empty.png": None,
    "02_green.png": demo_person("green").payload,
    "03_empty.png": None,
    "04_yellow.png": demo_person("yellow").payload,
    "05_empty.png": None,
    "06_red.png": demo_person("red").payload,
    "07_empty.png": None,
    "08_unknown.png": DEMO_UNKNOWN_PAYLOAD,
    "09_empty.png": None,
    "10_stale_nat.png": demo_person("stale_nat").payload,
    "14_empty.png": None,
    "15_not_found.png": DEMO_NOT_FOUND_PERSON.payload,
}


def _manifest(folder):
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))


def _decode(path):
    grey = np.asarray(Image.open(path).convert("L"))  # the plane the kiosk's decoders get
    return zxingcpp.read_barcodes(grey)


def test_the_manifest_lists_exactly_the_scene_files_with_their_payloads():
    assert _manifest(SCENES) == EXPECTED
    assert list(_manifest(SCENES)) == sorted(p.name for p in SCENES.glob("*.png"))


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_scene_decodes_to_its_payload_and_nothing_else(name):
    assert [code.text for code in _decode(SCENES / name)] == ([] if EXPECTED[name] is None else [EXPECTED[name]])


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_scene_is_a_small_vga_camera_frame(name):
    path = SCENES / name
    with Image.open(path) as image:
        assert (image.size, image.mode) == ((640, 480), "RGB")
    assert path.stat().st_size < 300_000


@pytest.mark.parametrize(
    "name, looks",
    [
        ("02_green.png", lambda r, g, b: g - max(r, b) > 40),
        ("04_yellow.png", lambda r, g, b: r - b > 80 and g - b > 50),
        ("06_red.png", lambda r, g, b: r - max(g, b) > 80),
        ("10_stale_nat.png", lambda r, g, b: g - max(r, b) > 40),
        ("08_unknown.png", lambda r, g, b: b - max(r, g) > 30),  # the mall's purple, not a code colour
    ],
)
def test_the_code_on_the_phone_is_drawn_in_its_colour(name, looks):
    path = SCENES / name
    (code,) = _decode(path)
    corners = [code.position.top_left, code.position.top_right, code.position.bottom_right, code.position.bottom_left]
    xs, ys = [p.x for p in corners], [p.y for p in corners]
    box = (slice(min(ys), max(ys)), slice(min(xs), max(xs)))
    grey = np.asarray(Image.open(path).convert("L"))[box].astype(int)
    dark = grey < (grey.min() + grey.max()) / 2
    r, g, b = np.asarray(Image.open(path).convert("RGB"))[box][dark].mean(axis=0)
    assert looks(r, g, b), (r, g, b)


def test_replaying_the_scenes_folder_shows_the_scenes_in_order():
    with ReplaySource(SCENES, frames_per_image=2, realtime=False) as source:
        frames = []
        while (frame := source.read(0)) is not None:
            frames.append(frame)
    assert [f.origin for f in frames[::2]] == list(EXPECTED)
    assert all(f.grey.shape == (480, 640) for f in frames)


@pytest.mark.slow
def test_the_generator_recreates_scenes_that_decode_to_the_same_payloads(tmp_path):
    done = subprocess.run(
        [sys.executable, str(GENERATOR), "--out", str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert _manifest(tmp_path) == EXPECTED
    for name, payload in EXPECTED.items():
        assert [code.text for code in _decode(tmp_path / name)] == ([] if payload is None else [payload])


def test_the_generators_self_check_catches_a_scene_that_shows_the_wrong_code(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("make_demo_scenes", GENERATOR)
    generator = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "make_demo_scenes", generator)  # dataclasses look their module up
    spec.loader.exec_module(generator)
    for path in SCENES.glob("*.png"):
        shutil.copy(path, tmp_path / path.name)
    assert generator.check(tmp_path, EXPECTED) == []
    shutil.copy(SCENES / "02_green.png", tmp_path / "04_yellow.png")
    shutil.copy(SCENES / "06_red.png", tmp_path / "05_empty.png")
    problems = generator.check(tmp_path, EXPECTED)
    assert [p.split(":")[0] for p in problems] == ["04_yellow.png", "05_empty.png"]

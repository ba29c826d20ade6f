"""`sentinel faces enroll|list|remove|match`: what a technician types and reads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import sentinel
from sentinel.faces import INSTALL_HINT, available

pytestmark = pytest.mark.slow  # runs whole programs: left out of the quick loop (README)

ASSETS = Path(sentinel.__file__).parent / "assets"
needs_engine = pytest.mark.skipif(not available(), reason=f"face engine not installed: {INSTALL_HINT}")


def faces(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sentinel", "faces", *args, "--config", str(config)], capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "sentinel.toml"
    path.write_text(f'[device]\nstate_dir = "{tmp_path / "state"}"\n[faces]\nenabled = true\n', encoding="utf-8")
    return path


def test_list_and_remove_on_an_empty_device(config):
    listed = faces(config, "list")
    assert listed.returncode == 0 and "nobody enrolled" in listed.stderr + listed.stdout
    removed = faces(config, "remove", "p-nobody")
    assert removed.returncode == 1 and "Traceback" not in removed.stderr


@needs_engine
def test_enrol_list_match_remove(config, tmp_path, shared_data):
    photos = shared_data / "faces"
    done = faces(config, "enroll", "--person-id", "p-obama", "--name", "奥巴马", str(photos / "obama.jpg"))
    assert done.returncode == 0, done.stderr
    assert "enrolled p-obama (奥*马)" in done.stdout
    assert (tmp_path / "state" / "faces" / "gallery.sqlite3").exists()

    (person,) = [json.loads(line) for line in faces(config, "list", "--json").stdout.splitlines()]
    assert (person["person_id"], person["face_id"], person["name_masked"], person["encodings"], person["images"]) == (
        "p-obama", "p-obama", "奥*马", 1, 0
    )  # fmt: skip
    table = faces(config, "list").stdout
    assert "p-obama" in table and "奥*马" in table and "奥巴马" not in table

    images = [photos / n for n in ("obama2.jpg", "obama3.jpg", "obama-480p.jpg", "biden.jpg", "two_people.jpg")]
    matched = faces(config, "match", *map(str, images), str(tmp_path / "missing.jpg"))
    assert matched.returncode == 1  # one file could not be read; the others were still matched
    lines = [json.loads(line) for line in matched.stdout.splitlines()]
    assert [(x["image"], x.get("result"), x.get("person_id")) for x in lines] == [
        (str(images[0]), "match", "p-obama"),
        (str(images[1]), "match", "p-obama"),
        (str(images[2]), "match", "p-obama"),
        (str(images[3]), "unknown", None),
        (str(images[4]), "several", None),
        (str(tmp_path / "missing.jpg"), None, None),
    ]
    assert all(0 < x["distance"] < 0.45 for x in lines[:3]) and lines[3]["distance"] > 0.7
    assert set(lines[0]["box"]) == {"left", "top", "width", "height"}
    assert lines[4]["faces"] == 2 and len(lines[4]["boxes"]) == 2
    assert lines[5]["error"] == "no such file"

    removed = faces(config, "remove", "p-obama")
    assert removed.returncode == 0 and "removed 1 encodings of p-obama" in removed.stdout
    assert faces(config, "list", "--json").stdout == ""


@needs_engine
def test_a_photo_without_a_face_is_refused_with_a_clear_message(config):
    empty = ASSETS / "scenes" / "01_empty.png"
    done = faces(config, "enroll", "--person-id", "p1", "--name", "王小明", str(empty))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "sentinel faces enroll: refused, nothing enrolled:",
        f"  {empty}: no face found; use a sharp, well-lit photo of one person facing the camera, the face at least 80 px wide",
    ]
    assert faces(config, "list", "--json").stdout == ""


@needs_engine
def test_several_faces_are_refused(config, shared_data):
    two = shared_data / "faces" / "two_people.jpg"
    done = faces(config, "enroll", "--person-id", "p1", "--name", "王小明", str(two))
    assert done.returncode == 1
    assert f"{two}: 2 faces found; enrolment needs a photo of exactly one person" in done.stderr


@needs_engine
def test_keep_image_keeps_a_face_crop_and_remove_takes_it(config, tmp_path):
    portrait = ASSETS / "faces" / "astronaut.jpg"
    done = faces(config, "enroll", "--person-id", "p1", "--name", "林秀英", "--face-id", "face-1", "--keep-image", str(portrait))
    assert done.returncode == 0, done.stderr
    images = tmp_path / "state" / "faces" / "images"
    assert len(list(images.iterdir())) == 1
    (person,) = [json.loads(line) for line in faces(config, "list", "--json").stdout.splitlines()]
    assert (person["face_id"], person["images"]) == ("face-1", 1)
    faces(config, "remove", "p1")
    assert list(images.iterdir()) == []

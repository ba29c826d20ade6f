"""The real face engine (dlib, with face-recognition-models' files) on real photos: ../shared/data/faces
(obama.jpg enrolled; obama2, obama3 and obama-480p match it, biden does not, two_people asks for
one person at a time), and the shipped demo portrait and face scenes.

Photos are turned into what a kiosk camera delivers: a 4:3 view around the person, 640×480, grey
plane always, colour only in the tests that say so. Skipped, with the install command as the
reason, where the face extra is not installed (./install.sh --dev installs it)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import sentinel
from sentinel.config import FacesConfig
from sentinel.faces import (
    INSTALL_HINT,
    FaceMatcher,
    Gallery,
    ObservationKind,
    available,
)
from sentinel.faces.engine import load_rgb
from sentinel.faces.enrol import EnrolmentRefused, enrol_images, read_enrolment_image
from sentinel.frames import Frame
from tests.face_photos import camera_rgb
from tests.helpers import FakeClock

pytestmark = [
    pytest.mark.skipif(not available(), reason=f"face engine not installed: {INSTALL_HINT}"),
    pytest.mark.slow,  # dlib on real photos: seconds of CPU, left out of the quick loop
]

ASSETS = Path(sentinel.__file__).parent / "assets"
SAME = ["obama2.jpg", "obama3.jpg", "obama-480p.jpg"]


def camera_frame(path: Path, colour=False, size=(640, 480), sequence=0) -> Frame:
    rgb = camera_rgb(path, size)
    grey = np.asarray(Image.fromarray(rgb).convert("L"))
    return Frame(grey=grey, timestamp=sequence / 10, sequence=sequence, colour=rgb if colour else None)


@pytest.fixture(scope="module")
def engine():
    from sentinel.faces.engine import FaceEngine

    return FaceEngine()


@pytest.fixture(scope="module")
def faces_dir(shared_data):
    return shared_data / "faces"


@pytest.fixture
def obama_gallery(engine, faces_dir):
    with Gallery(None) as g:
        enrol_images(g, engine, "p-obama", "Barack Obama", [faces_dir / "obama.jpg"], face_id="face-obama")
        yield g


def observe(gallery, engine, path, colour=False, **config):
    # one still photo: liveness (tests/test_face_liveness.py) would rightly refuse it, so it is off here
    m = FaceMatcher(gallery, FacesConfig(enabled=True, **{"liveness": "off", **config}), FakeClock(), engine=engine)
    return m.observe(camera_frame(path, colour))


@pytest.mark.parametrize("colour", [False, True], ids=["grey", "colour"])
@pytest.mark.parametrize("name", SAME)
def test_other_photos_of_the_enrolled_person_match(obama_gallery, engine, faces_dir, name, colour):
    seen = observe(obama_gallery, engine, faces_dir / name, colour)
    assert seen.kind is ObservationKind.MATCH, seen
    assert seen.person_id == "p-obama" and seen.credential.value == "face-obama"
    assert seen.name_masked == "B**********a"
    assert seen.distance < FacesConfig().tolerance - 0.05  # with margin: measured 0.07-0.40


@pytest.mark.parametrize("colour", [False, True], ids=["grey", "colour"])
def test_another_person_does_not_match(obama_gallery, engine, faces_dir, colour):
    seen = observe(obama_gallery, engine, faces_dir / "biden.jpg", colour)
    assert seen.kind is ObservationKind.UNKNOWN and seen.detail == "not_enrolled"
    assert seen.credential is None
    assert seen.distance > FacesConfig().tolerance + 0.2  # measured 0.78-0.85


def test_two_people_get_the_one_at_a_time_prompt(obama_gallery, engine, faces_dir):
    seen = observe(obama_gallery, engine, faces_dir / "two_people.jpg")
    assert seen.kind is ObservationKind.SEVERAL and len(seen.boxes) == 2
    assert all(b.width >= 80 for b in seen.boxes)


def test_a_face_under_the_smallest_size_is_ignored(obama_gallery, engine, faces_dir):
    """obama2.jpg seen from three times as far: the face is about 90 px wide, the site wants 120."""
    far = Image.fromarray(camera_rgb(faces_dir / "obama2.jpg")).convert("L").reduce(3)
    canvas = np.full((480, 640), 150, np.uint8)
    canvas[100:100 + far.height, 200:200 + far.width] = np.asarray(far)
    frame = Frame(grey=canvas, timestamp=0, sequence=0)
    m = FaceMatcher(obama_gallery, FacesConfig(enabled=True, min_face_px=120), FakeClock(), engine=engine)
    seen = m.observe(frame)
    assert seen.kind is ObservationKind.TOO_SMALL and seen.box.width < 120 and seen.encode_s == 0
    # a site that wants faces from 80 px finds and identifies the same face
    near = FaceMatcher(obama_gallery, FacesConfig(enabled=True, min_face_px=80, liveness="off"), FakeClock(), engine=engine)
    assert near.observe(frame).kind is ObservationKind.MATCH


def test_distances_same_and_different_people(engine, faces_dir):
    """The figures the default tolerance rests on (docs/benchmarks.md, ## Faces)."""
    _, _, reference = read_enrolment_image(engine, faces_dir / "obama.jpg")
    with Gallery(None) as g:
        g.enrol("p-obama", "x", [reference])
        same, different = [], []
        for name in [*SAME, "obama_small.jpg", "obama_partial_face.jpg", "obama_partial_face2.jpg", "biden.jpg"]:
            for colour in (False, True):
                seen = observe(g, engine, faces_dir / name, colour, tolerance=0.8)
                (different if name == "biden.jpg" else same).append(seen.distance)
    assert max(same) < 0.45 < 0.5 < 0.7 < min(different)


def test_enrolment_refuses_a_photo_without_a_face(engine):
    empty = ASSETS / "scenes" / "01_empty.png"
    with Gallery(None) as g:
        with pytest.raises(EnrolmentRefused) as refused:
            enrol_images(g, engine, "p1", "王小明", [empty])
        assert len(g) == 0
    (problem,) = refused.value.problems
    assert problem.startswith(f"{empty}: no face found")


def test_enrolment_refuses_several_faces_and_says_which_photo(engine, faces_dir):
    with Gallery(None) as g:
        with pytest.raises(EnrolmentRefused) as refused:
            enrol_images(g, engine, "p1", "x", [faces_dir / "obama.jpg", faces_dir / "two_people.jpg"])
        assert len(g) == 0  # all or nothing
    assert refused.value.problems == [
        f"{faces_dir / 'two_people.jpg'}: 2 faces found; enrolment needs a photo of exactly one person (crop the others out)"
    ]


def test_enrolment_refuses_a_look_alike_and_photos_of_two_people(engine, faces_dir, obama_gallery):
    with pytest.raises(EnrolmentRefused, match="looks like p-obama"):
        enrol_images(obama_gallery, engine, "p-other", "x", [faces_dir / "obama2.jpg"])
    enrol_images(obama_gallery, engine, "p-other", "x", [faces_dir / "obama2.jpg"], allow_similar=True)
    with Gallery(None) as g, pytest.raises(EnrolmentRefused, match="do not look like the same person"):
        enrol_images(g, engine, "p1", "x", [faces_dir / "obama.jpg", faces_dir / "biden.jpg"])


def test_enrolment_keeps_no_image_unless_asked(engine, faces_dir, tmp_path):
    path = tmp_path / "faces" / "gallery.sqlite3"
    with Gallery(path) as g:
        enrol_images(g, engine, "p1", "x", [faces_dir / "obama.jpg"])
        assert not g.images_dir.exists()
        enrol_images(g, engine, "p2", "y", [faces_dir / "biden.jpg"], keep_images=True)
        (kept,) = g.images_dir.iterdir()
        with Image.open(kept) as crop:
            assert crop.width < 700  # the face with a margin, not the 970×2204 photo
        g.remove("p2")
        assert list(g.images_dir.iterdir()) == []


# --- the shipped demo portrait and scenes (no ../shared needed) -----------------------------


def test_the_shipped_encoding_is_the_portraits(engine):
    shipped = json.loads((ASSETS / "faces" / "astronaut.json").read_text())
    _, box, encoding = read_enrolment_image(engine, ASSETS / "faces" / "astronaut.jpg")
    assert box.as_dict() == shipped["box"]
    assert np.linalg.norm(np.asarray(shipped["encoding"]) - encoding) < 0.02  # other dlib builds round differently


@pytest.mark.parametrize("colour", [False, True], ids=["grey", "colour"])
def test_the_face_scenes_show_what_their_manifest_says(engine, colour):
    folder = ASSETS / "face_scenes"
    manifest = json.loads((folder / "manifest.json").read_text())
    shipped = json.loads((ASSETS / "faces" / "astronaut.json").read_text())
    with Gallery(None) as g:
        g.enrol("demo-resident", "林秀英", [shipped["encoding"]])
        m = FaceMatcher(g, FacesConfig(enabled=True), engine=engine)
        for name, want in manifest.items():
            rgb = load_rgb(folder / name)
            grey = np.asarray(Image.fromarray(rgb).convert("L"))
            seen = m.analyse(grey, rgb if colour else None)
            assert seen.kind.value == want["expect"], name
            if seen.kind is ObservationKind.MATCH:
                assert seen.distance < 0.3


def test_the_qr_scenes_show_no_face(engine):
    m = FaceMatcher(Gallery(None), FacesConfig(enabled=True), engine=engine)
    for path in sorted((ASSETS / "scenes").glob("*.png")):
        assert m.analyse(np.asarray(Image.open(path).convert("L"))).kind is ObservationKind.NO_FACE, path.name


@pytest.mark.slow
def test_the_generator_recreates_the_scenes_and_the_encoding(tmp_path):
    import subprocess
    import sys

    tool = Path(__file__).resolve().parents[1] / "tools" / "make_face_scenes.py"
    done = subprocess.run(
        [sys.executable, str(tool), "--out", str(tmp_path / "scenes"), "--encoding-out", str(tmp_path / "enc.json")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "scenes" / "manifest.json").read_text()) == json.loads((ASSETS / "face_scenes" / "manifest.json").read_text())
    made, shipped = (json.loads(p.read_text()) for p in (tmp_path / "enc.json", ASSETS / "faces" / "astronaut.json"))
    assert np.linalg.norm(np.asarray(made["encoding"]) - np.asarray(shipped["encoding"])) < 0.02


def test_open_faces_loads_the_engine_before_the_first_face(tmp_path):
    from sentinel.config import SentinelConfig
    from sentinel.faces.kiosk import open_faces

    config = SentinelConfig.model_validate({"device": {"state_dir": str(tmp_path)}, "faces": {"enabled": True}})
    faces = open_faces(config)  # no client: matched as it is, never synced
    try:
        assert faces.sync is None and faces.matcher._engine is not None
        rgb = load_rgb(ASSETS / "face_scenes" / "12_face.png")
        grey = np.asarray(Image.fromarray(rgb).convert("L"))
        seen = faces.matcher.observe(Frame(grey=grey, timestamp=0, sequence=0))
        assert seen.kind is ObservationKind.UNKNOWN and seen.detail == "gallery_empty"
    finally:
        faces.close()


# --- only the models the engine uses (issue 18) ----------------------------------------------------


def _loaded_modules(code: str) -> list[str]:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_the_engine_loads_dlib_models_without_face_recognition():
    """face_recognition (and pkg_resources, which face_recognition_models imports) load all four
    models at import, the 89 MB 68-point predictor among them; the engine loads what it uses."""
    code = (
        "import sys\n"
        "from sentinel.faces.engine import FaceEngine\n"
        "e = FaceEngine()\n"
        "print(*e.loaded, *(m for m in ('face_recognition', 'pkg_resources', 'face_recognition_models') if m in sys.modules))\n"
    )
    assert _loaded_modules(code) == ["five_point", "encoder"]


def test_the_68_point_model_is_loaded_where_liveness_reads_landmarks(tmp_path):
    from sentinel.config import SentinelConfig
    from sentinel.faces.kiosk import open_faces

    for liveness, expected in (("off", ("five_point", "encoder")), ("blink_or_move", ("five_point", "encoder", "sixty_eight_point"))):
        config = SentinelConfig.model_validate({"device": {"state_dir": str(tmp_path / liveness)}, "faces": {"enabled": True, "liveness": liveness}})
        faces = open_faces(config)
        try:
            assert faces.matcher.engine.loaded == expected
            assert faces.matcher.engine.encoder_backend == "numpy"  # the kiosk's encoder: sentinel/faces/encoder.py
        finally:
            faces.close()


def test_a_missing_model_file_is_engine_unavailable_with_the_install_hint(monkeypatch):
    from sentinel.faces import engine as engine_module

    monkeypatch.setitem(engine_module.MODEL_FILES, "encoder", "no_such_model.dat")
    with pytest.raises(engine_module.EngineUnavailable, match="no_such_model.dat.*pip install"):
        engine_module.FaceEngine()


def test_landmarks_come_out_as_the_liveness_check_reads_them(engine, faces_dir):
    from sentinel.faces.liveness import eye_aspect_ratio, inter_ocular

    rgb = load_rgb(faces_dir / "obama.jpg")
    (box,) = engine.detect(rgb, 1)
    (points,) = engine.landmarks(rgb, [box])
    assert points.shape == (72, 2)  # face_recognition's named parts, lips with their repeated corners
    assert 0.15 < eye_aspect_ratio(points) < 0.45 and inter_ocular(points) > 0.2 * box.width  # open eyes, two of them


def _dlib_descriptor(engine, rgb, box):
    """What dlib's own encoder gives for the face in `box` (the engine no longer loads it)."""
    import dlib

    from sentinel.faces.engine import model_path

    encoder = dlib.face_recognition_model_v1(str(model_path("encoder")))
    shape = engine._five_point(rgb, dlib.rectangle(box.left, box.top, box.right, box.bottom))
    return np.array(encoder.compute_face_descriptor(rgb, shape))


PORTRAITS = ["obama.jpg", *SAME, "obama_small.jpg", "obama_partial_face.jpg", "biden.jpg", "two_people.jpg"]


@pytest.mark.parametrize("name", PORTRAITS)
def test_the_numpy_encoder_gives_dlibs_numbers_to_half_precision(engine, faces_dir, name):
    """sentinel/faces/encoder.py runs dlib's network itself, its weights kept in half precision:
    the encodings galleries enrolled with dlib hold must come out the same to within what half
    precision moves them, for every face in the photo."""
    rgb = load_rgb(faces_dir / name)
    boxes = engine.detect(rgb, 1)
    assert boxes
    for box, mine in zip(boxes, engine.encode(rgb, boxes)):
        theirs = _dlib_descriptor(engine, rgb, box)
        assert mine.shape == (128,) and mine.dtype == np.float64
        assert np.abs(mine - theirs).max() < 3e-4, name  # the numbers are ±0.25 or so
        assert np.linalg.norm(mine - theirs) < 5e-4


def test_distances_between_faces_are_dlibs_far_inside_the_match_tolerance(engine, faces_dir):
    """What a match reads: the distance between two faces. Every pair of faces in the shared
    portraits (the same person and different people) is as far apart as with dlib's encoder, to
    within 1/200 of the ambiguity margin (measured: 8.7e-5; the tolerance is 0.4-0.6)."""
    from itertools import combinations

    from sentinel.faces.matcher import AMBIGUITY_MARGIN

    mine, theirs = [], []
    for name in PORTRAITS:
        rgb = load_rgb(faces_dir / name)
        boxes = engine.detect(rgb, 1)
        mine += engine.encode(rgb, boxes)
        theirs += [_dlib_descriptor(engine, rgb, box) for box in boxes]
    moved = [abs(np.linalg.norm(mine[i] - mine[j]) - np.linalg.norm(theirs[i] - theirs[j])) for i, j in combinations(range(len(mine)), 2)]
    assert len(moved) == 36 and max(moved) < AMBIGUITY_MARGIN / 200  # 9 faces


def test_a_model_file_the_numpy_encoder_does_not_know_falls_back_to_dlibs(monkeypatch, faces_dir, caplog):
    from sentinel.faces import encoder as encoder_module
    from sentinel.faces.engine import FaceEngine

    monkeypatch.setattr(encoder_module, "EXPECTED", ["input", "con"])
    with caplog.at_level("WARNING", logger="sentinel.faces"):
        slow = FaceEngine()
    assert "using dlib's own" in caplog.text and slow.encoder_backend == "dlib"
    rgb = load_rgb(faces_dir / "obama.jpg")
    (box,) = slow.detect(rgb, 1)
    (encoding,) = slow.encode(rgb, [box])
    assert np.abs(encoding - _dlib_descriptor(slow, rgb, box)).max() < 1e-12

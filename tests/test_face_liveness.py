"""A picture of an enrolled person is not the person: a matched face passes only after a blink
or a head movement (sentinel/faces/liveness.py), and otherwise gets a staff check, never a
credential that opens the gate.

Two halves: landmarks given through a stand-in engine (blinks, head turns, a flat picture moved
through perspective warps), run anywhere; and the real engine on real photos: the shipped demo
scene (the NASA portrait) held still, the same scene tilted and blurred frame after frame, and
two different photos of the same person (../shared/data/faces), which is a real change."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

import sentinel
from sentinel.config import FacesConfig
from sentinel.credentials import Credential, CredentialKind
from sentinel.faces import FaceMatcher, Gallery, ObservationKind, available
from sentinel.faces.liveness import LOST_AFTER_S, MOVE_RESIDUAL, Liveness, eye_aspect_ratio, plane_residual
from sentinel.frames import Frame
from tests.helpers import FakeClock
from tests.test_faces import BIG, A, FakeEngine, enc

ASSETS = Path(sentinel.__file__).parent / "assets"
STEP_S = 0.2  # the kiosk's camera as the matcher sees it while watching


# --- synthetic landmarks ------------------------------------------------------------------------


def eye(cx: float, cy: float, openness: float) -> list[tuple[float, float]]:
    """dlib's six eye points: outer corner, two on top, inner corner, two below."""
    h = 9 * openness
    return [(cx - 15, cy), (cx - 5, cy - h), (cx + 5, cy - h), (cx + 15, cy), (cx + 5, cy + h), (cx - 5, cy + h)]


def face(openness: float = 1.0, nose_dx: float = 0.0) -> np.ndarray:
    """68 points of a face about 140 px wide, in dlib's order; `nose_dx` moves the nose alone
    (what a head turning does to a nose in front of the face plane)."""
    rng = np.random.default_rng(7)
    chin = [(250 + 140 * t, 170 + 90 * np.sin(np.pi * t)) for t in np.linspace(0, 1, 17)]
    brows = [(270 + 45 * t + 55 * (i >= 5), 150 - 6 * np.sin(np.pi * t)) for i, t in enumerate(list(np.linspace(0, 1, 5)) * 2)]
    nose = [(320 + nose_dx, 160 + 10 * i) for i in range(4)] + [(305 + 7.5 * i + nose_dx, 202 + 3 * (i % 2)) for i in range(5)]
    eyes = eye(290, 165, openness) + eye(350, 165, openness)
    lips = [(295 + 50 * x, 225 + 12 * y) for x, y in rng.uniform(0, 1, (20, 2))]
    points = np.array(chin + brows + nose + eyes + lips, float)
    assert points.shape == (68, 2)
    return points


def warped(points: np.ndarray, seed: int, strength: float = 0.12) -> np.ndarray:
    """The same flat picture seen another way: a random perspective warp, plus half a pixel of
    landmark jitter."""
    rng = np.random.default_rng(seed)
    h = np.eye(3) + rng.uniform(-strength, strength, (3, 3)) * np.array([[1, 1, 0], [1, 1, 0], [1e-3, 1e-3, 0]])
    h[:2, 2] = rng.uniform(-40, 40, 2)
    p = np.c_[points, np.ones(len(points))] @ h.T
    return p[:, :2] / p[:, 2:] + rng.normal(0, 0.5, points.shape)


class LandmarkEngine(FakeEngine):
    """One face in every frame; its landmarks, frame after frame, from `script` (the last repeats)."""

    def __init__(self, encoding, script):
        super().__init__([(BIG, encoding)])
        self.script = list(script)
        self.calls = 0

    def landmarks(self, image, boxes):
        points = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        return [points]


@pytest.fixture
def gallery():
    g = Gallery(None)
    g.enrol("p-wang", "王小明", [A], face_id="face-wang")
    yield g
    g.close()


def frame(seq: int = 0) -> Frame:
    return Frame(grey=np.full((480, 640), 128, np.uint8), timestamp=seq * STEP_S, sequence=seq)


def watch(gallery, engine, seconds: float = 5.0, **config) -> list:
    """The observations of `seconds` of camera frames, every STEP_S."""
    clock = FakeClock()
    m = FaceMatcher(gallery, FacesConfig(enabled=True, **config), clock, engine=engine)
    seen = []
    for i in range(round(seconds / STEP_S)):
        observation = m.observe(frame(i))
        if observation is not None:
            seen.append(observation)
        clock.advance(STEP_S)
    return seen


def test_liveness_is_on_by_default():
    faces = FacesConfig()
    assert (faces.liveness, faces.match_verdict, faces.liveness_window_s) == ("blink_or_move", "pass", 3.0)
    for key in ("liveness", "match_verdict", "liveness_window_s", "liveness_every_s"):
        assert FacesConfig.model_fields[key].title and FacesConfig.model_fields[key].description


def test_a_still_picture_gets_no_pass_but_a_staff_check(gallery):
    still = face()
    seen = watch(gallery, LandmarkEngine(enc(5, A, 0.32), [still]))  # matched at 0.32, like the printed photo
    assert all(o.kind is ObservationKind.MATCH for o in seen)
    assert all(o.credential is None for o in seen), "a picture held still got a credential"
    assert seen[0].liveness == "watching" and seen[0].staff_credential is None
    last = seen[-1]
    assert (last.liveness, last.staff_check) == ("none", "face_not_live")
    assert last.staff_credential == Credential(CredentialKind.FACE, "face-wang")


def test_a_picture_moved_tilted_and_turned_gets_no_pass(gallery):
    script = [warped(face(), seed) for seed in range(40)]
    seen = watch(gallery, LandmarkEngine(A, script))
    assert all(o.credential is None for o in seen)
    assert seen[-1].liveness == "none"
    assert max(plane_residual(script[0], s) for s in script[1:]) < MOVE_RESIDUAL / 2  # the margin the threshold has


def test_a_blink_passes(gallery):
    script = [face(1.0), face(1.0), face(0.2), face(1.0)]
    assert eye_aspect_ratio(script[2]) < 0.6 * eye_aspect_ratio(script[0])
    seen = watch(gallery, LandmarkEngine(A, script))
    passed = [o for o in seen if o.credential is not None]
    assert passed and passed[0].liveness == "blink" and passed[0].staff_check == ""
    assert passed[0].credential == Credential(CredentialKind.FACE, "face-wang")
    assert all(o.credential is None for o in seen[: seen.index(passed[0])])


def test_a_head_turn_passes(gallery):
    script = [face(), face(nose_dx=3), face(nose_dx=15)]  # a quarter of the eyes' distance
    seen = watch(gallery, LandmarkEngine(A, script))
    assert [o.liveness for o in seen][:3] == ["watching", "watching", "moved"]
    assert seen[2].credential is not None


def test_a_site_can_make_every_face_match_a_staff_check(gallery):
    seen = watch(gallery, LandmarkEngine(A, [face(), face(0.2), face()]), match_verdict="manual_check")
    assert all(o.credential is None for o in seen)
    live = [o for o in seen if o.liveness == "blink"]
    assert live and live[0].staff_check == "face_staff_check" and live[0].staff_credential is not None


def test_an_engine_without_landmarks_never_shows_life(gallery):
    seen = watch(gallery, FakeEngine([(BIG, A)]))
    assert all(o.credential is None for o in seen) and seen[-1].liveness == "none"


def test_the_watch_looks_more_often_and_starts_over_for_another_person(gallery):
    gallery.enrol("p-li", "李华", [enc(2)])
    engine = LandmarkEngine(A, [face()])
    clock = FakeClock()
    m = FaceMatcher(gallery, FacesConfig(enabled=True), clock, engine=engine)
    assert m.observe(frame(0)).liveness == "watching"
    clock.advance(0.2)  # below detect_every_s, above liveness_every_s: due while watching
    assert m.observe(frame(1)) is not None
    seen = []
    for i in range(15):
        clock.advance(0.2)
        seen.append(m.observe(frame(2 + i)))
    assert [o.liveness for o in seen if o is not None][-1] == "none"
    assert seen[-2:].count(None) == 1  # decided: back to one detection every detect_every_s
    engine.faces = [(BIG, enc(2))]  # someone else steps up
    clock.advance(0.5)
    assert m.observe(frame(20)).liveness == "watching"
    clock.advance(LOST_AFTER_S + 0.1)  # and is gone for a moment: a new watch
    engine.faces = [(BIG, A)]
    assert m.observe(frame(21)).liveness == "watching"


def test_liveness_off_is_one_frame_as_before(gallery):
    (first, *_) = watch(gallery, LandmarkEngine(A, [face()]), liveness="off")
    assert first.liveness == "off" and first.credential is not None


def test_a_technicians_single_photo_match_is_no_credential(gallery):
    m = FaceMatcher(gallery, FacesConfig(enabled=True), FakeClock(), engine=LandmarkEngine(A, [face()]))
    seen = m.analyse(frame().grey)
    assert seen.kind is ObservationKind.MATCH and seen.liveness == "" and seen.credential is None


# --- the real engine on real photos --------------------------------------------------------------

needs_engine = pytest.mark.skipif(not available(), reason="face engine not installed")


@pytest.fixture(scope="module")
def engine():
    from sentinel.faces.engine import FaceEngine

    return FaceEngine()


def rgb_frames(images: list[np.ndarray]) -> list[Frame]:
    out = []
    for i, rgb in enumerate(images):
        grey = np.asarray(Image.fromarray(rgb).convert("L"))
        out.append(Frame(grey=grey, timestamp=i * STEP_S, sequence=i, colour=rgb))
    return out


def replay(gallery, engine, frames: list[Frame], **config) -> list:
    clock = FakeClock()
    m = FaceMatcher(gallery, FacesConfig(enabled=True, **config), clock, engine=engine)
    seen = []
    for f in frames:
        observation = m.observe(f)
        if observation is not None:
            seen.append(observation)
        clock.advance(STEP_S)
    return seen


@pytest.fixture
def resident():
    import json

    shipped = json.loads((ASSETS / "faces" / "astronaut.json").read_text())
    with Gallery(None) as g:
        g.enrol("demo-resident", "林秀英", [shipped["encoding"]])
        yield g


def scene() -> np.ndarray:
    with Image.open(ASSETS / "face_scenes" / "12_face.png") as im:
        return np.asarray(im.convert("RGB"))


def tilted(rgb: np.ndarray, seed: int) -> np.ndarray:
    """The scene as a printed photo held at another angle, slightly out of focus."""
    rng = np.random.default_rng(seed)
    im = Image.fromarray(rgb)
    w, h = im.size
    corners = [(0, 0), (w, 0), (w, h), (0, h)]
    moved = [(x + rng.uniform(-0.08, 0.08) * w, y + rng.uniform(-0.08, 0.08) * h) for x, y in corners]
    rows, rhs = [], []
    for (x, y), (X, Y) in zip(moved, corners):
        rows += [[x, y, 1, 0, 0, 0, -X * x, -X * y], [0, 0, 0, x, y, 1, -Y * x, -Y * y]]
        rhs += [X, Y]
    coefficients = np.linalg.solve(np.array(rows, float), np.array(rhs, float))
    out = im.transform(im.size, Image.PERSPECTIVE, tuple(coefficients), Image.BILINEAR, fillcolor=(128, 128, 128))
    return np.asarray(out.filter(ImageFilter.GaussianBlur(1.2)))


@needs_engine
def test_the_demo_portrait_held_still_gets_no_pass(resident, engine):
    seen = replay(resident, engine, rgb_frames([scene()] * 25))
    assert seen and all(o.kind is ObservationKind.MATCH for o in seen)
    assert all(o.credential is None for o in seen)
    assert seen[-1].liveness == "none" and seen[-1].staff_check == "face_not_live"


@needs_engine
def test_the_demo_portrait_tilted_and_blurred_gets_no_pass(resident, engine):
    frames = rgb_frames([tilted(scene(), seed) for seed in range(20)])
    seen = [o for o in replay(resident, engine, frames) if o.kind is ObservationKind.MATCH]
    assert len(seen) >= 10
    assert all(o.credential is None for o in seen), [o.liveness for o in seen]


@needs_engine
def test_two_real_photos_of_the_same_person_pass(engine, shared_data):
    from sentinel.faces.enrol import enrol_images
    from tests.face_photos import camera_rgb

    photos = shared_data / "faces"
    with Gallery(None) as g:
        enrol_images(g, engine, "p-obama", "Barack Obama", [photos / "obama.jpg"], face_id="face-obama")
        frames = rgb_frames([camera_rgb(photos / "obama2.jpg"), camera_rgb(photos / "obama3.jpg")])
        seen = replay(g, engine, frames)
    assert [o.liveness for o in seen] == ["watching", "moved"]
    assert seen[1].credential == Credential(CredentialKind.FACE, "face-obama")


def test_liveness_values_are_the_documented_ones():
    assert [v.value for v in Liveness] == ["off", "watching", "blink", "moved", "none"]

"""Face matching without the face engine: the gallery store, the matcher's rules (rate limit,
codes first, smallest face, one person at a time, tolerance, look-alikes), gallery sync and
privacy. A stand-in engine returns given boxes and encodings, so these run on any machine; the
real engine on real photos is tests/test_faces_engine.py."""

from __future__ import annotations

import json
import logging
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

import sentinel
from sentinel.config import ConfigError, FacesConfig, SentinelConfig, parse_config
from sentinel.credentials import Credential, CredentialKind
from sentinel.faces import FaceBox, FaceMatcher, Gallery, GalleryError, ObservationKind, gallery_path
from sentinel.faces.engine import HOG_MIN_FACE_PX, detection_size, upsample_for
from sentinel.faces.gallery import pack, unpack
from sentinel.faces.matcher import IDLE_EVERY_S
from sentinel.faces.sync import GallerySync
from sentinel.frames import Frame
from tests.helpers import FakeClock

T0 = datetime(2022, 5, 1, 8, 0, tzinfo=UTC)
ASSETS = Path(sentinel.__file__).parent / "assets"


def enc(seed: int, near: np.ndarray | None = None, by: float = 0.0) -> np.ndarray:
    """A unit-scale 128-number encoding; with `near`, one at distance `by` from it."""
    rng = np.random.default_rng(seed)
    v = rng.normal(size=128)
    if near is None:
        return (v / np.linalg.norm(v) * 0.9).astype(np.float32)
    step = v / np.linalg.norm(v) * by
    return (near + step).astype(np.float32)


A = enc(1)
B = enc(2)  # about 1.27 from A: another person


class FakeEngine:
    """Detects the given faces (boxes in a `frame_size` frame, scaled to whatever it is shown) and
    encodes each as given."""

    def __init__(self, faces=(), frame_size=(640, 480)):
        self.faces = list(faces)  # [(FaceBox in frame pixels, encoding)]
        self.frame_w = frame_size[0]
        self.detect_calls: list[tuple[tuple[int, ...], int, float]] = []
        self.encode_calls: list[tuple[tuple[int, ...], list[FaceBox]]] = []
        self.fail = False

    def detect(self, image, upsample=0, min_score=0.0):
        if self.fail:
            raise RuntimeError("dlib broke")
        self.detect_calls.append((image.shape, upsample, min_score))
        s = image.shape[1] / self.frame_w
        return [box.scaled(s) for box, _ in self.faces]

    def encode(self, image, boxes):
        self.encode_calls.append((image.shape, list(boxes)))
        s = image.shape[1] / self.frame_w
        out = []
        for b in boxes:
            nearest = min(self.faces, key=lambda f: abs(f[0].scaled(s).left - b.left) + abs(f[0].scaled(s).top - b.top))
            out.append(nearest[1])
        return out


def frame(seq=0, colour=False, size=(640, 480), colour_size=None):
    grey = np.full((size[1], size[0]), 128, np.uint8)
    rgb = None
    if colour:
        cw, ch = colour_size or size
        rgb = np.full((ch, cw, 3), 128, np.uint8)
    return Frame(grey=grey, timestamp=seq / 10, sequence=seq, colour=rgb)


BIG = FaceBox(250, 120, 390, 260)  # 140 px wide
BIG2 = FaceBox(450, 140, 560, 250)  # 110 px
SMALL = FaceBox(40, 60, 100, 120)  # 60 px: someone further away


@pytest.fixture
def gallery():
    g = Gallery(None)
    g.enrol("p-wang", "王小明", [A], face_id="face-wang", now=T0)
    g.enrol("p-li", "李华", [B], now=T0)
    yield g
    g.close()


def matcher(gallery, faces, clock=None, **config):
    engine = FakeEngine(faces)
    # The matching rules, one frame at a time: liveness (tests/test_face_liveness.py) is off here.
    cfg = FacesConfig(enabled=True, **{"liveness": "off", **config})
    return FaceMatcher(gallery, cfg, clock or FakeClock(), engine=engine), engine


# --- the core stays light -------------------------------------------------------------------


def test_importing_the_face_package_loads_no_engine_and_no_numpy():
    code = (
        "import sys\n"
        "import sentinel.faces, sentinel.faces.matcher, sentinel.faces.gallery, sentinel.faces.sync, sentinel.faces.enrol\n"
        "import sentinel.faces.kiosk, sentinel.faces.demo\n"
        "import sentinel.commands.faces\n"
        "print(','.join(m for m in ('numpy', 'PIL', 'dlib', 'face_recognition', 'fastapi') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_faces_config_defaults_and_limits():
    faces = SentinelConfig().faces
    assert (faces.enabled, faces.tolerance, faces.min_face_px, faces.detect_every_s, faces.downscale_width) == (False, 0.5, 80, 0.5, 320)
    with pytest.raises(ConfigError) as err:
        parse_config({"faces": {"tolerance": 0.95, "min_face_px": 5, "tolerence": 1}})
    assert [p.split(":")[0] for p in err.value.problems] == ["faces.tolerance", "faces.min_face_px", "faces.tolerence"]


def test_the_gallery_lives_where_wipe_destroys_it(tmp_path):
    """`sentinel wipe` takes <state_dir>/faces/ whole: the gallery, its WAL and kept images."""
    from sentinel.wipe import personal_data

    config = SentinelConfig.model_validate({"device": {"state_dir": str(tmp_path)}})
    path = gallery_path(config)
    assert path == tmp_path / "faces" / "gallery.sqlite3"
    with Gallery(path) as g:
        g.enrol("p1", "王小明", [A])
        (g.images_dir).mkdir()
        g.image_path("p1-0.jpg").write_bytes(b"jpeg")
        listed = personal_data(tmp_path, tmp_path / "outbox.sqlite3")
    assert path in listed and g.image_path("p1-0.jpg") in listed


def test_wipe_destroys_the_gallery(tmp_path):
    from sentinel.wipe import wipe

    path = tmp_path / "faces" / "gallery.sqlite3"
    with Gallery(path) as g:
        g.enrol("p1", "王小明", [A])
    report = wipe(tmp_path, tmp_path / "outbox.sqlite3")
    assert str(path) in report.files and report.ok
    assert not (tmp_path / "faces").exists()


def test_the_face_assets_are_small_camera_frames():
    assert (ASSETS / "faces" / "astronaut.jpg").stat().st_size < 200_000
    manifest = json.loads((ASSETS / "face_scenes" / "manifest.json").read_text())
    assert list(manifest) == sorted(p.name for p in (ASSETS / "face_scenes").glob("*.png"))
    for name in manifest:
        with Image.open(ASSETS / "face_scenes" / name) as image:
            assert (image.size, image.mode) == ((640, 480), "RGB")


# --- the gallery store --------------------------------------------------------------------


def test_only_the_masked_name_is_stored(tmp_path):
    path = tmp_path / "faces" / "gallery.sqlite3"
    with Gallery(path) as g:
        g.enrol("p1", "王小明", [A])
        assert [p.name_masked for p in g.people()] == ["王*明"]
    data = b"".join(p.read_bytes() for p in path.parent.iterdir() if p.is_file())
    assert "王*明".encode() in data
    assert "小明".encode() not in data


def test_the_gallery_file_is_private_and_deletes_securely(tmp_path):
    path = tmp_path / "faces" / "gallery.sqlite3"
    with Gallery(path) as g:
        g.enrol("p1", "王小明", [A])
        assert g._conn.execute("PRAGMA secure_delete").fetchone()[0] == 1
        assert g._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_a_removed_person_leaves_no_encoding_bytes_behind(tmp_path):
    path = tmp_path / "faces" / "gallery.sqlite3"
    with Gallery(path) as g:
        g.enrol("p1", "王小明", [A])
        g.enrol("p2", "李华", [B])
        assert g.remove("p1") == 1
        assert g.remove("p1") == 0
        assert [p.person_id for p in g.people()] == ["p2"]
    data = b"".join(p.read_bytes() for p in path.parent.iterdir() if p.is_file())
    assert pack(A) not in data and pack(B) in data


def test_encodings_round_trip_as_float32():
    with Gallery(None) as g:
        g.enrol("p1", "王小明", [A, enc(3, A, 0.1)])
        entries, matrix = g.matrix()
    assert matrix.shape == (2, 128) and matrix.dtype == np.float32
    assert np.allclose(matrix[0], A, atol=1e-7)
    assert unpack(pack(A)) == tuple(float(x) for x in A)


def test_enrolment_rules():
    with Gallery(None) as g:
        g.enrol("p1", "王小明", [A])
        assert g.people()[0].face_id == "p1"  # default: the person id
        with pytest.raises(GalleryError, match="already belongs to person p1"):
            g.enrol("p2", "李华", [B], face_id="p1")
        with pytest.raises(GalleryError, match="person id"):
            g.enrol("../etc", "x", [B])
        with pytest.raises(ValueError, match="128"):
            g.enrol("p3", "x", [[0.0] * 127])
        with pytest.raises(ValueError, match="NaN"):
            g.enrol("p3", "x", [[float("nan")] * 128])
        g.enrol("p1", "王小明", [enc(4, A, 0.2)], face_id="f-1")  # a second photo; a new face id for all rows
        (person,) = g.people()
        assert (person.encodings, person.face_id, person.sources) == (2, "f-1", ("local",))


def test_version_changes_with_writes_from_this_process_and_another(tmp_path):
    path = tmp_path / "faces" / "gallery.sqlite3"
    with Gallery(path) as kiosk, Gallery(path) as technician:
        v0 = kiosk.version()
        technician.enrol("p1", "王小明", [A])
        v1 = kiosk.version()
        assert v1 != v0
        kiosk.remove("p1")
        assert kiosk.version() != v1


# --- syncing with the service's gallery ------------------------------------------------------


def entry(face_id, person_id, encoding, name="周*伦"):
    return SimpleNamespace(face_id=face_id, person_id=person_id, name_masked=name, encoding=[float(x) for x in encoding])


class FakeFacesClient:
    def __init__(self):
        self.faces_list = []
        self.calls = []
        self.error = None
        self.now = T0

    def faces(self, since=None):
        self.calls.append(since)
        if self.error:
            raise self.error
        listed = [f for f in self.faces_list if since is None or f.changed >= since]
        return SimpleNamespace(faces=[f.entry for f in listed], as_of=self.now)


def test_sync_full_then_delta_then_full_removes_who_the_service_dropped():
    service = FakeFacesClient()
    wall = [T0]
    with Gallery(None) as g:
        g.enrol("local-1", "王小明", [A])
        sync = GallerySync(g, service, "demo-site", wall=lambda: wall[0], full_every=timedelta(hours=24))
        service.faces_list = [SimpleNamespace(entry=entry("f-zhou", "zhou", B), changed=T0 - timedelta(days=3))]
        assert sync.sync_once().full and sync.synced.is_set()
        assert service.calls == [None]
        assert {p.person_id for p in g.people()} == {"local-1", "zhou"}

        later = T0 + timedelta(minutes=5)
        service.now = wall[0] = later
        service.faces_list.append(SimpleNamespace(entry=entry("f-chen", "chen", enc(7)), changed=later))
        result = sync.sync_once()
        assert not result.full and result.stored == 1
        assert service.calls[-1] == T0  # since the last answer's as_of
        assert {p.person_id for p in g.people()} == {"local-1", "zhou", "chen"}

        service.faces_list = service.faces_list[1:]  # zhou left the site's gallery
        service.now = wall[0] = T0 + timedelta(hours=25)
        result = sync.sync_once()
        assert result.full and result.removed == 1
        assert {p.person_id for p in g.people()} == {"local-1", "chen"}  # local enrolments stay


def test_a_failed_sync_keeps_the_gallery(caplog):
    service = FakeFacesClient()
    with Gallery(None) as g:
        sync = GallerySync(g, service, "demo-site", wall=lambda: T0)
        service.faces_list = [SimpleNamespace(entry=entry("f-zhou", "zhou", B), changed=T0)]
        sync.sync_once()
        service.error = ConnectionError("network down")
        with caplog.at_level(logging.WARNING):
            result = sync.sync_once()
        assert not result.ok and "network down" in result.error
        assert [p.person_id for p in g.people()] == ["zhou"]
        assert "matching against the gallery already here" in caplog.text


def test_a_sync_for_another_site_starts_over():
    with Gallery(None) as g:
        g.apply_service("site-a", [entry("f1", "p1", A)], T0, full=True)
        assert g.sync_state("site-a") is not None
        g.apply_service("site-b", [entry("f2", "p2", B)], T0, full=True)
        assert g.sync_state("site-a") is None
        assert [p.person_id for p in g.people()] == ["p2"]


# --- the matcher's rules ------------------------------------------------------------------


def test_upsampling_follows_the_smallest_face():
    assert upsample_for(80, 320 / 640) == 1  # 40 px at 320 wide: the detector doubles the frame
    assert upsample_for(160, 320 / 640) == 0
    assert upsample_for(80, 1.0) == 0
    assert upsample_for(20, 0.25) == 2  # capped
    assert HOG_MIN_FACE_PX == 72


def test_the_detector_looks_at_the_scale_of_before_without_dlibs_upsampling():
    assert detection_size(640, 80, 320) == (640, 0)  # was 320 doubled by dlib
    assert detection_size(640, 160, 320) == (320, 0)  # big faces only: downscale_width
    assert detection_size(1280, 80, 320) == (1280, 0)  # was 320 doubled twice
    assert detection_size(640, 40, 320) == (320, 2)  # smaller than the detector's at full size: as before
    assert detection_size(320, 80, 320) == (320, 0)
    for frame_w, face, floor in [(640, 80, 320), (1280, 100, 320), (640, 50, 160), (640, 30, 320), (1920, 80, 480)]:
        width, n_up = detection_size(frame_w, face, floor)
        before = min(frame_w, floor) * 2 ** upsample_for(face, min(frame_w, floor) / frame_w)
        assert width * 2**n_up == before  # the same scale as before: the same faces, measured the same
        assert width <= frame_w


def test_a_known_face_becomes_a_face_credential(gallery):
    m, engine = matcher(gallery, [(BIG, enc(5, A, 0.3))])
    seen = m.observe(frame(1))
    assert seen.kind is ObservationKind.MATCH
    assert (seen.person_id, seen.name_masked, seen.box) == ("p-wang", "王*明", BIG)
    assert seen.distance == pytest.approx(0.3, abs=1e-4)
    assert seen.credential == Credential(CredentialKind.FACE, "face-wang")
    assert seen.sequence == 1
    # detected on the grey plane at its full 640 px, where an 80-px face is above the detector's
    # smallest (72 px), not doubled by the detector
    ((shape, upsample, min_score),) = engine.detect_calls
    assert shape == (480, 640) and upsample == 0 and min_score == 0.3
    # encoded on the full frame
    ((shape, boxes),) = engine.encode_calls
    assert shape == (480, 640, 3) and boxes == [BIG]


def test_detection_is_rate_limited_and_codes_come_first(gallery):
    clock = FakeClock()
    m, engine = matcher(gallery, [(BIG, A)], clock)
    assert m.observe(frame(1), qr_in_view=True) is None
    assert m.observe(frame(2)).kind is ObservationKind.MATCH
    clock.advance(0.2)
    assert m.observe(frame(3)) is None  # not due
    clock.advance(0.3)
    assert m.observe(frame(4), qr_in_view=True) is None  # due, but a code is in view
    assert m.observe(frame(5)).kind is ObservationKind.MATCH
    assert len(engine.detect_calls) == 2


def test_an_unknown_face_is_no_credential(gallery):
    m, _ = matcher(gallery, [(BIG, enc(9))])
    seen = m.observe(frame())
    assert seen.kind is ObservationKind.UNKNOWN and seen.detail == "not_enrolled"
    assert seen.credential is None and seen.face_id is None and seen.name_masked == ""
    assert seen.distance > 0.5


def test_the_tolerance_decides(gallery):
    face = enc(5, A, 0.45)
    assert matcher(gallery, [(BIG, face)])[0].observe(frame()).kind is ObservationKind.MATCH
    assert matcher(gallery, [(BIG, face)], tolerance=0.4)[0].observe(frame()).kind is ObservationKind.UNKNOWN


def test_a_face_between_two_enrolled_people_is_not_trusted(gallery):
    middle = ((A + B) / 2).astype(np.float32)
    gallery.enrol("p-twin", "王小亮", [enc(11, A, 0.05)])
    seen = matcher(gallery, [(BIG, enc(12, A, 0.2))], tolerance=0.5)[0].observe(frame())
    assert seen.kind is ObservationKind.UNKNOWN and seen.detail == "ambiguous"
    assert matcher(gallery, [(BIG, middle)], tolerance=0.7)[0].observe(frame()).kind is ObservationKind.UNKNOWN


def test_small_faces_are_ignored(gallery):
    m, engine = matcher(gallery, [(SMALL, A)])
    seen = m.observe(frame())
    assert seen.kind is ObservationKind.TOO_SMALL and seen.box == SMALL
    assert engine.encode_calls == []
    # a small face behind the person at the kiosk does not make it "several"
    seen = matcher(gallery, [(BIG, A), (SMALL, B)])[0].observe(frame())
    assert seen.kind is ObservationKind.MATCH and seen.person_id == "p-wang" and len(seen.boxes) == 2


def test_several_faces_ask_for_one_person_at_a_time(gallery):
    m, engine = matcher(gallery, [(BIG, A), (BIG2, B)])
    seen = m.observe(frame())
    assert seen.kind is ObservationKind.SEVERAL and seen.credential is None
    assert seen.box == BIG and set(seen.boxes) == {BIG, BIG2}
    assert engine.encode_calls == []  # nobody is identified


def test_no_face(gallery):
    seen = matcher(gallery, [])[0].observe(frame())
    assert seen.kind is ObservationKind.NO_FACE and seen.boxes == ()


def test_an_empty_gallery_spares_the_encoding():
    with Gallery(None) as empty:
        m, engine = matcher(empty, [(BIG, A)])
        seen = m.observe(frame())
    assert seen.kind is ObservationKind.UNKNOWN and seen.detail == "gallery_empty"
    assert engine.encode_calls == []


def test_the_encoding_uses_colour_scaled_to_its_size(gallery):
    """On the Pi grey comes from the 640×480 lores stream, colour from the 1280×960 main stream."""
    m, engine = matcher(gallery, [(BIG, A)])
    engine.frame_w = 640
    seen = m.observe(frame(colour=True, colour_size=(1280, 960)))
    assert seen.kind is ObservationKind.MATCH and seen.box == BIG  # boxes stay in grey pixels
    ((shape, boxes),) = engine.encode_calls
    assert shape == (960, 1280, 3) and boxes == [BIG.scaled(2)]


def test_a_new_enrolment_is_seen_at_the_next_detection(tmp_path):
    path = tmp_path / "faces" / "gallery.sqlite3"
    clock = FakeClock()
    with Gallery(path) as kiosk, Gallery(path) as technician:
        m, _ = matcher(kiosk, [(BIG, A)], clock)
        assert m.observe(frame()).kind is ObservationKind.UNKNOWN
        technician.enrol("p1", "王小明", [A])
        clock.advance(1)
        assert m.observe(frame()).kind is ObservationKind.MATCH
        technician.remove("p1")
        clock.advance(1)
        assert m.observe(frame()).kind is ObservationKind.UNKNOWN


def test_an_engine_fault_is_logged_once_and_never_raised(gallery, caplog):
    clock = FakeClock()
    m, engine = matcher(gallery, [(BIG, A)], clock)
    engine.fail = True
    with caplog.at_level(logging.INFO, logger="sentinel.faces"):
        assert m.observe(frame()) is None
        clock.advance(1)
        assert m.observe(frame()) is None
        engine.fail = False
        clock.advance(1)
        assert m.observe(frame()).kind is ObservationKind.MATCH
    assert caplog.text.count("face matching failed") == 1
    assert "face matching works again" in caplog.text


def test_an_observation_as_json(gallery):
    seen = matcher(gallery, [(BIG, enc(5, A, 0.3))])[0].observe(frame())
    assert seen.as_dict() == {
        "result": "match", "person_id": "p-wang", "face_id": "face-wang", "name_masked": "王*明",
        "distance": pytest.approx(0.3, abs=1e-3), "liveness": "off", "box": {"left": 250, "top": 120, "width": 140, "height": 140}, "faces": 1,
    }  # fmt: skip
    assert "face-wang" not in repr(seen)  # the credential value stays out of logs


# --- the kiosk's and the demo's parts -------------------------------------------------------


def test_open_faces_is_nothing_when_off_and_logs_why_when_the_engine_is_missing(tmp_path, monkeypatch, caplog):
    import sentinel.faces.engine as engine_module
    from sentinel.faces.engine import EngineUnavailable
    from sentinel.faces.kiosk import open_faces

    off = SentinelConfig.model_validate({"device": {"state_dir": str(tmp_path)}})
    assert open_faces(off) is None
    assert not (tmp_path / "faces").exists()

    def missing():
        raise EngineUnavailable("dlib not installed")

    monkeypatch.setattr(engine_module, "_dlib", missing)
    on = SentinelConfig.model_validate({"device": {"state_dir": str(tmp_path)}, "faces": {"enabled": True}})
    with caplog.at_level(logging.ERROR):
        assert open_faces(on, make_client=lambda c: pytest.fail("no client without an engine")) is None
    assert "Checking codes only" in caplog.text and "dlib not installed" in caplog.text


def test_open_faces_wires_gallery_matcher_and_sync(tmp_path, monkeypatch):
    from sentinel.faces.kiosk import open_faces

    config = SentinelConfig.model_validate({"device": {"state_dir": str(tmp_path), "site_id": "site-1"}, "faces": {"enabled": True}})
    service = FakeFacesClient()
    service.faces_list = [SimpleNamespace(entry=entry("f-zhou", "zhou", B), changed=T0)]
    service.close = lambda: setattr(service, "closed", True)
    monkeypatch.setattr(FaceMatcher, "warm_up", lambda self: None)  # no engine here (tests/test_faces_engine.py has it)
    faces = open_faces(config, make_client=lambda c: service)
    assert faces.gallery.path == gallery_path(config)
    faces.start()
    assert faces.sync.synced.wait(5)
    assert [p.person_id for p in faces.gallery.people()] == ["zhou"]
    faces.close()
    assert service.closed


def test_the_demo_replays_the_qr_scenes_then_the_face_scenes(tmp_path):
    from sentinel.faces.demo import DEMO_FACES_SEED, demo_scene_folder
    from sentinel.service.seed import SEEDS

    folder = demo_scene_folder(tmp_path)
    names = sorted(p.name for p in folder.iterdir())
    faces = ["11_empty.png", "12_face.png", "13_two_people.png"]
    qr = sorted(p.name for p in (ASSETS / "scenes").glob("*.png"))
    assert names == sorted(qr + faces)
    # the face scenes come after the first ten QR scenes (the not-found person plays last)
    assert names[10:13] == faces and qr[-1] == "15_not_found.png"
    assert DEMO_FACES_SEED in SEEDS


# --- detection when the view changes (issue 18) ------------------------------------------------


def person_frame(seq, noise_seed=None):
    """The grey background with a darker block where a face would be (and sensor noise)."""
    f = frame(seq)
    grey = f.grey.copy()
    grey[120:260, 250:390] = 60
    if noise_seed is not None:
        rng = np.random.default_rng(noise_seed)
        grey = np.clip(grey.astype(np.int16) + rng.integers(-6, 7, grey.shape), 0, 255).astype(np.uint8)
    return Frame(grey=grey, timestamp=f.timestamp, sequence=seq)


def test_a_change_in_view_is_looked_at_without_waiting_for_the_clock(gallery):
    clock = FakeClock()
    m, engine = matcher(gallery, [], clock)
    assert m.observe(frame(1)).kind is ObservationKind.NO_FACE  # the empty view
    clock.advance(0.15)
    assert m.observe(frame(2)) is None  # nothing changed
    clock.advance(0.15)
    assert m.observe(frame(2)) is None
    engine.faces = [(BIG, A)]
    assert m.observe(person_frame(4)).kind is ObservationKind.MATCH  # 0.3 s after the last detection
    clock.advance(0.05)
    assert m.observe(frame(5)) is None  # changed again, but within CHANGE_GAP_S of the last look
    clock.advance(0.1)
    assert m.observe(person_frame(6)) is None  # the person stands still: nothing new to look at
    assert len(engine.detect_calls) == 2


def test_sensor_noise_is_no_change_in_view(gallery):
    clock = FakeClock()
    m, engine = matcher(gallery, [(BIG, A)], clock)
    m.observe(person_frame(1, noise_seed=1))
    for seq in range(2, 6):
        clock.advance(0.12)
        assert m.observe(person_frame(seq, noise_seed=seq)) is None
    clock.advance(0.5)
    assert m.observe(person_frame(9, noise_seed=9)) is not None  # the unchanged view's clock still runs
    assert len(engine.detect_calls) == 2


def test_once_a_face_is_in_view_changes_wait_for_the_clock(gallery):
    """A person moving in front of the camera changes every frame: not an encoding every 0.1 s."""
    clock = FakeClock()
    m, engine = matcher(gallery, [(BIG, enc(9))], clock)  # someone not enrolled
    assert m.observe(frame(1)).kind is ObservationKind.UNKNOWN
    for seq in range(2, 6):
        clock.advance(0.12)
        assert m.observe(person_frame(seq) if seq % 2 else frame(seq)) is None  # changes, but a face is in view
    clock.advance(0.05)  # 0.53 s since the last look: the clock's turn
    assert m.observe(frame(7)).kind is ObservationKind.UNKNOWN
    assert len(engine.encode_calls) == 2


def test_an_empty_still_view_is_looked_at_every_two_seconds_only(gallery):
    """Idle cost follows what changes in view: an empty, unchanged view is not scanned for faces
    every detect_every_s, only every IDLE_EVERY_S; a slow change adds up against the frame of
    the last look and is seen without waiting for that."""
    clock = FakeClock()
    m, engine = matcher(gallery, [], clock)
    looks = 0
    for seq in range(60):  # 6 s of an empty view at 10 frames a second
        looks += m.observe(frame(seq)) is not None
        clock.advance(0.1)
    assert looks == 3 == len(engine.detect_calls)  # at 0, 2 and 4 s (not 12 at detect_every_s = 0.5)
    assert IDLE_EVERY_S == 2.0
    # a person coming in slowly: each frame differs from the one before by less than a change
    # (20 thumbnail pixels of 19,200, the threshold is 38), but the view drifts from the frame of
    # the last look until it counts as one, well before the 2 s
    assert m.observe(frame(99)) is not None  # a look at the empty view (6 s)
    engine.faces = [(BIG, A)]
    seen = []
    for step in range(1, 10):
        clock.advance(0.1)
        f = frame(100 + step)
        f.grey[120:200, 252:252 + 4 * step] = 60  # 4 px (one thumbnail column) more each frame
        seen.append(m.observe(f))
    assert seen[0] is None and seen[1] is not None and seen[1].kind is ObservationKind.MATCH

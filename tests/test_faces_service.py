"""Faces against the reference service on a real socket: the device's `faces(since)` call, gallery
sync, and a replay of face frames ending in a verdict from the service.

The demo's resident (`--seed demo-faces`) is enrolled with the encoding of the shipped portrait, so
none of this needs ../shared."""

from __future__ import annotations

import json
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

import sentinel
from hardware.camera import ReplaySource
from sentinel.client import ClientError
from sentinel.config import FacesConfig, PolicyConfig
from sentinel.credentials import CredentialKind, Debouncer
from sentinel.faces import (
    INSTALL_HINT,
    FaceMatcher,
    Gallery,
    ObservationKind,
    available,
)
from sentinel.faces.sync import GallerySync
from sentinel.health import Status
from sentinel.policy import VerdictKind, decide
from sentinel.service.seed import (
    DEMO_DEVICE_ID,
    DEMO_DEVICE_TOKEN,
    DEMO_FACE_PERSON,
    DEMO_SITE,
    demo_face_id,
    demo_person_id,
)
from sentinel.service.server import ReferenceServer
from tests.helpers import FakeClock, InlineExecutor, device_client, wall_following

ADMIN = "sat_faces-test-admin-token"
ASSETS = Path(sentinel.__file__).parent / "assets"
FACE_SCENES = ASSETS / "face_scenes"
RESIDENT_FACE = demo_face_id(DEMO_FACE_PERSON)
needs_engine = pytest.mark.skipif(not available(), reason=f"face engine not installed: {INSTALL_HINT}")


@pytest.fixture
def srv(service_db):
    with ReferenceServer(service_db, seed="demo-faces", admin_token=ADMIN) as server:
        yield server


@pytest.fixture
def client(srv):
    with closing(device_client(srv.url)) as c:
        yield c


def admin(srv, method, path, body=None):
    r = requests.request(method, srv.url + path, json=body, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10)
    assert r.status_code < 300, r.text
    return r.json()


def test_the_device_fetches_its_sites_gallery(client):
    gallery = client.faces()
    (resident,) = gallery.faces
    assert (resident.face_id, resident.person_id, resident.name_masked) == (RESIDENT_FACE, demo_person_id(DEMO_FACE_PERSON), "林*英")
    shipped = json.loads((ASSETS / "faces" / "astronaut.json").read_text())["encoding"]
    assert resident.encoding == pytest.approx(shipped)
    assert client.faces(since=gallery.as_of).faces == []


def test_a_device_of_another_site_is_refused(srv):
    with closing(device_client(srv.url, site_id="other-site")) as other, pytest.raises(ClientError) as err:
        other.faces()
    assert err.value.code == "wrong_site"


def test_sync_follows_the_service(srv, client, tmp_path):
    with Gallery(tmp_path / "faces" / "gallery.sqlite3") as gallery:
        sync = GallerySync(gallery, client, DEMO_SITE.id)
        assert sync.sync_once().ok
        assert [(p.person_id, p.name_masked, p.sources) for p in gallery.people()] == [("demo-resident", "林*英", ("service",))]

        encoding = [i / 256 for i in range(128)]
        admin(srv, "POST", "/admin/people", {
            "person_id": "resident-2", "name": "周杰伦", "colour": "green", "face_id": "face-resident-2",
            "face_site_id": DEMO_SITE.id, "face_encoding": encoding,
        })  # fmt: skip
        delta = sync.sync_once()
        assert delta.ok and not delta.full
        assert {p.person_id for p in gallery.people()} == {"demo-resident", "resident-2"}

        admin(srv, "PUT", "/admin/people/resident-2", {"face_site_id": None})  # moved out of this site's gallery
        full = sync.sync_once(full=True)
        assert (full.ok, full.removed) == (True, 1)
        assert [p.person_id for p in gallery.people()] == ["demo-resident"]


def test_a_sync_that_cannot_reach_the_service_keeps_the_gallery(client, srv, tmp_path):
    with Gallery(None) as gallery:
        GallerySync(gallery, client, DEMO_SITE.id).sync_once()
        srv.stop()
        result = GallerySync(gallery, client, DEMO_SITE.id).sync_once()
        assert not result.ok and result.error.startswith("connection")
        assert len(gallery) == 1


def replay_faces(matcher: FaceMatcher, clock: FakeClock, on_credential) -> list:
    """The face scenes as a 10 fps camera, each held a second, through the matcher and a debouncer."""
    debouncer = Debouncer(5.0)
    observations = []
    with ReplaySource(FACE_SCENES, fps=10, frames_per_image=10, realtime=False) as source:
        source.start()
        while (frame := source.read(0)) is not None:
            clock.t = 1000.0 + frame.timestamp
            seen = matcher.observe(frame, qr_in_view=False)
            if seen is None:
                continue
            observations.append((frame.origin, seen.kind))
            if seen.credential is not None and debouncer.is_new(seen.credential.key, clock()):
                on_credential(seen)
    return observations


@needs_engine
def test_a_replay_of_face_frames_ends_in_a_verdict_from_the_reference_server(client, tmp_path):
    with Gallery(tmp_path / "faces" / "gallery.sqlite3") as gallery:
        GallerySync(gallery, client, DEMO_SITE.id).sync_once()
        clock = FakeClock()
        matcher = FaceMatcher(gallery, FacesConfig(enabled=True, liveness="off"), clock)  # still pictures: as the demo
        checks = []

        def check(seen):
            status = client.verify(seen.credential, 1.5)
            checks.append((seen, status, decide(status, PolicyConfig(nat_window_h=48), datetime.now(UTC))))

        observations = replay_faces(matcher, clock, check)
    kinds = {origin: {k for o, k in observations if o == origin} for origin, _ in observations}
    assert kinds == {
        "11_empty.png": {ObservationKind.NO_FACE},
        "12_face.png": {ObservationKind.MATCH},
        "13_two_people.png": {ObservationKind.SEVERAL},
    }
    # the still, empty view looked at once (then only every 2 s); the face at once as it comes
    # into view, then every detect_every_s = 0.5 s while someone is in view
    assert [k for _, k in observations] == [ObservationKind.NO_FACE] + [ObservationKind.MATCH] * 2 + [ObservationKind.SEVERAL] * 2
    ((seen, status, verdict),) = checks  # held for a second, checked once
    assert seen.credential.kind is CredentialKind.FACE and seen.credential.value == RESIDENT_FACE
    assert status.status is Status.GREEN and status.person.name_masked == "林*英"
    assert verdict.kind is VerdictKind.PASS


@needs_engine
def _face_scenes_through_the_pipeline(client, tmp_path, faces_config):
    """The bundled face scenes through a pipeline with the real reference service: outcomes, screens, gate."""
    from hardware.gate import FakeGate
    from sentinel.config import CredentialConfig
    from sentinel.credentials import CredentialRules
    from sentinel.decoding import make_decoder
    from sentinel.outbox import Outbox
    from sentinel.pipeline import Pipeline
    from sentinel.records import RecordMaker
    from ui.console import ConsoleDisplay

    clock = FakeClock()
    display = ConsoleDisplay()
    gate = FakeGate(pulse_s=1.0, clock=clock)
    outcomes = []
    with Gallery(tmp_path / "faces" / "gallery.sqlite3") as gallery:
        GallerySync(gallery, client, DEMO_SITE.id).sync_once()
        outbox = Outbox(tmp_path / "outbox.sqlite3", wall=wall_following(clock))
        pipeline = Pipeline(
            decoder=make_decoder(["zxing-cpp"]),
            rules=CredentialRules(CredentialConfig()),
            verifier=client,
            policy=PolicyConfig(nat_window_h=48),
            records=RecordMaker(DEMO_DEVICE_ID, DEMO_SITE.id, b"k" * 32),
            outbox=outbox,
            gate=gate,
            display=display,
            language="en",
            result_s=1.0,
            clock=clock,
            executor=InlineExecutor(),
            on_outcome=outcomes.append,
            faces=FaceMatcher(gallery, faces_config, clock),
        )
        # each scene held 4 s: longer than the liveness window (3 s), as a person standing still would
        with ReplaySource(FACE_SCENES, fps=10, frames_per_image=40, realtime=False) as source:
            source.start()
            while (frame := source.read(0)) is not None:
                clock.t = 1000.0 + frame.timestamp
                pipeline.step(frame)
        pipeline.close()
        rows = outbox.pending()
        outbox.close()
    return outcomes, display, gate, rows


def test_the_pipeline_lets_the_resident_in_by_face(client, tmp_path):
    outcomes, display, gate, _ = _face_scenes_through_the_pipeline(
        client, tmp_path, FacesConfig(enabled=True, liveness="off"))  # still pictures: as the demo
    assert [(o.credential_kind, o.status, o.verdict.kind.value, o.person) for o in outcomes] == [("face", "green", "pass", "林*英")]
    assert "one_at_a_time" in [s.kind.value for s in display.shown]
    assert len(gate.pulses) == 1


@pytest.mark.parametrize(("faces_config", "reason"), [
    (FacesConfig(enabled=True), "face_not_live"),  # the default: a still picture shows no sign of life
    (FacesConfig(enabled=True, liveness="off", match_verdict="manual_check"), "face_staff_check"),
])
def test_a_face_match_the_gate_must_not_open_for_is_a_recorded_staff_check(client, tmp_path, faces_config, reason):
    outcomes, _, gate, rows = _face_scenes_through_the_pipeline(client, tmp_path, faces_config)
    assert [(o.credential_kind, o.status, o.verdict.kind.value, o.verdict.reason) for o in outcomes] == [
        ("face", "green", "manual_check", reason)]
    assert gate.pulses == []
    assert [(r["credential_kind"], r["verdict"], r["reason"]) for r in rows] == [("face", "manual_check", reason)]


def test_faces_sync_command(srv, tmp_path, capsys):
    from sentinel.cli import main

    token = tmp_path / "device-token"
    token.write_text(DEMO_DEVICE_TOKEN)
    config = tmp_path / "sentinel.toml"
    config.write_text(
        f'[device]\nid = "{DEMO_DEVICE_ID}"\nsite_id = "{DEMO_SITE.id}"\nstate_dir = "{tmp_path / "state"}"\n'
        f'[verifier]\ntype = "http"\nurl = "{srv.url}"\ntoken_file = "{token}"\n',
        encoding="utf-8",
    )
    assert main(["faces", "sync", "--config", str(config)]) == 0
    assert "1 entries from the service" in capsys.readouterr().out
    assert main(["faces", "list", "--json", "--config", str(config)]) == 0
    (person,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (person["person_id"], person["name_masked"], person["sources"]) == ("demo-resident", "林*英", ["service"])
    srv.stop()
    assert main(["faces", "sync", "--config", str(config)]) == 1
    assert "failed: connection" in capsys.readouterr().err

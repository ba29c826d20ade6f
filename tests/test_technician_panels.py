"""The technician menu's Device and Network panels say things a technician can act on, in the
kiosk's language: the camera's backend and rate (not "ok"), reachability and round trip from real
contact with the service (a loopback reference service), the uploader's state in words, times in local time (not raw ISO UTC), and every row
of a panel drawn (none dropped off the bottom)."""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

from datetime import UTC, datetime, timedelta  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import pytest  # noqa: E402

from sentinel.config import OpenCVCameraConfig, ReplayCameraConfig  # noqa: E402
from sentinel.heartbeat import ServiceContact  # noqa: E402
from sentinel.kiosk_technician import (  # noqa: E402
    camera_text,
    contact_text,
    last_contact_text,
    local_time,
    round_trip_text,
    uploader_text,
)
from tests.helpers import T0, FakeClock, WallClock  # noqa: E402


def test_camera_row_names_the_backend_and_its_rate_or_the_fault():
    assert camera_text(OpenCVCameraConfig(type="opencv", fps=30), SimpleNamespace(healthy=True), language="en") == "opencv · 30 fps"
    assert camera_text(ReplayCameraConfig(fps=10), None, language="zh-CN") == "replay · 10 fps"
    broken = SimpleNamespace(healthy=False, last_error="no frame in 2 s")
    assert camera_text(ReplayCameraConfig(), broken, language="zh-CN") == "故障: no frame in 2 s"


def test_times_are_local_not_iso_utc():
    when = datetime(2022, 4, 12, 6, 3, 22, tzinfo=UTC)
    shown = local_time(when)
    assert shown == f"{when.astimezone():%Y-%m-%d %H:%M:%S}"
    assert "T" not in shown and "+00:00" not in shown
    assert local_time(when, with_zone=True).startswith(shown + " (UTC")
    assert local_time(when, today=when) == f"{when.astimezone():%H:%M:%S}"  # today: the time is enough
    assert local_time(when, today=when + timedelta(days=2)) == shown


def test_uploader_state_in_words_in_the_kiosk_language():
    status = SimpleNamespace(state="idle", queue_depth=0, consecutive_failures=0)
    assert uploader_text(status, language="zh-CN") == "空闲，无待传记录"
    failing = SimpleNamespace(state="retrying", queue_depth=37, consecutive_failures=4)
    assert uploader_text(failing, language="en") == "failed, will retry (4 failures in a row)"
    assert "idle" not in uploader_text(status, language="zh-CN")


def test_reachability_comes_from_contact_with_the_service():
    clock = FakeClock()
    wall = WallClock(T0)
    contact = ServiceContact(after_s=120, min_failures=3, clock=clock, wall=wall)
    assert contact_text(contact, language="en") == "no contact yet"  # the start is no contact, only a grace period
    assert last_contact_text(contact, language="zh-CN") == ""
    contact.ok(0.042)
    clock.advance(5)
    wall.advance(5)
    assert contact_text(contact, language="en") == "reachable · 42 ms"
    assert contact_text(contact, language="zh-CN") == "可达 · 42 ms"
    assert last_contact_text(contact, language="en") == f"{T0.astimezone():%H:%M:%S} (5 s ago)"  # today: the time of day
    assert "-" not in last_contact_text(contact, language="en").split(" (")[0]
    contact.observe_outcome(SimpleNamespace(credential_kind="health_code", offline=False))  # a check answered: contact, not timed
    assert contact_text(contact, language="en") == "reachable · 42 ms"
    contact.failed(3)
    clock.advance(200)
    wall.advance(200)
    assert contact_text(contact, language="en") == "unreachable (3 failures since) · 42 ms"
    assert contact_text(contact, language="zh-CN").startswith("无法连接")
    assert last_contact_text(contact, language="zh-CN").endswith("（3分钟前）")
    assert round_trip_text(12.34) == "12.3 s" and round_trip_text(None) == ""


# --- the Network panel against a real service on loopback -------------------------------------------


class _SlowLink:
    """The real client, over a link that takes `delay_s` on the injected clock (real HTTP all the same)."""

    def __init__(self, client, clock, delay_s):
        self._client, self._clock, self.delay_s = client, clock, delay_s

    def heartbeat(self, body, timeout_s=5.0):
        self._clock.advance(self.delay_s)
        return self._client.heartbeat(body, timeout_s=timeout_s)

    def upload_records_detailed(self, records, timeout_s=10.0):
        self._clock.advance(self.delay_s)
        return self._client.upload_records_detailed(records, timeout_s)


@pytest.fixture
def service(tmp_path):
    from sentinel.client import ServiceClient
    from sentinel.service.seed import DEMO_DEVICE_ID, DEMO_DEVICE_TOKEN, DEMO_SITE
    from sentinel.service.server import ReferenceServer

    with ReferenceServer(tmp_path / "service.db", seed="demo") as server:
        client = ServiceClient(server.url, DEMO_DEVICE_TOKEN, device_id=DEMO_DEVICE_ID, site_id=DEMO_SITE.id)
        yield server, client
        client.close()


def _kiosk(url, contact, uploader, language):
    config = SimpleNamespace(device=SimpleNamespace(language=language), verifier=SimpleNamespace(url=url))
    return SimpleNamespace(config=config, contact=contact, uploader=uploader, pipeline=None, gate=SimpleNamespace(close=lambda: None))


def test_network_panel_shows_the_round_trip_of_the_last_heartbeat_and_upload(service, tmp_path):
    from sentinel.heartbeat import HeartbeatSender, build_heartbeat
    from sentinel.kiosk_technician import technician_actions
    from sentinel.outbox import Outbox
    from sentinel.records import RecordMaker
    from sentinel.service.seed import DEMO_DEVICE_ID, DEMO_SITE
    from sentinel.uploader import Uploader

    server, client = service
    clock, wall = FakeClock(), WallClock(T0)
    contact = ServiceContact(clock=clock, wall=wall)
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    link = _SlowLink(client, clock, 0.042)
    uploader = Uploader(outbox, link, clock=clock, wall=wall)
    kiosk = _kiosk(server.url, contact, uploader, "en")
    network = technician_actions(kiosk).network_status
    uploader.status()  # what the kiosk's fault probe does while idle: the uploader's state so far
    contact.observe_uploader(uploader.status())
    assert dict(network())["Reachable"] == "no contact yet"

    beats = HeartbeatSender(link, lambda offset: build_heartbeat({}, offset), wall=wall, contact=contact, clock=clock)
    assert beats.send_once()  # a real heartbeat, acknowledged by the service
    rows = dict(network())
    assert rows["Reachable"] == "reachable · 42 ms" and beats.last_round_trip_s == pytest.approx(0.042)
    assert rows["Last contact"] == f"{T0.astimezone():%H:%M:%S} (0 s ago)"

    link.delay_s = 0.120  # an upload batch over the same (slower now) link
    maker = RecordMaker(DEMO_DEVICE_ID, DEMO_SITE.id, b"k" * 32)
    outbox.add(maker.event("gate_test", at=datetime.now(UTC), detail={"result": "pulsed"}))
    wall.advance(60)
    uploader.step()
    assert uploader.status().queue_depth == 0  # delivered
    clock.advance(3)
    wall.advance(3)
    rows = dict(network())  # the panel sees the upload itself: nothing else had polled the uploader
    assert rows["Reachable"] == "reachable · 120 ms"
    assert rows["Last contact"] == f"{(T0 + timedelta(seconds=60)).astimezone():%H:%M:%S} (3 s ago)"

    server.stop()  # the service goes away: a heartbeat fails, the panel says so without asking the network itself
    assert not beats.send_once()
    assert dict(technician_actions(_kiosk(server.url, contact, uploader, "zh-CN")).network_status())["连通"].startswith("不稳定")
    outbox.close()


@pytest.mark.parametrize("language", ["zh-CN", "en"])
@pytest.mark.parametrize("size", [(800, 480), (1080, 1920)], ids=["landscape", "portrait"])
def test_every_row_of_the_device_panel_is_drawn(language, size):
    pygame = pytest.importorskip("pygame")
    from ui.render import Renderer
    from ui.samples import SAMPLE_NOW, samples

    sample = next(s for s in samples(language) if s.name == "technician_menu")
    assert len(sample.menu.info) == 5
    renderer = Renderer()
    renderer.draw(pygame.Surface(size), sample.screen, sample.status, now=SAMPLE_NOW, menu=sample.menu, language=language)
    drawn = {d.text for d in renderer.drawn}
    assert all(label in drawn and value in drawn for label, value in sample.menu.info), sample.menu.info


@pytest.mark.parametrize("language", ["zh-CN", "en"])
@pytest.mark.parametrize("size", [(800, 480), (1080, 1920)], ids=["landscape", "portrait"])
def test_every_row_of_the_network_panel_is_drawn(language, size):
    """The Network panel at its fullest (five rows: service, reachable with round trip, last
    contact, uploads with the last success, last error), through the menu and drawn: nothing cut or dropped."""
    pygame = pytest.importorskip("pygame")
    from sentinel.kiosk_technician import technician_actions
    from ui.pin import PinGate, hash_pin
    from ui.render import Renderer
    from ui.samples import SAMPLE_NOW, _done, samples
    from ui.technician import TechnicianMenu

    clock, wall = FakeClock(), WallClock(T0)
    contact = ServiceContact(clock=clock, wall=wall)
    contact.ok(0.042)
    contact.failed(1)
    wall.advance(12)
    status = SimpleNamespace(state="retrying", queue_depth=37, consecutive_failures=1, last_success_at=T0,
                             last_error="timeout: no answer in 20 s", last_error_at=T0 + timedelta(seconds=10),
                             last_round_trip_s=None)
    uploader = SimpleNamespace(status=lambda: status)
    actions = technician_actions(_kiosk("https://hs.example.gov.cn/api", contact, uploader, language))
    menu = TechnicianMenu(PinGate(hash_pin("246800", iterations=1000, salt=b"sample-salt-0000")), actions, lambda fn, *a: _done(fn(*a)),
                          language=language)
    menu.open()
    for key in ("digit:2", "digit:4", "digit:6", "digit:8", "digit:0", "digit:0", "ok"):
        menu.press(key)
    menu.poll()
    menu.press("network")
    menu.poll()
    view = menu.view()
    assert len(view.info) == 5, view.info
    reachable = dict(view.info)["连通" if language == "zh-CN" else "Reachable"]
    assert reachable == ("不稳定（之后失败1次） · 42 ms" if language == "zh-CN" else "unsteady (1 failure since) · 42 ms")
    sample = next(s for s in samples(language) if s.name == "technician_menu")
    renderer = Renderer()
    surface = pygame.Surface(size)
    renderer.draw(surface, sample.screen, sample.status, now=SAMPLE_NOW, menu=view, language=language)
    drawn = {d.text for d in renderer.drawn if not d.truncated}
    missing = [t for row in view.info for t in row if t not in drawn]
    assert not missing, (missing, [(d.text, d.truncated) for d in renderer.drawn])

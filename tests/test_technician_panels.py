"""The technician menu's Device and Network panels say things a technician can act on, in the
kiosk's language: the camera's backend and rate (not "ok"), reachability from real contact with
the service, the uploader's state in words, times in local time (not raw ISO UTC), and every row
of a panel drawn (none dropped off the bottom)."""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

from datetime import UTC, datetime  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import pytest  # noqa: E402

from sentinel.config import OpenCVCameraConfig, ReplayCameraConfig  # noqa: E402
from sentinel.heartbeat import ServiceContact  # noqa: E402
from sentinel.kiosk_technician import (  # noqa: E402
    camera_text,
    contact_text,
    local_time,
    uploader_text,
)
from tests.helpers import FakeClock  # noqa: E402


def test_camera_row_names_the_backend_and_its_rate_or_the_fault():
    assert camera_text(OpenCVCameraConfig(type="opencv", fps=30), SimpleNamespace(healthy=True), zh=False) == "opencv · 30 fps"
    assert camera_text(ReplayCameraConfig(fps=10), None, zh=True) == "replay · 10 fps"
    broken = SimpleNamespace(healthy=False, last_error="no frame in 2 s")
    assert camera_text(ReplayCameraConfig(), broken, zh=True) == "故障: no frame in 2 s"


def test_times_are_local_not_iso_utc():
    when = datetime(2022, 4, 12, 6, 3, 22, tzinfo=UTC)
    shown = local_time(when)
    assert shown == f"{when.astimezone():%Y-%m-%d %H:%M:%S}"
    assert "T" not in shown and "+00:00" not in shown
    assert local_time(when, with_zone=True).startswith(shown + " (UTC")


def test_uploader_state_in_words_in_the_kiosk_language():
    status = SimpleNamespace(state="idle", queue_depth=0, consecutive_failures=0)
    assert uploader_text(status, zh=True) == "空闲，无待传记录"
    failing = SimpleNamespace(state="retrying", queue_depth=37, consecutive_failures=4)
    assert uploader_text(failing, zh=False) == "failed, will retry (4 failures in a row)"
    assert "idle" not in uploader_text(status, zh=True)


def test_reachability_comes_from_contact_with_the_service():
    clock = FakeClock()
    contact = ServiceContact(after_s=120, min_failures=3, clock=clock)
    clock.advance(5)
    assert contact_text(contact, zh=False) == "reachable, last contact 5 s ago"
    contact.failed(3)
    clock.advance(200)
    assert contact_text(contact, zh=False).startswith("unreachable, last contact 3 min ago")
    assert contact_text(contact, zh=True).startswith("无法连接")


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

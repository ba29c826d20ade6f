"""The handheld's summary has a way back to the car (issue 16): 返回本车 / Back to car reopens the
vehicle just finished while its verdict is up, a passenger re-scanned or one missed is added, and
the next Finish records the corrected vehicle under the same session id, naming the record it
replaces. Through the real pipeline and outbox (tests.test_handheld's Rig), and by a tap on the
real pygame display (dummy SDL)."""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import pytest  # noqa: E402

pygame = pytest.importorskip("pygame", reason="pygame is a dev dependency (apt python3-pygame on the Pi)")

from hardware.battery import Battery  # noqa: E402
from sentinel.config import DisplayConfig, HandheldConfig  # noqa: E402
from sentinel.handheld import HandheldController, Phase  # noqa: E402
from sentinel.pipeline import CheckOutcome  # noqa: E402
from sentinel.policy import Verdict, VerdictKind  # noqa: E402
from sentinel.screens import ScreenKind  # noqa: E402
from tests.helpers import WallClock, wait_until  # noqa: E402
from tests.test_handheld import GREEN, YELLOW, YELLOW_ID_NUMBER, Rig  # noqa: E402
from ui.pygame_display import PygameDisplay  # noqa: E402


def _buttons(screen):
    return [(b.id, b.label) for b in screen.vehicle.buttons]


def test_back_reopens_the_car_and_the_corrected_vehicle_replaces_its_record(tmp_path):
    rig = Rig(tmp_path, handheld=HandheldConfig(enabled=True, summary_s=3.0))
    c = rig.controller
    c.press("start")
    rig.show(GREEN.payload)  # driver
    rig.away()
    rig.show(YELLOW.payload)  # passenger 1: yellow, refused at this checkpoint
    rig.away()
    c.press("finish")
    summary = rig.display.shown[-1]
    assert summary.kind == ScreenKind.VEHICLE_SUMMARY and summary.title == "Vehicle refused"
    assert _buttons(summary) == [("back", "Back to car"), ("next", "Next vehicle")]
    first = rig.vehicle_records
    assert len(first) == 1 and first[0]["verdict"] == "deny"  # recorded at Finish, durable at once
    session_id = first[0]["session_id"]

    c.press("back")  # the officer: "show me your ID card, please"
    assert c.phase == Phase.OPEN and c.session is not None and c.session.id == session_id
    shown = rig.display.shown[-1]
    assert shown.kind == ScreenKind.VEHICLE and [r.person for r in shown.vehicle.rows] == ["王*明", "李*"]
    assert ("finish", "Finish") in _buttons(shown)
    assert [e.kind for e in rig.events][-1] == "reopened"

    rig.show(YELLOW_ID_NUMBER)  # her ID card: a re-scan of seat 2, green
    rig.away()
    assert rig.adds()[-1] == "rescan" and len(c.session.occupants) == 2
    c.press("finish")
    assert rig.display.shown[-1].title == "Vehicle may pass"
    records = rig.vehicle_records
    assert len(records) == 2
    latest = records[-1]
    assert latest["session_id"] == session_id and latest["id"] != first[0]["id"]
    assert latest["verdict"] == "pass" and latest["extra"]["replaces"] == first[0]["id"]
    assert [len(o["attempts"]) for o in latest["occupants"]] == [1, 2]
    assert "replaces" not in first[0]["extra"]
    assert c.sessions_recorded == 2


def test_back_only_while_the_summary_is_up(tmp_path):
    rig = Rig(tmp_path, handheld=HandheldConfig(enabled=True, summary_s=2.0))
    c = rig.controller
    c.press("back")  # nothing finished yet: nothing happens
    assert c.phase == Phase.IDLE and c.session is None
    c.press("start")
    rig.show(GREEN.payload)
    rig.away()
    c.press("back")  # an open vehicle: no Back, and the tap changes nothing
    assert c.phase == Phase.OPEN and "back" not in dict(_buttons(rig.display.shown[-1]))
    c.press("finish")
    rig.clock.advance(2.1)
    c.tick()  # the verdict's time is up: the car has driven on
    assert c.phase == Phase.IDLE and rig.display.shown[-1].kind == ScreenKind.VEHICLE_IDLE
    assert "back" not in dict(_buttons(rig.display.shown[-1]))
    c.press("back")
    assert c.phase == Phase.IDLE and c.session is None and len(rig.vehicle_records) == 1


def test_a_vehicle_recorded_at_shutdown_offers_no_way_back(tmp_path):
    rig = Rig(tmp_path)
    c = rig.controller
    c.press("start")
    rig.show(GREEN.payload)
    rig.away()
    c.close()
    assert c.phase == Phase.SUMMARY and "back" not in dict(_buttons(c.screen()))
    c.press("back")
    assert c.session is None and len(rig.vehicle_records) == 1


# --- a tap on the real display ------------------------------------------------------------------------


def _outcome(n: int) -> CheckOutcome:
    return CheckOutcome(credential_kind="health_code", status="green", verdict=Verdict(VerdictKind.PASS, "ok"), offline=False,
                        latency_s=0.2, record_id=f"0190000{n}-0000-7000-8000-000000000000", person="王*明", durable=True,
                        credential_hash=f"{n:064x}", id_masked="1101**********002X")


@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_a_tap_on_back_on_the_drawn_summary_reopens_the_car(tmp_path, monkeypatch, language):
    from sentinel.outbox import Outbox

    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")
    display = PygameDisplay(DisplayConfig(type="pygame", width=800, height=480))
    controller = HandheldController(outbox=Outbox(tmp_path / "o.sqlite3", wall=WallClock()), device_id="d", site_id="s",
                                    display=display, language=language, battery=Battery("none"), ticker=False)
    try:
        controller.start()
        controller.on_outcome(_outcome(1))
        controller.finish()
        wait_until(lambda: display.current.kind == ScreenKind.VEHICLE_SUMMARY, what="the summary")
        wait_until(lambda: "back" in display._renderer.hits and "next" in display._renderer.hits, what="Back and Next drawn")
        hits = display._renderer.hits
        back, nxt = hits["back"], hits["next"]
        assert back.right <= nxt.x  # side by side, Next under the right thumb
        label = "返回本车" if language == "zh-CN" else "Back to car"
        assert any(d.text == label and not d.truncated for d in display._renderer.drawn)
        x, y = back.center
        display.handle_pointer("down", x, y)
        display.handle_pointer("up", x, y)
        wait_until(lambda: controller.phase == Phase.OPEN and controller.session is not None, what="the car reopened")
        wait_until(lambda: display.current.kind == ScreenKind.VEHICLE, what="the vehicle screen again")
        assert len(controller.session.occupants) == 1
    finally:
        controller.close()
        display.close()


def test_both_records_of_a_reopened_vehicle_reach_the_service_linked(tmp_path):
    """Uploaded to the reference service on loopback: the service keeps both (the earlier one was
    durable before Back was tapped), under one session id, the later one naming the earlier."""
    import requests

    from sentinel.client import ServiceClient
    from sentinel.service.seed import DEMO_DEVICE_ID, DEMO_DEVICE_TOKEN, DEMO_SITE
    from sentinel.service.server import ReferenceServer
    from sentinel.uploader import Uploader

    with ReferenceServer(tmp_path / "svc.sqlite3", seed="demo") as server:
        client = ServiceClient(server.url, DEMO_DEVICE_TOKEN, device_id=DEMO_DEVICE_ID, site_id=DEMO_SITE.id)
        rig = Rig(tmp_path)
        c = rig.controller
        c.press("start")
        rig.show(GREEN.payload)
        rig.away()
        rig.show(YELLOW.payload)
        rig.away()
        c.press("finish")
        c.press("back")
        rig.show(YELLOW_ID_NUMBER)
        rig.away()
        c.press("finish")
        result = Uploader(rig.outbox, client).drain(sleep=lambda s: None)
        assert result.complete
        answer = requests.get(f"{server.url}/v1/vehicle-sessions", headers={"Authorization": f"Bearer {DEMO_DEVICE_TOKEN}"}, timeout=10)
        answer.raise_for_status()
        sessions = sorted(answer.json()["sessions"], key=lambda s: s["id"])
        client.close()
    assert len(sessions) == 2 and sessions[0]["session_id"] == sessions[1]["session_id"]
    assert [s["verdict"] for s in sessions] == ["deny", "pass"]
    assert sessions[1]["extra"]["replaces"] == sessions[0]["id"]

"""The vehicle model, pure: plate formats, the keypad, who counts as whom, the vehicle's verdict,
and the record it makes (no pipeline, no clock, no I/O)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from sentinel.contract import RecordIn, RecordsUpload, VehicleSessionIn
from sentinel.handheld import session_record
from sentinel.policy import Verdict, VerdictKind
from sentinel.vehicle import (
    KEYPAD_CHARACTERS,
    KEYPAD_PROVINCES,
    PLATE_PATTERN,
    PROVINCES,
    AddKind,
    AttemptRole,
    Check,
    PlateEntry,
    VehicleSession,
    normalise_plate,
    plate_kind,
    plate_problem,
    seat_label,
    vehicle_reason_text,
)

T0 = datetime(2022, 4, 12, 6, 0, tzinfo=UTC)

# --- plates ------------------------------------------------------------------------------------------

PLATES = [
    # (typed, kind or None)
    ("沪A12345", "ordinary"),
    ("京AB12C3", "ordinary"),
    ("粤BZZZZZ", "ordinary"),
    ("琼A00000", "ordinary"),
    ("沪a·12345", "ordinary"),  # lower case and the dot on the plate are folded away
    ("沪Ａ１２３４５", "ordinary"),  # full-width, as some IMEs type
    (" 沪 A 1234 5 ", "ordinary"),
    ("沪AD12345", "new_energy_small"),
    ("粤BFA1234", "new_energy_small"),
    ("沪A12345D", "new_energy_large"),
    ("苏E54321F", "new_energy_large"),
    ("京A1234警", "police"),
    ("沪A1234学", "learner"),
    ("鲁B1234挂", "trailer"),
    ("沪A0001领", "consulate"),
    # wrong
    ("", None),
    ("沪A1234", None),  # one short
    ("沪A123456", None),  # new energy needs D/F in the right place
    ("沪AI2345", None),  # I is not used on plates
    ("沪A1O345", None),  # nor O
    ("沪112345", None),  # the issuing letter must be a letter
    ("港A12345", None),  # not a province abbreviation (cross-border plates are left out)
    ("AB12345", None),
    ("沪AD1234A", None),  # small new energy: four digits at the end
    ("沪A1234D5", None),
    ("沪A12345警", None),  # special plates have four characters before the suffix
    ("沪A123警4", None),
    ("沪A12345678", None),
    ("沪A-12;345", None),
]


@pytest.mark.parametrize(("typed", "kind"), PLATES, ids=[p[0] or "empty" for p in PLATES])
def test_plate_formats(typed, kind):
    assert plate_kind(typed) == kind
    assert (plate_problem(typed) is None) == (kind is not None)
    # the one regular expression (what the contract and the service check) agrees with the table
    assert bool(re.fullmatch(PLATE_PATTERN, normalise_plate(typed))) == (kind is not None)


def test_every_province_and_the_keypad_pages():
    assert len(PROVINCES) == 31 and len(set(PROVINCES)) == 31
    for p in PROVINCES:
        assert plate_kind(f"{p}A12345") == "ordinary"
    assert KEYPAD_PROVINCES == tuple(PROVINCES)
    assert "I" not in KEYPAD_CHARACTERS and "O" not in KEYPAD_CHARACTERS and set("警学挂领") <= set(KEYPAD_CHARACTERS)


def test_keypad_offers_only_keys_that_can_lead_to_a_plate():
    entry = PlateEntry()
    assert entry.page == "province"
    assert not entry.press("A")  # a letter first: refused
    assert entry.press("沪") and entry.page == "characters"
    assert not entry.allowed("1")  # the issuing letter must be a letter
    assert not entry.allowed("沪")
    for key in "A1234":
        assert entry.press(key)
    assert entry.allowed("5") and entry.allowed("警") and not entry.valid and entry.problem == "short"
    assert entry.press("5") and entry.valid and entry.text == "沪A12345"
    assert entry.allowed("D")  # 沪A12345D: a large new-energy plate
    assert not entry.allowed("警")  # no suffix after five characters
    entry.press("back")
    entry.press("警")
    assert entry.valid and entry.text == "沪A1234警"
    assert not entry.allowed("1")  # nothing after the suffix
    entry.press("page")
    assert entry.page == "province"
    entry.press("clear")
    assert entry.text == "" and entry.page == "province"
    assert PlateEntry().type("沪ad12345") and PlateEntry().type("京A1234警")
    partial = PlateEntry()
    assert not partial.type("沪AI2345") and partial.text == "沪A"  # stops at the refused key


# --- occupants ----------------------------------------------------------------------------------------

PASS = Verdict(VerdictKind.PASS, "ok")
RED = Verdict(VerdictKind.DENY, "red_code")
EXPIRED = Verdict(VerdictKind.DENY, "expired_code")
YELLOW = Verdict(VerdictKind.MANUAL_CHECK, "yellow_code")
OFFLINE_PASS = Verdict(VerdictKind.PASS, "offline_allowed")

_n = iter(range(1, 10_000))


def check(h: str, verdict: Verdict = PASS, name: str = "", id_masked: str = "", kind: str = "health_code", offline: bool = False) -> Check:
    n = next(_n)
    return Check(
        record_id=f"0190f0a0-0000-7000-8000-{n:012d}",
        credential_kind=kind,
        credential_hash=(h * 64)[:64],
        status="green" if verdict.kind == VerdictKind.PASS and not offline else "red",
        verdict=verdict,
        offline=offline,
        name_masked=name,
        id_masked=id_masked,
        at=T0,
    )


def vehicle() -> VehicleSession:
    return VehicleSession(T0)


# (steps, expected add kinds, expected (seat, verdict reason, duplicates, rescanned) per occupant)
RULES = [
    pytest.param([("a", PASS), ("b", PASS), ("c", PASS)], ["new", "new", "new"],
                 [(1, "ok", 0, False), (2, "ok", 0, False), (3, "ok", 0, False)], id="three people"),
    pytest.param([("a", PASS), ("b", PASS), ("a", PASS)], ["new", "new", "duplicate"],
                 [(1, "ok", 1, False), (2, "ok", 0, False)], id="same code again: flagged, not counted"),
    pytest.param([("a", PASS), ("a", RED)], ["new", "duplicate"],
                 [(1, "ok", 1, False)], id="a duplicate cannot undo a pass"),
    pytest.param([("a", PASS), ("b", RED), ("b", PASS)], ["new", "new", "rescan"],
                 [(1, "ok", 0, False), (2, "ok", 0, True)], id="failed, same code again: latest counts"),
    pytest.param([("a", PASS), ("b", OFFLINE_PASS), ("b", PASS)], ["new", "new", "duplicate"],
                 [(1, "ok", 0, False), (2, "offline_allowed", 1, False)], id="offline pass is a pass"),
]


@pytest.mark.parametrize(("steps", "kinds", "occupants"), RULES)
def test_duplicate_and_rescan_rules(steps, kinds, occupants):
    v = vehicle()
    got = [v.add(check(h, verdict)).kind.value for h, verdict in steps]
    assert got == kinds
    assert [(o.seat, o.verdict.reason, o.duplicates, o.rescanned) for o in v.occupants] == occupants


def test_a_refreshed_code_is_a_new_token_so_staff_arm_the_rescan():
    """An expired code has no identity and the refreshed one is a new hash: without staff it is
    a new person; with the row tapped it replaces the failed result, and both stay on record."""
    v = vehicle()
    v.add(check("a", PASS, "王*明", "1101**********002X"))
    assert v.add(check("b", EXPIRED)).kind == AddKind.NEW
    assert not v.arm_rescan(1)  # a passed person is not re-scanned
    assert v.arm_rescan(2) and v.rescan_seat == 2
    result = v.add(check("c", PASS, "赵*", "3101**********0043"))
    assert result.kind == AddKind.RESCAN and result.occupant.seat == 2 and v.rescan_seat is None
    assert [a.role for a in v.occupant(2).attempts] == [AttemptRole.FIRST, AttemptRole.RESCAN]
    assert v.occupant(2).passed and v.occupant(2).name_masked == "赵*"
    assert len(v.occupants) == 2
    # without the tap, the same refreshed code would have been a third person
    w = vehicle()
    w.add(check("a"))
    w.add(check("b", EXPIRED))
    assert w.add(check("c")).kind == AddKind.NEW and len(w.occupants) == 3
    # tapping the armed row again disarms it
    assert w.arm_rescan(2) and w.arm_rescan(2) and w.rescan_seat is None


def test_same_person_by_masked_identity_across_credential_kinds():
    v = vehicle()
    v.add(check("a", YELLOW, "李*", "3101**********1234"))
    # the ID card of the same person (other kind, other hash, same masked name and ID): a re-scan
    r = v.add(check("b", PASS, "李*", "3101**********1234", kind="id_number"))
    assert r.kind == AddKind.RESCAN and v.occupant(1).passed
    # once passed, the code again is a duplicate
    assert v.add(check("a", YELLOW, "李*", "3101**********1234")).kind == AddKind.DUPLICATE
    # the same masked name with another masked ID is another person (two 李* in one car)
    assert v.add(check("c", PASS, "李*", "4403**********0011")).kind == AddKind.NEW
    # no identity at all (a timeout) never matches by identity
    assert v.add(check("d", OFFLINE_PASS, offline=True)).kind == AddKind.NEW
    assert len(v.occupants) == 3


def test_refused_payloads_and_full_and_closed_vehicles_are_not_added():
    v = VehicleSession(T0, max_occupants=2)
    assert v.add(Check(None, None, None, None, Verdict(VerdictKind.DENY, "unrecognised"))).kind == AddKind.IGNORED
    v.add(check("a"))
    v.add(check("b"))
    assert v.add(check("c")).kind == AddKind.IGNORED and len(v.occupants) == 2
    assert v.add(check("a")).kind == AddKind.DUPLICATE  # a duplicate is still flagged on a full vehicle
    v.finish(T0 + timedelta(seconds=5))
    assert v.add(check("d")).kind == AddKind.IGNORED and not v.open


VERDICTS = [
    pytest.param([("a", PASS), ("b", PASS)], (VerdictKind.PASS, "all_passed", ()), id="all pass"),
    pytest.param([("a", PASS), ("b", RED), ("c", YELLOW)], (VerdictKind.DENY, "occupant_denied", (2,)), id="deny wins"),
    pytest.param([("a", PASS), ("c", YELLOW)], (VerdictKind.MANUAL_CHECK, "occupant_manual_check", (2,)), id="staff check"),
    pytest.param([("a", PASS), ("b", PASS), ("a", PASS)], (VerdictKind.MANUAL_CHECK, "duplicate_code", (1,)), id="shown twice"),
    pytest.param([("a", PASS), ("b", RED), ("b", PASS)], (VerdictKind.PASS, "all_passed", ()), id="re-scan fixed it"),
    pytest.param([], (VerdictKind.MANUAL_CHECK, "no_occupants", ()), id="empty"),
]


@pytest.mark.parametrize(("steps", "expected"), VERDICTS)
def test_vehicle_verdict(steps, expected):
    v = vehicle()
    for h, verdict in steps:
        v.add(check(h, verdict))
    got = v.verdict()
    assert (got.kind, got.reason, got.seats) == expected


def test_verdict_and_seat_words():
    v = vehicle()
    for h, verdict in (("a", PASS), ("b", RED), ("c", RED)):
        v.add(check(h, verdict))
    verdict = v.verdict()
    assert vehicle_reason_text(verdict, "zh-CN") == "乘客1、乘客2未通过"
    assert vehicle_reason_text(verdict, "en") == "Passenger 1, Passenger 2: refused"
    assert [seat_label(n, "zh-CN") for n in (1, 2, 3)] == ["驾驶员", "乘客1", "乘客2"]


# --- the record ---------------------------------------------------------------------------------------


def test_session_record_holds_plate_occupants_attempts_and_no_token():
    v = vehicle()
    v.set_plate("沪a12345")
    v.add(check("a", PASS, "王*明", "1101**********002X"))
    v.add(check("b", EXPIRED))
    v.arm_rescan(2)
    v.add(check("c", PASS, "赵*", "3101**********0043"))
    v.add(check("a", PASS, "王*明", "1101**********002X"))  # the driver's code again
    v.add(check("e", OFFLINE_PASS, offline=True))
    v.finish(T0 + timedelta(seconds=9))
    record = session_record(v, "demo-device", "demo-site")
    body = json.loads(record.model_dump_json())
    assert body["kind"] == "vehicle_session" and body["plate"] == "沪A12345"
    assert body["verdict"] == "manual_check" and body["reason"] == "duplicate_code" and body["mode"] == "offline"
    assert body["session_id"] == v.id and body["closed_by"] == "finish"
    seats = {o["seat"]: o for o in body["occupants"]}
    assert [a["role"] for a in seats[1]["attempts"]] == ["first", "duplicate"] and seats[1]["duplicate"]
    assert [a["role"] for a in seats[2]["attempts"]] == ["first", "rescan"] and seats[2]["rescanned"]
    assert seats[2]["verdict"] == "pass" and seats[2]["record_id"] == seats[2]["attempts"][1]["record_id"]
    assert seats[2]["credential_hash"] == "c" * 64
    assert seats[3]["attempts"][0]["mode"] == "offline"
    assert body["extra"]["duration_s"] == 9.0
    # masked names are in the check records only; the vehicle links to them by record id
    assert "王*明" not in record.model_dump_json()
    # the upload model takes it beside check records, told apart by kind
    upload = RecordsUpload(records=[body, _check_record()])
    assert isinstance(upload.records[0], VehicleSessionIn) and isinstance(upload.records[1], RecordIn)


def _check_record() -> dict:
    return {
        "id": "0190f0a0-0000-7000-8000-000000000001", "created_at": T0.isoformat(), "device_id": "demo-device",
        "site_id": "demo-site", "credential_kind": "health_code", "credential_hash": "a" * 64, "person": None,
        "status": "green", "verdict": "pass", "reason": "ok", "mode": "online",
    }


@pytest.mark.parametrize(
    "change",
    [
        {"plate": "沪A1234"},  # not a plate
        {"plate": "沪a12345"},  # not normalised
        {"occupants": []},
        {"reason": "Bad Reason"},
        {"kind": "vehicle"},
        {"extra": {"k": "v" * 1100}},
        {"token": "x"},
    ],
)
def test_session_records_refuse(change):
    v = vehicle()
    v.add(check("a"))
    v.finish(T0)
    body = {**json.loads(session_record(v, "d", "s").model_dump_json()), **change}
    with pytest.raises(ValidationError):
        RecordsUpload(records=[body])


def test_vehicle_modules_import_no_hardware_or_ui_library():
    import subprocess
    import sys

    from tests.test_import_isolation import FORBIDDEN

    modules = ["sentinel.vehicle", "sentinel.handheld", "hardware.camera.gated", "sentinel.contract", "ui.samples"]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "import ui.samples; ui.samples.vehicle_samples('en')\n"
        f"print(','.join(m for m in {FORBIDDEN!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"imported: {result.stdout.strip()}"

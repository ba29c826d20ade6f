"""The handheld's screens (idle, an open vehicle, the plate keypad, the verdict), their words from
the message catalogue (`handheld.*` in sentinel/locale): pure functions of a `VehicleSession`, called by the controller, the
samples and the tests. Nothing here draws or blocks.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import tzinfo
from typing import Any

from sentinel.locale import message, pairs
from sentinel.policy import VerdictKind
from sentinel.screens import (
    Button,
    Icon,
    KeypadView,
    OccupantRow,
    Screen,
    ScreenKind,
    VehicleView,
)
from sentinel.vehicle import (
    PlateEntry,
    VehicleSession,
    VehicleVerdict,
    seat_label,
    vehicle_reason_text,
)

log = logging.getLogger("sentinel.handheld")

#: name → (zh-CN, en) of the `handheld.*` messages (kept for `sentinel.handheld.TEXT`)
TEXT: dict[str, tuple[str, str]] = pairs("handheld")


def text(key: str, language: str, **params: Any) -> str:
    """The vehicle screens' words: the message `handheld.<key>` in sentinel/locale."""
    return message(f"handheld.{key}", language, **params)


_SUMMARY_KEY = {VerdictKind.PASS: "summary_pass", VerdictKind.DENY: "summary_deny", VerdictKind.MANUAL_CHECK: "summary_manual"}
_VERDICT_ICON = {VerdictKind.PASS: Icon.PASS, VerdictKind.DENY: Icon.DENY, VerdictKind.MANUAL_CHECK: Icon.MANUAL}
_VERDICT_SCREEN = {VerdictKind.PASS: ScreenKind.PASS, VerdictKind.DENY: ScreenKind.DENY, VerdictKind.MANUAL_CHECK: ScreenKind.MANUAL_CHECK}


def _row(occupant, lang: str, armed: bool) -> OccupantRow:
    flags = []
    if occupant.duplicates:
        flags.append(text("flag_duplicate", lang) if occupant.duplicates == 1 else text("flag_duplicate_n", lang, n=occupant.duplicates))
    if occupant.rescanned:
        flags.append(text("flag_rescanned", lang))
    if occupant.offline and not occupant.verdict.reason.startswith("offline"):  # "offline_allowed" says it already
        flags.append(text("flag_offline", lang))
    return OccupantRow(
        seat=occupant.seat,
        label=seat_label(occupant.seat, lang),
        person=occupant.name_masked,
        verdict=occupant.verdict.kind.value,
        text=occupant.verdict.text(lang),
        flags=tuple(flags),
        button="" if occupant.passed else f"rescan:{occupant.seat}",
        armed=armed,
        chip="" if occupant.passed else text("chip_armed" if armed else "chip", lang),
    )


def _rows(session: VehicleSession, lang: str) -> tuple[OccupantRow, ...]:
    return tuple(_row(o, lang, session.rescan_seat == o.seat) for o in session.occupants)


def _counts(session: VehicleSession, lang: str) -> str:
    c = session.counts()
    if not c["occupants"]:
        return ""
    failed = c["occupants"] - c["passed"]
    return text("counts", lang, n=c["occupants"], f=failed) if failed else text("counts_all", lang, n=c["occupants"])


def _plate_hint(session: VehicleSession, lang: str) -> str:
    return "" if session.plate else text("no_plate", lang)


def session_screen(session: VehicleSession, lang: str, card: Screen | None, *, cue: ScreenKind | None = None, plate_button: bool = True,
                   pages_back: int = 0) -> Screen:
    title = text("vehicle_plate", lang, plate=session.plate) if session.plate else text("vehicle", lang)
    buttons = []
    if plate_button:
        buttons.append(Button("plate", text("plate", lang)))
    if session.occupants:
        # a re-scan is pending: finishing now would judge the car on the failed check (tap the
        # armed row again to cancel the re-scan, then finish)
        buttons.append(Button("finish", text("finish", lang), primary=True, enabled=session.rescan_seat is None))
    else:
        buttons.append(Button("cancel", text("cancel", lang)))
    view = VehicleView(
        plate=session.plate or "",
        plate_hint=_plate_hint(session, lang),
        rows=_rows(session, lang),
        more=text("more", lang),
        newest=text("newest", lang),
        pages_back=pages_back,
        counts=_counts(session, lang),
        check=card,
        buttons=tuple(buttons),
        camera_on=True,
        cue=cue,
    )
    if session.occupants:
        message, hint = text("checked_n", lang, n=len(session.occupants)), ""
    else:
        message, hint = text("driver_first", lang), text("then_passengers", lang)
    return Screen(ScreenKind.VEHICLE, message, title=title, hint=hint, language=lang, vehicle=view)


def plate_screen(entry: PlateEntry, lang: str, *, has_plate: bool = False, cue: ScreenKind | None = None) -> Screen:
    """The keypad; a check made meanwhile is heard (its cue), and listed when the keypad closes."""
    problem = entry.problem
    if problem is None:
        message = text("plate_ok", lang)
    elif problem == "empty":
        message = text("plate_empty", lang)
    elif len(entry.text) == 1:
        message = text("plate_letter", lang)
    elif problem == "short":
        message = text("plate_short", lang)
    else:
        message = text("plate_bad", lang)
    keys = tuple(Button(f"key:{ch}", ch, enabled=entry.allowed(ch)) for ch in entry.keys())
    page_label = text("page_characters", lang) if entry.page == "province" else text("page_provinces", lang)
    actions = (
        Button("key:page", page_label),
        Button("key:back", text("back", lang), enabled=bool(entry.text)),
        Button("key:ok", text("ok", lang), enabled=entry.valid, primary=True),
        Button("key:skip", text("cancel", lang) if has_plate else text("skip", lang)),
    )
    keypad = KeypadView(label=text("plate_label", lang), text=entry.text, valid=entry.valid, message=message, keys=keys, actions=actions)
    return Screen(ScreenKind.PLATE, entry.text or message, title=text("plate_title", lang), hint=message, language=lang,
                  vehicle=VehicleView(keypad=keypad, camera_on=True, cue=cue))


def summary_screen(
    session: VehicleSession, verdict: VehicleVerdict, lang: str, *, cue: ScreenKind | None = None, tz: tzinfo | None = None,
    back: bool = True,
) -> Screen:
    """The vehicle's verdict; `back`: a Back button that reopens the vehicle (a missed passenger,
    a re-scan), beside Next vehicle."""
    title = text(_SUMMARY_KEY[verdict.kind], lang)
    message = vehicle_reason_text(verdict, lang)
    view = VehicleView(
        plate=session.plate or "",
        plate_hint=_plate_hint(session, lang),
        rows=tuple(replace(r, button="") for r in _rows(session, lang)),
        # the summary lists who failed first; this says who did not fit ({n} filled in when drawn)
        more=text("more_listed", lang),
        more_passed=text("more_passed", lang),
        counts=_counts(session, lang),
        buttons=((Button("back", text("back_to_vehicle", lang)),) if back else ()) + (Button("next", text("next", lang), primary=True),),
        cue=cue,
    )
    when = f"{session.finished_at.astimezone(tz):%H:%M:%S}" if session.finished_at else ""
    return Screen(ScreenKind.VEHICLE_SUMMARY, message, title=title, icon=_VERDICT_ICON[verdict.kind], offline=session.offline,
                  time=when, language=lang, vehicle=view)


def idle_screen(lang: str, last: VehicleSession | None = None, last_verdict: VehicleVerdict | None = None, *, trigger: bool = False) -> Screen:
    counts = ""
    if last is not None and last_verdict is not None:
        what = " ".join(x for x in (last.plate or "", text(_SUMMARY_KEY[last_verdict.kind], lang)) if x)
        counts = text("last_vehicle", lang, what=what)
    view = VehicleView(counts=counts, buttons=(Button("start", text("start", lang), primary=True),))
    return Screen(
        ScreenKind.VEHICLE_IDLE,
        text("start_hint_trigger" if trigger else "start_hint", lang),
        title=text("vehicle", lang),
        hint=text("camera_off", lang),
        language=lang,
        vehicle=view,
    )

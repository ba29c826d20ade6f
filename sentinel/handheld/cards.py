"""The cards of an open vehicle: what the latest check or the next person looks like inside the
vehicle screen (`sentinel.handheld.screens.session_screen` lays them out).

Pure: built from the vehicle and the check. A check whose status the screens cannot read counts
as `verify_failed` (a staff check), never as a colour.
"""

from __future__ import annotations

from dataclasses import replace

from sentinel.handheld.screens import text
from sentinel.health import HealthStatus, Person, Status
from sentinel.screens import Screen, ScreenKind
from sentinel.vehicle import AddKind, AddResult, Check, VehicleSession, seat_label


def prompt_card(session: VehicleSession | None, lang: str) -> Screen:
    """The card of an open vehicle between checks: who is next, or the seat armed for a re-scan."""
    hint = ""
    if session is not None and session.rescan_seat is not None:
        message = text("rescan_armed", lang, seat=seat_label(session.rescan_seat, lang))
        hint = text("rescan_armed_hint", lang)
    elif session is not None and session.occupants:
        message = text("next_person", lang)
    else:
        message = text("show_code", lang)
    return Screen(ScreenKind.IDLE, message, hint=hint, language=lang)


def result_card(add: AddResult, check: Check, result_screen: Screen | None, lang: str, session: VehicleSession | None) -> Screen:
    """The card of one check in a vehicle: the pipeline's verdict screen with the seat it took
    (or built from the check when the outcome came without one)."""
    base = result_screen or Screen.result(check.verdict, bare_status(check), lang, check.offline)
    occupant = add.occupant
    if add.kind == AddKind.DUPLICATE and occupant is not None:
        return Screen(
            ScreenKind.MANUAL_CHECK,
            text("duplicate_message", lang, seat=seat_label(occupant.seat, lang)),
            person=base.person,
            title=text("duplicate_title", lang),
            time=base.time,
            language=lang,
        )
    if add.kind == AddKind.RESCAN and occupant is not None:
        return replace(base, hint=text("seat_rescan", lang, seat=seat_label(occupant.seat, lang)))
    if add.kind == AddKind.NEW and occupant is not None:
        return replace(base, hint=seat_label(occupant.seat, lang))
    if add.kind == AddKind.IGNORED and check.credential_kind is not None and session is not None:
        return replace(base, hint=text("vehicle_full", lang, n=session.max_occupants))
    return base


def bare_status(check: Check) -> HealthStatus:
    """The status of a check as the screens need it; one they cannot read is `verify_failed`."""
    try:
        status = Status(check.status) if check.status else Status.VERIFY_FAILED
    except ValueError:
        status = Status.VERIFY_FAILED
    person = Person(name_masked=check.name_masked) if check.name_masked else None
    return HealthStatus(status=status, person=person if status.is_colour else None)

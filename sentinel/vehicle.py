"""A vehicle at a drive-through checkpoint: who in it was checked, with what result, and the
vehicle's verdict. Pure: no clock, no I/O, no pipeline; the handheld controller
(`sentinel.handheld`) feeds it one check at a time and records what it says.

**Plates.** Mainland plates (GA 36-2018), validated position by position so that the on-screen
keypad can offer only the keys that can still lead to a valid plate:

| kind | shape | example |
|---|---|---|
| ordinary (blue, yellow) | province + issuing letter + 5 letters or digits | 沪A12345, 京AB12C3 |
| new energy, small (green) | province + letter + D/F + a letter or digit + 4 digits | 沪AD12345, 粤BFA1234 |
| new energy, large | province + letter + 5 digits + D/F | 沪A12345D |
| police, learner, trailer, consulate | province + letter + 4 letters or digits + 警 / 学 / 挂 / 领 | 沪A1234警 |

The province is one of the 31 abbreviations (京津沪渝…); the issuing letter and every other letter
is A–Z without I and O (which read as 1 and 0). Separators (`·`, `-`, spaces) and full-width or
lower-case letters are accepted and normalised. Left out on purpose: 港/澳 (粤Z…港) cross-border
plates, embassy (使) plates, military plates and the pre-2007 formats; they are typed by staff as
"no plate" and the record says null.

**Occupants** (the issue's rules 3, made precise). Every check the pipeline makes during an open
vehicle becomes an *attempt*; attempts are grouped into *occupants* (seat 1 is the driver, then
passengers 1, 2, … in the order they were checked):

1. *Same credential again* (same `credential_hash`, i.e. the same code, or the same ID number,
   shown again after the pipeline's debounce window): if that occupant has **passed**, the new
   check is a *duplicate*: kept in the record, flagged on the occupant, **not counted** as a new
   person and not allowed to change the passed result. If that occupant has **not passed**
   (denied, staff check, offline), it is a *re-scan* and its result becomes the occupant's.
2. *Same person, other credential*: a check whose masked identity (masked name **and** masked ID,
   both non-empty, as the service returned them) equals an occupant's is treated as rule 1 for
   that occupant (e.g. an ID card after a failed code). A check without identity (expired code,
   timeout) never matches by identity.
3. *Re-scan armed by staff*: after tapping a failed occupant's row, the next check that is not
   rule 1 or 2 is that occupant's re-scan (a refreshed code is a new token, hence a new hash, and
   an expired code carries no identity: only staff know it is the same person).
4. Anything else is a new occupant.

The latest counted attempt is the occupant's result; every attempt (with its record id and
credential hash, never the token) stays in the session record.

**Vehicle verdict.** Deny when any occupant's result is deny; otherwise staff check when any is
a staff check; otherwise, when a credential was shown twice, staff check (`duplicate_code`: a
phone passed back for a passenger who has none is the classic trick, so the count is checked by
a person); otherwise pass.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sentinel.locale import message, pairs
from sentinel.policy import REASONS, Verdict, VerdictKind

# --- plates ---------------------------------------------------------------------------------------

#: the provinces' one-character abbreviations, in the order plate keypads show them
PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
#: letters on plates: A–Z without I and O
PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
DIGITS = "0123456789"
ALNUM = PLATE_LETTERS + DIGITS
#: the last character of special plates: police, learner (driving school), trailer, consulate
SUFFIXES = "警学挂领"
NEW_ENERGY = "DF"  # D: pure electric, F: other new energy

_P, _L, _A, _D, _E = frozenset(PROVINCES), frozenset(PLATE_LETTERS), frozenset(ALNUM), frozenset(DIGITS), frozenset(NEW_ENERGY)

#: kind → the set of characters allowed at each position
PLATE_SHAPES: dict[str, tuple[frozenset[str], ...]] = {
    "ordinary": (_P, _L, _A, _A, _A, _A, _A),
    "new_energy_small": (_P, _L, _E, _A, _D, _D, _D, _D),
    "new_energy_large": (_P, _L, _D, _D, _D, _D, _D, _E),
    "police": (_P, _L, _A, _A, _A, _A, frozenset("警")),
    "learner": (_P, _L, _A, _A, _A, _A, frozenset("学")),
    "trailer": (_P, _L, _A, _A, _A, _A, frozenset("挂")),
    "consulate": (_P, _L, _A, _A, _A, _A, frozenset("领")),
}
PLATE_MAX = max(len(shape) for shape in PLATE_SHAPES.values())


def _char_class(chars: frozenset[str]) -> str:
    return "[" + "".join(sorted(chars)) + "]"


def _shape_regex(shape: tuple[frozenset[str], ...]) -> str:
    return "".join(_char_class(c) for c in shape)


#: one regular expression for every accepted plate (normalised form), for the contract and docs
PLATE_PATTERN = "^(?:" + "|".join(_shape_regex(s) for s in PLATE_SHAPES.values()) + ")$"
_SEPARATORS = re.compile(r"[\s·•・.\-_]+")


def normalise_plate(text: str) -> str:
    """'沪a·12345' → '沪A12345': full-width and lower-case letters folded, separators dropped."""
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", text)).upper()


def plate_kind(text: str) -> str | None:
    """The plate's kind (a key of PLATE_SHAPES) when `text` is a valid plate, else None."""
    plate = normalise_plate(text)
    for kind, shape in PLATE_SHAPES.items():
        if len(plate) == len(shape) and all(ch in allowed for ch, allowed in zip(plate, shape)):
            return kind
    return None


def valid_plate(text: str) -> bool:
    return plate_kind(text) is not None


def plate_problem(text: str) -> str | None:
    """Why `text` is not (yet) a plate, as a code for the keypad's message; None when valid."""
    plate = normalise_plate(text)
    if plate_kind(plate):
        return None
    if not plate:
        return "empty"
    if plate[0] not in _P:
        return "province"
    if len(plate) > 1 and plate[1] not in _L:
        return "letter"
    if not can_extend(plate[:-1], plate[-1]) or len(plate) > PLATE_MAX:
        return "character"
    return "short"


def can_extend(prefix: str, ch: str) -> bool:
    """True when `prefix + ch` is the start of some valid plate (the keypad enables that key)."""
    text = prefix + ch
    return any(
        len(text) <= len(shape) and all(c in allowed for c, allowed in zip(text, shape)) for shape in PLATE_SHAPES.values()
    )


#: keypad pages: the provinces first, then letters, digits and the special suffixes
KEYPAD_PROVINCES = tuple(PROVINCES)
KEYPAD_CHARACTERS = tuple(DIGITS + PLATE_LETTERS + SUFFIXES)


@dataclass
class PlateEntry:
    """The on-screen plate keypad's state: keys are characters, or `back`, `clear`, `page`.

    The page follows the text (provinces while empty, characters after) unless staff turn it
    with `page`; a key that cannot lead to a valid plate is refused (and shown disabled)."""

    text: str = ""
    page_override: str | None = None

    @property
    def page(self) -> str:
        if self.page_override:
            return self.page_override
        return "province" if not self.text else "characters"

    def keys(self) -> tuple[str, ...]:
        return KEYPAD_PROVINCES if self.page == "province" else KEYPAD_CHARACTERS

    def allowed(self, ch: str) -> bool:
        return len(self.text) < PLATE_MAX and can_extend(self.text, ch)

    def press(self, key: str) -> bool:
        """Apply one key; False when it was refused (a character that cannot come next)."""
        if key == "back":
            self.text = self.text[:-1]
            self.page_override = None
            return True
        if key == "clear":
            self.text = ""
            self.page_override = None
            return True
        if key == "page":
            self.page_override = "characters" if self.page == "province" else "province"
            return True
        ch = normalise_plate(key)
        if len(ch) != 1 or not self.allowed(ch):
            return False
        self.text += ch
        self.page_override = None
        return True

    def type(self, text: str) -> bool:
        """Type a whole plate (a script, a hardware keyboard); stops at the first refused key."""
        return all(self.press(ch) for ch in normalise_plate(text))

    @property
    def valid(self) -> bool:
        return plate_kind(self.text) is not None

    @property
    def problem(self) -> str | None:
        return plate_problem(self.text)


# --- occupants and the vehicle -------------------------------------------------------------------


class AttemptRole(StrEnum):
    FIRST = "first"  # the occupant's first check
    RESCAN = "rescan"  # a later check that counts (after a failure)
    DUPLICATE = "duplicate"  # shown again after passing: kept, flagged, not counted


class AddKind(StrEnum):
    NEW = "new"
    RESCAN = "rescan"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"  # no credential (a payload refused on the device), or the vehicle is full or closed


@dataclass(frozen=True)
class Check:
    """One finished check as the vehicle needs it (from the pipeline's `CheckOutcome`)."""

    record_id: str | None
    credential_kind: str | None
    credential_hash: str | None
    status: str | None
    verdict: Verdict
    offline: bool = False
    name_masked: str = ""
    id_masked: str = ""
    at: datetime | None = None
    latency_s: float = 0.0

    @property
    def identity(self) -> tuple[str, str] | None:
        """Masked name and masked ID, when the service gave both (a code without identity: None)."""
        if self.name_masked and self.id_masked:
            return (self.name_masked, self.id_masked)
        return None


@dataclass(frozen=True)
class Attempt:
    check: Check
    role: AttemptRole


@dataclass
class Occupant:
    seat: int  # 1: the driver, then passengers in the order checked
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def counted(self) -> list[Attempt]:
        return [a for a in self.attempts if a.role != AttemptRole.DUPLICATE]

    @property
    def latest(self) -> Check:
        return self.counted[-1].check

    @property
    def verdict(self) -> Verdict:
        return self.latest.verdict

    @property
    def passed(self) -> bool:
        return self.verdict.kind == VerdictKind.PASS

    @property
    def duplicates(self) -> int:
        return sum(1 for a in self.attempts if a.role == AttemptRole.DUPLICATE)

    @property
    def rescanned(self) -> bool:
        return any(a.role == AttemptRole.RESCAN for a in self.attempts)

    @property
    def offline(self) -> bool:
        return self.latest.offline

    @property
    def name_masked(self) -> str:
        """The newest masked name any attempt brought (an expired code has none)."""
        for attempt in reversed(self.attempts):
            if attempt.check.name_masked:
                return attempt.check.name_masked
        return ""

    def hashes(self) -> set[str]:
        return {a.check.credential_hash for a in self.attempts if a.check.credential_hash}

    def identities(self) -> set[tuple[str, str]]:
        return {a.check.identity for a in self.attempts if a.check.identity}


@dataclass(frozen=True)
class AddResult:
    kind: AddKind
    occupant: Occupant | None = None


@dataclass(frozen=True)
class VehicleVerdict:
    kind: VerdictKind
    reason: str  # all_passed | occupant_denied | occupant_manual_check | duplicate_code | no_occupants
    seats: tuple[int, ...] = ()  # the occupants the verdict is about (who failed, who was shown twice)


#: the vehicle's reasons; the words are the messages `vehicle_reason.<reason>` in sentinel/locale,
#: `{who}` lists the seats in words
VEHICLE_REASONS: tuple[str, ...] = ("all_passed", "occupant_denied", "occupant_manual_check", "duplicate_code", "no_occupants")
VEHICLE_REASON_TEXT: dict[str, tuple[str, str]] = pairs("vehicle_reason", VEHICLE_REASONS)


def seat_label(seat: int, language: str) -> str:
    """'驾驶员' / 'Driver' for seat 1, '乘客1' / 'Passenger 1' for seat 2, …"""
    if seat == 1:
        return message("seat.driver", language)
    return message("seat.passenger", language, n=seat - 1)


def seats_text(seats: Iterable[int], language: str) -> str:
    return message("join.seats", language).join(seat_label(s, language) for s in seats)


def vehicle_reason_text(verdict: VehicleVerdict, language: str) -> str:
    return message(f"vehicle_reason.{verdict.reason}", language, who=seats_text(verdict.seats, language))


assert not set(REASONS) & set(VEHICLE_REASONS)  # one reason, one meaning


def new_id() -> str:
    """A time-ordered UUID (v7), as record ids are."""
    import uuid6

    return str(uuid6.uuid7())


class VehicleSession:
    """One vehicle, from "start" to "finish". Not thread-safe: the controller holds a lock."""

    def __init__(self, started_at: datetime, *, session_id: str | None = None, max_occupants: int = 9):
        self.id = session_id or new_id()
        self.started_at = started_at
        self.finished_at: datetime | None = None
        self.closed_by: str | None = None  # finish | timeout | shutdown | cancelled
        self.plate: str | None = None
        self.occupants: list[Occupant] = []
        self.max_occupants = max_occupants
        self.rescan_seat: int | None = None  # armed by staff: the next new check re-scans this seat

    # --- staff ---------------------------------------------------------------------------------------

    def set_plate(self, text: str | None) -> None:
        """A valid plate (normalised), or None for "no plate"; raises ValueError otherwise."""
        if text is None or text == "":
            self.plate = None
            return
        plate = normalise_plate(text)
        if plate_kind(plate) is None:
            raise ValueError(f"not a valid plate: {plate_problem(plate)}")
        self.plate = plate

    def arm_rescan(self, seat: int | None) -> bool:
        """Make the next new check a re-scan of `seat` (a failed occupant); None disarms. Tapping
        the armed seat again disarms it. False when the seat has passed or does not exist."""
        if seat is None or seat == self.rescan_seat:
            self.rescan_seat = None
            return True
        occupant = self.occupant(seat)
        if occupant is None or occupant.passed:
            return False
        self.rescan_seat = seat
        return True

    def occupant(self, seat: int) -> Occupant | None:
        return next((o for o in self.occupants if o.seat == seat), None)

    # --- checks ----------------------------------------------------------------------------------------

    @property
    def open(self) -> bool:
        return self.finished_at is None

    def add(self, check: Check) -> AddResult:
        """Apply the rules of the module docstring to one finished check."""
        if not self.open or check.credential_kind is None:
            return AddResult(AddKind.IGNORED)
        same = self._same_person(check)
        if same is not None:
            if same.passed:
                same.attempts.append(Attempt(check, AttemptRole.DUPLICATE))
                return AddResult(AddKind.DUPLICATE, same)
            same.attempts.append(Attempt(check, AttemptRole.RESCAN))
            if self.rescan_seat == same.seat:
                self.rescan_seat = None
            return AddResult(AddKind.RESCAN, same)
        if self.rescan_seat is not None:
            armed = self.occupant(self.rescan_seat)
            self.rescan_seat = None
            if armed is not None and not armed.passed:
                armed.attempts.append(Attempt(check, AttemptRole.RESCAN))
                return AddResult(AddKind.RESCAN, armed)
        if len(self.occupants) >= self.max_occupants:
            return AddResult(AddKind.IGNORED)
        occupant = Occupant(seat=len(self.occupants) + 1, attempts=[Attempt(check, AttemptRole.FIRST)])
        self.occupants.append(occupant)
        return AddResult(AddKind.NEW, occupant)

    def _same_person(self, check: Check) -> Occupant | None:
        if check.credential_hash:
            for occupant in self.occupants:
                if check.credential_hash in occupant.hashes():
                    return occupant
        identity = check.identity
        if identity is not None:
            for occupant in self.occupants:
                if identity in occupant.identities():
                    return occupant
        return None

    # --- the verdict ------------------------------------------------------------------------------------

    def verdict(self) -> VehicleVerdict:
        if not self.occupants:
            return VehicleVerdict(VerdictKind.MANUAL_CHECK, "no_occupants")
        denied = tuple(o.seat for o in self.occupants if o.verdict.kind == VerdictKind.DENY)
        if denied:
            return VehicleVerdict(VerdictKind.DENY, "occupant_denied", denied)
        manual = tuple(o.seat for o in self.occupants if o.verdict.kind == VerdictKind.MANUAL_CHECK)
        if manual:
            return VehicleVerdict(VerdictKind.MANUAL_CHECK, "occupant_manual_check", manual)
        shown_twice = tuple(o.seat for o in self.occupants if o.duplicates)
        if shown_twice:
            return VehicleVerdict(VerdictKind.MANUAL_CHECK, "duplicate_code", shown_twice)
        return VehicleVerdict(VerdictKind.PASS, "all_passed")

    @property
    def offline(self) -> bool:
        return any(o.offline for o in self.occupants)

    def finish(self, at: datetime, closed_by: str = "finish") -> VehicleVerdict:
        if self.finished_at is None:
            self.finished_at = at
            self.closed_by = closed_by
            self.rescan_seat = None
        return self.verdict()

    def counts(self) -> dict[str, int]:
        kinds = [o.verdict.kind for o in self.occupants]
        return {
            "occupants": len(self.occupants),
            "passed": kinds.count(VerdictKind.PASS),
            "denied": kinds.count(VerdictKind.DENY),
            "manual_check": kinds.count(VerdictKind.MANUAL_CHECK),
            "duplicates": sum(o.duplicates for o in self.occupants),
            "rescans": sum(1 for o in self.occupants for a in o.attempts if a.role == AttemptRole.RESCAN),
        }

"""What the screen should show, as data: the pipeline decides it, `ui/` draws it.

Keeping the model here lets the core be tested without pygame, and lets every display backend
(the pygame touchscreen, the console, none) show exactly the same thing. Every text a person
reads is decided here, in the configured language; `ui/` only lays it out, adds the status bar,
the icons and the technician menu's own words.

Colour is never the only signal: every screen also has an icon kind and a headline in words.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from enum import StrEnum

from sentinel.health import HealthStatus, Status
from sentinel.locale import N_, message, pair, plural
from sentinel.policy import Verdict, VerdictKind


class ScreenKind(StrEnum):
    IDLE = "idle"
    CHECKING = "checking"
    PASS = "pass"
    DENY = "deny"
    MANUAL_CHECK = "manual_check"
    UNKNOWN_CODE = "unknown_code"
    FAULT = "fault"
    ONE_AT_A_TIME = "one_at_a_time"  # several faces in view: the face matcher asks for one person
    # a code in view that could not be read (too small, blurred, a dim screen): the pipeline asks
    # for it closer and brighter; a request, not a verdict (no check, no record, no gate)
    HOLD_CLOSER = "hold_closer"
    # handheld vehicle checks (sentinel.handheld builds these; the screen's `vehicle` holds the rest)
    VEHICLE_IDLE = "vehicle_idle"  # no vehicle open: Start, the camera off
    VEHICLE = "vehicle"  # a vehicle open: the people checked so far and the latest check
    PLATE = "plate"  # the plate keypad
    VEHICLE_SUMMARY = "vehicle_summary"  # the vehicle's verdict


#: the handheld's screens: drawn by ui/vehicle.py, touched through their buttons
VEHICLE_KINDS = frozenset({"vehicle_idle", "vehicle", "plate", "vehicle_summary"})
#: screens drawn round the live camera view: the person adjusts the phone while reading them
CAMERA_KINDS = frozenset({"idle", "hold_closer"})


class Icon(StrEnum):
    """The symbol drawn next to the words, so that a colour-blind person reads the verdict too."""

    SCAN = "scan"  # a phone showing a code: "show your code"
    CHECKING = "checking"  # a spinner
    PASS = "pass"  # a tick
    DENY = "deny"  # a cross
    MANUAL = "manual"  # an exclamation mark
    UNKNOWN = "unknown"  # a question mark
    CAMERA = "camera"  # faults: the part that failed
    NETWORK = "network"
    GATE = "gate"
    FAULT = "fault"  # a fault of no particular part


_VERDICT_SCREEN = {
    VerdictKind.PASS: ScreenKind.PASS,
    VerdictKind.DENY: ScreenKind.DENY,
    VerdictKind.MANUAL_CHECK: ScreenKind.MANUAL_CHECK,
}

_DEFAULT_ICON = {
    ScreenKind.IDLE: Icon.SCAN,
    ScreenKind.CHECKING: Icon.CHECKING,
    ScreenKind.PASS: Icon.PASS,
    ScreenKind.DENY: Icon.DENY,
    ScreenKind.MANUAL_CHECK: Icon.MANUAL,
    ScreenKind.UNKNOWN_CODE: Icon.UNKNOWN,
    ScreenKind.FAULT: Icon.FAULT,
    ScreenKind.ONE_AT_A_TIME: Icon.MANUAL,
    ScreenKind.HOLD_CLOSER: Icon.SCAN,
    ScreenKind.VEHICLE_IDLE: Icon.SCAN,
    ScreenKind.VEHICLE: Icon.SCAN,
    ScreenKind.PLATE: Icon.SCAN,
    ScreenKind.VEHICLE_SUMMARY: Icon.MANUAL,
}

#: the words are messages in sentinel/locale: `screen.prompt.<kind>` (the prompts),
#: `screen.prompt_hint.<kind>`, `screen.headline.<kind>` (each verdict screen's headline; the
#: verdict's reason goes under it), `screen.fault.<part>`, `screen.nat_result.<result>`,
#: `screen.code_colour.<colour>`
_PROMPTS = frozenset({ScreenKind.IDLE, ScreenKind.CHECKING, ScreenKind.ONE_AT_A_TIME, ScreenKind.HOLD_CLOSER})
#: prompts shown in both languages: the site's large, the other one under it as the hint
_BILINGUAL_PROMPTS = frozenset({ScreenKind.IDLE, ScreenKind.HOLD_CLOSER})
#: on the idle screen while people are coming through (a verdict shortly before): the queue's rule
QUEUE_HINT = pair(N_("screen.queue_hint"))
#: the idle screen's help for a person without a phone (every site has staff; an ID number is
#: accepted by default, `policy.accept_id_number`): `screen.no_phone`

#: the parts a fault screen names (any other: `screen.fault.generic`)
FAULTS: tuple[str, ...] = ("camera", "network", "gate", "storage")  # storage: the record key cannot be written (kiosk.py)
_FAULT_ICON = {"camera": Icon.CAMERA, "network": Icon.NETWORK, "gate": Icon.GATE}

#: verdicts whose reason is about the device, not the person, are not drawn as a red refusal:
#: the device could not look the code up (offline) is an amber staff check, a device the service
#: does not accept is a fault. Only the screen differs: the verdict, the record and the gate
#: (shut on every non-pass) stay what the policy decided, and the voice follows the screen.
REASON_SCREEN: dict[str, ScreenKind] = {
    "offline_denied": ScreenKind.MANUAL_CHECK,
    "offline_no_cache": ScreenKind.MANUAL_CHECK,
    "device_unauthorized": ScreenKind.FAULT,
}

#: the offline banner: on a result decided offline, and on any screen while the network is down
OFFLINE_DECISION = pair(N_("screen.offline_decision"))
OFFLINE_MODE = pair(N_("screen.offline_mode"))


def other_language(language: str) -> str:
    return "en" if language == "zh-CN" else "zh-CN"


def nat_text(status: HealthStatus, now: datetime, language: str, tz: tzinfo | None = None) -> str:
    """'核酸阴性，04-11 18:03采样' / 'NAT negative, 04-11 18:03': the sampling time, in
    `tz` (default: this machine's), which a person can check against the rule; empty for a
    status without a person. A sample more than a week old also says its age in days."""
    if not status.status.is_colour:
        return ""
    nat = status.nat
    if nat is None:
        return message("screen.no_nat", language)
    result = message(f"screen.nat_result.{nat.result.value}", language)
    when = f"{nat.sampled_at.astimezone(tz):%m-%d %H:%M}"
    days = (now - nat.sampled_at).days
    if days >= 7:  # the month-day alone is ambiguous across a year
        when = f"{nat.sampled_at.astimezone(tz):%Y-%m-%d}"
    return message("screen.nat", language, result=result, when=when)


#: the codes whose colour is said in words on the card (colour is never the only signal)
_CODE_COLOURS = frozenset({Status.GREEN, Status.YELLOW, Status.RED})


def code_text(status: HealthStatus, language: str, reason: str = "") -> str:
    """'绿码 · 已接种3针' / 'Green code · 3 vaccine doses'; the colour is left out when the
    reason above already says it ("红码"), the doses when the answer has none."""
    parts = []
    colour = message(f"screen.code_colour.{status.status.value}", language) if status.status in _CODE_COLOURS else ""
    if colour and colour != reason:
        parts.append(colour)
    if status.status.is_colour and status.vaccination is not None:
        parts.append(plural("screen.doses", "screen.doses.plural", status.vaccination.doses, language))
    return message("join.parts", language).join(parts)


@dataclass(frozen=True)
class Button:
    """A touch target on a handheld screen; `id` is what the display reports when it is tapped."""

    id: str
    label: str
    enabled: bool = True
    primary: bool = False  # the main action (drawn stronger)


@dataclass(frozen=True)
class OccupantRow:
    """One person checked in the vehicle, as the list shows them."""

    seat: int
    label: str  # 驾驶员 / Passenger 1
    person: str  # masked name, or ""
    verdict: str  # pass | deny | manual_check: the row's colour and icon
    text: str  # the reason in words
    flags: tuple[str, ...] = ()  # 重复出示 / Shown twice, 已重扫 / Re-scanned, 离线 / Offline
    button: str = ""  # tapping the row (a failed person: arm a re-scan)
    armed: bool = False  # the next check re-scans this person
    chip: str = ""  # the words on the row's re-scan mark (重扫 / Re-scan), when it has a button


@dataclass(frozen=True)
class KeypadView:
    """The plate keypad: what is typed, whether it is a plate, the keys of the page shown."""

    label: str  # 车牌号 / Plate
    text: str
    valid: bool
    message: str  # what is missing or wrong, in words
    keys: tuple[Button, ...]  # ids key:<char>
    actions: tuple[Button, ...]  # page, back, ok, skip


@dataclass(frozen=True)
class VehicleView:
    """What a handheld's vehicle screens show besides the Screen's title and message."""

    plate: str = ""  # 沪A12345, or "" when none was entered
    plate_hint: str = ""  # "车牌未录入" when none
    rows: tuple[OccupantRow, ...] = ()
    more: str = ""  # "↑ 还有{n}人" / "↑ {n} more": shown (formatted) when not every row fits
    more_passed: str = ""  # on the summary, when everyone not listed passed: "另有{n}人通过"
    newest: str = ""  # the open vehicle's list paged back to the oldest rows: "↓ 回到最新" (tap: rows:newest)
    pages_back: int = 0  # how many pages of rows the open vehicle's list is turned back (tap "↑": rows:older)
    counts: str = ""  # "3人 · 未通过1人"
    check: "Screen | None" = None  # the latest check as a card (the pipeline's screen, or a duplicate notice)
    buttons: tuple[Button, ...] = ()
    keypad: KeypadView | None = None
    camera_on: bool = False  # the camera runs: show its view
    cue: ScreenKind | None = None  # a verdict sound to play once (the display's sound cues by kind)


@dataclass(frozen=True)
class Screen:
    kind: ScreenKind
    message: str  # the main line, in the configured language (the reason, on a verdict)
    person: str = ""  # masked name only
    person_id: str = ""  # masked ID number (3101**********1234): tells two "张*" apart
    code: str = ""  # the code's colour and vaccination in words: "绿码，已接种3针"
    nat: str = ""  # e.g. "核酸阴性，20小时前"
    offline: bool = False  # the verdict was decided offline: the banner says so
    title: str = ""  # the headline: "请通行", "禁止通行"…; empty on prompts
    hint: str = ""  # a smaller line: the other language on idle, "please wait" when checking
    second: str = ""  # a verdict in the other language, headline and reason ("Entry refused: Red code")
    time: str = ""  # when the verdict was made, local HH:MM:SS
    icon: Icon | None = None  # None: the kind's usual icon
    language: str = "zh-CN"
    failed_part: str = ""  # on a fault screen: camera, network, gate…
    help: str = ""  # on idle: what to do without a phone
    queue: str = ""  # on idle while the queue is moving: "一人一码，请保持1米距离" (the display sets it)
    reason: str = ""  # on a verdict: the policy's reason code (the voice prompt says it)
    vehicle: VehicleView | None = None  # the handheld's vehicle screens

    @property
    def icon_kind(self) -> Icon:
        return self.icon or _DEFAULT_ICON[self.kind]

    @property
    def lines(self) -> list[str]:
        """Every non-empty text, in reading order (for the console and for tests)."""
        return [t for t in (self.title, self.message, self.person, self.person_id, self.code, self.nat, self.time,
                            self.hint, self.second, self.help, self.queue) if t]

    @staticmethod
    def prompt(kind: ScreenKind, language: str, offline: bool = False) -> "Screen":
        if kind not in _PROMPTS:
            raise KeyError(kind)
        prompt = f"screen.prompt.{kind.value}"
        if kind in _BILINGUAL_PROMPTS:
            hint = message(prompt, other_language(language))  # shown in both languages
        else:
            hint = message(f"screen.prompt_hint.{kind.value}", language)
        help_ = message("screen.no_phone", language) if kind == ScreenKind.IDLE else ""
        return Screen(kind, message(prompt, language), offline=offline, hint=hint, language=language, help=help_)

    @staticmethod
    def result(
        verdict: Verdict,
        status: HealthStatus,
        language: str,
        offline: bool,
        now: datetime | None = None,
        tz: tzinfo | None = None,
    ) -> "Screen":
        """A verdict screen. `now` (timezone-aware; default: the current time) is shown as the
        date and time of the check, and the NAT's sampling time, in `tz` (default: this machine's
        local time zone). The other language's headline and reason go underneath, smaller."""
        now = now or datetime.now(UTC)
        kind = REASON_SCREEN.get(verdict.reason, _VERDICT_SCREEN[verdict.kind])
        person = status.person.name_masked if status.person else ""
        person_id = status.person.id_masked if status.person else ""
        title = _headline(kind, language)
        reason = verdict.text(language)
        reason = "" if reason == title else reason
        return Screen(
            kind,
            reason,
            person=person,
            person_id=person_id,
            code=code_text(status, language, reason),
            nat=nat_text(status, now, language, tz),
            offline=offline,
            title=title,
            time=f"{now.astimezone(tz):%Y-%m-%d %H:%M:%S}",
            language=language,
            second=_second(kind, verdict, language),
            failed_part="device" if kind == ScreenKind.FAULT else "",
            reason=verdict.reason,
        )

    @staticmethod
    def unknown_code(verdict: Verdict, language: str) -> "Screen":
        return Screen(
            ScreenKind.UNKNOWN_CODE,
            verdict.text(language),
            title=_headline(ScreenKind.UNKNOWN_CODE, language),
            hint=message("screen.prompt.idle", language),
            language=language,
            second=_second(ScreenKind.UNKNOWN_CODE, verdict, language),
            reason=verdict.reason,
        )

    @staticmethod
    def fault(fault: str, language: str) -> "Screen":
        words = f"screen.fault.{fault if fault in FAULTS else 'generic'}"
        return Screen(
            ScreenKind.FAULT,
            message(words, language),
            title=_headline(ScreenKind.FAULT, language),
            icon=_FAULT_ICON.get(fault, Icon.FAULT),
            language=language,
            failed_part=fault,
            second=message(words, other_language(language)),
        )


def _headline(kind: ScreenKind, language: str) -> str:
    return message(f"screen.headline.{kind.value}", language)


def _second(kind: ScreenKind, verdict: Verdict, language: str) -> str:
    """The verdict in the other language: 'Entry refused: Red code' under '禁止通行 / 红码'."""
    return _headline_and_reason(kind, verdict, other_language(language))


def _headline_and_reason(kind: ScreenKind, verdict: Verdict, language: str) -> str:
    title, reason = _headline(kind, language), verdict.text(language)
    return title if reason == title else message("screen.headline_reason", language, title=title, reason=reason)


def verdict_line(verdict: Verdict, language: str) -> str:
    """The verdict as one line, headline and reason, as its screen says it ('禁止通行：红码',
    'Staff will check: Network down: cannot look up your code'): for logs and the demo's output."""
    kind = REASON_SCREEN.get(verdict.reason, _VERDICT_SCREEN[verdict.kind])
    return _headline_and_reason(kind, verdict, language)


@dataclass(frozen=True)
class StatusBar:
    """The strip along the top of every screen; the kiosk provides it, the display polls it."""

    site_name: str = ""
    online: bool | None = None  # None: not known yet (nothing shown)
    outbox_depth: int | None = None  # records waiting for upload; None: not known
    alarm: str = ""  # e.g. "摄像头故障": shown in the bar until cleared
    time: datetime | None = None  # None: the display's own clock (local time)
    battery: int | None = None  # percent, where the hardware reports it; None: nothing shown
    charging: bool | None = None

"""What the screen should show, as data: the pipeline decides it, `ui/` draws it.

Keeping the model here lets the core be tested without pygame, and lets every display backend
(the pygame touchscreen, the console, none) show exactly the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sentinel.health import HealthStatus
from sentinel.policy import Verdict, VerdictKind


class ScreenKind(StrEnum):
    IDLE = "idle"
    CHECKING = "checking"
    PASS = "pass"
    DENY = "deny"
    MANUAL_CHECK = "manual_check"
    UNKNOWN_CODE = "unknown_code"
    FAULT = "fault"


_VERDICT_SCREEN = {
    VerdictKind.PASS: ScreenKind.PASS,
    VerdictKind.DENY: ScreenKind.DENY,
    VerdictKind.MANUAL_CHECK: ScreenKind.MANUAL_CHECK,
}

_PROMPTS = {
    ScreenKind.IDLE: ("请出示健康码", "Show your health code"),
    ScreenKind.CHECKING: ("正在核验…", "Checking…"),
}

_FAULTS = {
    "camera": ("摄像头无画面，请联系工作人员", "Camera not delivering frames: please call staff"),
}


@dataclass(frozen=True)
class Screen:
    kind: ScreenKind
    message: str  # the big line, in the configured language
    person: str = ""  # masked name only
    nat: str = ""  # e.g. "核酸 阴性 20小时前" — filled by the UI from the status if it wants
    offline: bool = False

    @staticmethod
    def prompt(kind: ScreenKind, language: str, offline: bool = False) -> "Screen":
        zh, en = _PROMPTS[kind]
        return Screen(kind, zh if language == "zh-CN" else en, offline=offline)

    @staticmethod
    def result(verdict: Verdict, status: HealthStatus, language: str, offline: bool) -> "Screen":
        person = status.person.name_masked if status.person else ""
        return Screen(_VERDICT_SCREEN[verdict.kind], verdict.text(language), person=person, offline=offline)

    @staticmethod
    def unknown_code(verdict: Verdict, language: str) -> "Screen":
        return Screen(ScreenKind.UNKNOWN_CODE, verdict.text(language))

    @staticmethod
    def fault(fault: str, language: str) -> "Screen":
        zh, en = _FAULTS[fault]
        return Screen(ScreenKind.FAULT, zh if language == "zh-CN" else en)

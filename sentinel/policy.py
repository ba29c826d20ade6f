"""Site policy: health status + the site's rules + now → verdict, with a reason a person can read.

Rules changed weekly in 2022, so every rule is configuration and this is a pure function: no
clock, no I/O, tested as a table. The reason code goes into the record; the texts go on screen.

It fails closed: only a green (or, where the site allows it, yellow) status can pass online, and
only `timeout` goes to the site's offline policy. Anything else, including `verify_failed` and a
status this code does not know (a newer contract, a bug), is a staff check, never a pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sentinel.config import PolicyConfig
from sentinel.health import HealthStatus, NatResult, Status
from sentinel.locale import message, pairs


class VerdictKind(StrEnum):
    PASS = "pass"
    DENY = "deny"
    MANUAL_CHECK = "manual_check"


#: the reason codes a verdict can carry. Each one's words are the message `reason.<code>` in
#: sentinel/locale: the words under the screen's headline. The headline already says the verdict
#: (禁止通行, 请人工核验…), so a reason never repeats it, and says what happened in plain words a
#: person in the queue understands. `{h}` is the NAT window in hours, `{n}` the required doses.
REASONS: tuple[str, ...] = (
    "ok", "red_code", "yellow_code", "yellow_denied", "green_not_allowed", "expired_code", "not_found",
    "nat_positive", "nat_missing", "nat_too_old", "vaccination", "unrecognised", "offline_allowed",
    "offline_denied", "offline_no_cache", "device_unauthorized", "verify_failed", "face_not_live",
    "face_staff_check", "record_failed", "outbox_full", "outbox_overdue",
)
#: reason code → (zh-CN, en) words, read from the catalogue (the tests and samples list them)
REASON_TEXT: dict[str, tuple[str, str]] = pairs("reason", REASONS)


@dataclass(frozen=True)
class Verdict:
    kind: VerdictKind
    reason: str  # one of REASONS
    params: tuple[tuple[str, int], ...] = ()

    def text(self, language: str) -> str:
        return message(f"reason.{self.reason}", language, **dict(self.params))


@dataclass(frozen=True)
class CachedStatus:
    """A status this device saw for the same credential, for the `cached` offline policy."""

    status: HealthStatus
    seen_at: datetime


def decide(status: HealthStatus, policy: PolicyConfig, now: datetime, cached: CachedStatus | None = None) -> Verdict:
    """The verdict for one check. `now` must be timezone-aware."""
    if isinstance(status.status, Status) and status.status.is_unreachable:
        return _decide_offline(policy, now, cached)
    return _decide_online(status, policy, now)


def _decide_offline(policy: PolicyConfig, now: datetime, cached: CachedStatus | None) -> Verdict:
    if policy.offline == "allow_and_flag":
        return Verdict(VerdictKind.PASS, "offline_allowed")
    if policy.offline == "cached":
        fresh = cached is not None and now - cached.seen_at <= timedelta(minutes=policy.cached_ttl_min)
        if fresh and not cached.status.status.is_unreachable:
            return _decide_online(cached.status, policy, now)
        return Verdict(VerdictKind.DENY, "offline_no_cache")
    return Verdict(VerdictKind.DENY, "offline_denied")


def _decide_online(status: HealthStatus, policy: PolicyConfig, now: datetime) -> Verdict:
    match status.status:
        case Status.DEVICE_UNAUTHORIZED:
            return Verdict(VerdictKind.DENY, "device_unauthorized")
        case Status.EXPIRED:
            return Verdict(VerdictKind.DENY, "expired_code")
        case Status.NOT_FOUND:
            return Verdict(VerdictKind.MANUAL_CHECK, "not_found")
        case Status.RED:
            return Verdict(VerdictKind.DENY, "red_code")
        case Status.YELLOW if "yellow" not in policy.allowed_colours:
            if policy.yellow == "deny":
                return Verdict(VerdictKind.DENY, "yellow_denied")
            return Verdict(VerdictKind.MANUAL_CHECK, "yellow_code")
        case Status.GREEN if "green" not in policy.allowed_colours:  # a site that only admits yellow is odd but valid
            return Verdict(VerdictKind.DENY, "green_not_allowed")
        case Status.GREEN | Status.YELLOW:
            pass  # an allowed colour: the site's NAT, antigen and vaccination rules decide below
        case _:  # verify_failed, or a status this code does not know: fail closed
            return Verdict(VerdictKind.MANUAL_CHECK, "verify_failed")

    if status.nat is not None and status.nat.result == NatResult.POSITIVE:
        return Verdict(VerdictKind.DENY, "nat_positive")
    if policy.nat_window_h != "none":
        problem = _nat_problem(status, policy.nat_window_h, now)
        if problem and not (policy.antigen_accepted and status.antigen == NatResult.NEGATIVE):
            return Verdict(VerdictKind.DENY, problem, (("h", policy.nat_window_h),))
    doses = status.vaccination.doses if status.vaccination else 0
    if doses < policy.min_vaccination_doses:
        return Verdict(VerdictKind.DENY, "vaccination", (("n", policy.min_vaccination_doses),))
    return Verdict(VerdictKind.PASS, "ok")


def _nat_problem(status: HealthStatus, window_h: int, now: datetime) -> str | None:
    nat = status.nat
    if nat is None or nat.result != NatResult.NEGATIVE:
        return "nat_missing"
    if now - nat.sampled_at > timedelta(hours=window_h):
        return "nat_too_old"
    return None

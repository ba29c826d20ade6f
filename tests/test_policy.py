"""Site policy as a table: (status, policy, now) → verdict and the reason shown to the person."""

from datetime import UTC, datetime, timedelta

import pytest

from sentinel.config import PolicyConfig
from sentinel.health import HealthStatus, Nat, NatResult, Person, Status, Vaccination
from sentinel.policy import REASON_TEXT, CachedStatus, Verdict, VerdictKind, decide

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def status(colour="green", nat_h=10.0, nat=NatResult.NEGATIVE, antigen=None, doses=3):
    return HealthStatus(
        status=Status(colour),
        person=Person(name_masked="王*明", id_masked="1101**********002X"),
        nat=None if nat_h is None else Nat(result=nat, sampled_at=NOW - timedelta(hours=nat_h)),
        antigen=antigen,
        vaccination=Vaccination(doses=doses),
    )


P = PolicyConfig
TABLE = [
    # status, policy, expected kind, expected reason
    (status(), P(), "pass", "ok"),
    (status("red"), P(), "deny", "red_code"),
    (status("yellow"), P(), "manual_check", "yellow_code"),
    (status("yellow"), P(yellow="deny"), "deny", "yellow_denied"),
    (status("yellow"), P(allowed_colours=["green", "yellow"]), "pass", "ok"),
    (HealthStatus(status=Status.EXPIRED), P(), "deny", "expired_code"),
    (HealthStatus(status=Status.NOT_FOUND), P(), "manual_check", "not_found"),
    (status(nat=NatResult.POSITIVE), P(), "deny", "nat_positive"),
    (status(nat_h=47.9), P(nat_window_h=48), "pass", "ok"),
    (status(nat_h=48.1), P(nat_window_h=48), "deny", "nat_too_old"),
    (status(nat_h=48.1), P(nat_window_h=72), "pass", "ok"),
    (status(nat_h=80), P(nat_window_h=72), "deny", "nat_too_old"),
    (status(nat_h=80), P(nat_window_h="none"), "pass", "ok"),
    (status(nat_h=None), P(nat_window_h=24), "deny", "nat_missing"),
    (status(nat=NatResult.PENDING), P(nat_window_h=24), "deny", "nat_missing"),
    (status(nat_h=30, antigen=NatResult.NEGATIVE), P(nat_window_h=24, antigen_accepted=True), "pass", "ok"),
    (status(nat_h=30, antigen=NatResult.NEGATIVE), P(nat_window_h=24), "deny", "nat_too_old"),
    (status(doses=1), P(min_vaccination_doses=2), "deny", "vaccination"),
    (status(doses=2), P(min_vaccination_doses=2), "pass", "ok"),
    (HealthStatus(status=Status.TIMEOUT), P(), "deny", "offline_denied"),
    (HealthStatus(status=Status.VERIFY_FAILED), P(offline="allow_and_flag"), "manual_check", "verify_failed"),  # never the offline policy
    (HealthStatus(status=Status.TIMEOUT), P(offline="cached"), "deny", "offline_no_cache"),
]


@pytest.mark.parametrize(("health", "policy", "kind", "reason"), TABLE)
def test_policy_table(health, policy, kind, reason):
    verdict = decide(health, policy, NOW)
    assert (verdict.kind.value, verdict.reason) == (kind, reason)


def test_red_code_is_refused_even_with_a_fresh_negative_nat():
    assert decide(status("red", nat_h=1), P(nat_window_h=24), NOW).kind == VerdictKind.DENY


def test_cached_status_decides_offline_within_ttl():
    cached = CachedStatus(status(), seen_at=NOW - timedelta(minutes=30))
    verdict = decide(HealthStatus(status=Status.TIMEOUT), P(offline="cached", cached_ttl_min=60), NOW, cached)
    assert verdict == Verdict(VerdictKind.PASS, "ok")


def test_cached_status_past_ttl_is_not_used():
    cached = CachedStatus(status(), seen_at=NOW - timedelta(minutes=61))
    verdict = decide(HealthStatus(status=Status.TIMEOUT), P(offline="cached", cached_ttl_min=60), NOW, cached)
    assert verdict.reason == "offline_no_cache"


def test_cached_status_still_obeys_the_nat_window_at_the_time_of_the_check():
    """A status cached an hour ago whose NAT was 47.5 h old then is 48.5 h old now."""
    cached = CachedStatus(status(nat_h=48.5), seen_at=NOW - timedelta(hours=1))
    verdict = decide(HealthStatus(status=Status.TIMEOUT), P(offline="cached", nat_window_h=48, cached_ttl_min=120), NOW, cached)
    assert verdict.reason == "nat_too_old"


@pytest.mark.parametrize(
    ("verdict", "zh", "en"),
    [
        (Verdict(VerdictKind.DENY, "nat_too_old", (("h", 48),)), "核酸超过48小时", "NAT older than 48 h"),
        (Verdict(VerdictKind.PASS, "ok"), "请通行", "Please pass"),
        (Verdict(VerdictKind.DENY, "offline_denied"), "网络中断，无法查询健康码", "Network down: cannot look up your code"),
        (Verdict(VerdictKind.DENY, "red_code"), "红码", "Red code"),
    ],
)
def test_reasons_read_in_both_languages(verdict, zh, en):
    assert verdict.text("zh-CN") == zh
    assert verdict.text("en") == en


def test_offline_verdicts_say_the_network_is_down():
    """Field complaint: offline mode that silently says 'invalid'."""
    for offline in ("deny", "cached", "allow_and_flag"):
        verdict = decide(HealthStatus(status=Status.TIMEOUT), P(offline=offline), NOW)
        assert "Network down" in verdict.text("en") and "网络中断" in verdict.text("zh-CN")


@pytest.mark.parametrize("reason", sorted(REASON_TEXT))
def test_no_reason_repeats_a_headline(reason):
    """The headline says the verdict; the reason under it says why, without saying it again
    ("禁止通行 / 红码，禁止通行" read twice)."""
    zh, en = REASON_TEXT[reason]
    if reason == "ok":  # the pass reason is the headline itself, and the screen leaves it out
        return
    for headline in ("禁止通行", "请人工核验", "无法识别", "设备故障"):
        assert headline not in zh, (reason, zh)
    for headline in ("entry refused", "staff will check", "not recognised", "out of order"):
        assert headline not in en.lower(), (reason, en)


@pytest.mark.parametrize("jargon", ["flagged", "known to the service", "delivering frames", "queue", "Offline:"])
def test_reasons_use_plain_words(jargon):
    assert not [en for _, en in REASON_TEXT.values() if jargon.lower() in en.lower()]


def test_a_site_that_admits_only_yellow_refuses_green_for_what_it_is_not_as_a_red_code():
    """policy.py used to give a refused green code the reason `red_code`: the screen said 红码 to a
    person holding a green one."""
    verdict = decide(status("green"), P(allowed_colours=["yellow"]), NOW)
    assert (verdict.kind, verdict.reason) == ("deny", "green_not_allowed")
    assert verdict.text("zh-CN") == "本场所不接受绿码" and verdict.text("en") == "Green code not accepted here"
    assert "红码" not in verdict.text("zh-CN") and "red" not in verdict.text("en").lower()

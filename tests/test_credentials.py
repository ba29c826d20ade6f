"""Credential rules: what is recognised on the device, what is refused before any network call."""

from datetime import date

import pytest

from sentinel.config import CredentialConfig
from sentinel.credentials import Credential, CredentialKind, CredentialRules, Debouncer, Rejection, id_check_digit, valid_id_number
from sentinel.demo_data import DEMO_PEOPLE, DEMO_UNKNOWN_PAYLOAD

RULES = CredentialRules(CredentialConfig())


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("11010519491231002X", True),  # the GB 11643 example number
        ("11010519491231002x", True),  # lower-case check character typed by hand
        ("110105194912310021", False),  # wrong check digit
        ("11010519491331002X", False),  # month 13
        ("11010518991231002X", False),  # born before 1900
        ("01010519491231002X", False),  # region cannot start with 0
        ("1101051949123100", False),  # too short
        ("11010519491231002Y", False),
    ],
)
def test_id_number_validation(number, valid):
    assert valid_id_number(number, today=date(2026, 11, 25)) is valid


def test_future_birth_date_is_invalid():
    first17 = "11010520301231002"
    assert not valid_id_number(first17 + id_check_digit(first17), today=date(2026, 11, 25))


def test_demo_people_are_health_codes_and_their_ids_are_valid():
    for person in DEMO_PEOPLE:
        result = RULES.classify(person.payload)
        assert result == Credential(CredentialKind.HEALTH_CODE, person.token)
        assert valid_id_number(person.id_number)


def test_id_number_payload():
    assert RULES.classify("11010519491231002x") == Credential(CredentialKind.ID_NUMBER, "11010519491231002X")


def test_id_numbers_refused_where_the_site_does_not_accept_them():
    rules = CredentialRules(CredentialConfig(accept_id_number=False))
    assert isinstance(rules.classify("11010519491231002X"), Rejection)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (DEMO_UNKNOWN_PAYLOAD, "unknown_format"),
        ("", "empty"),
        ("   \r\n", "empty"),
        ("https://healthcode.example/c/short", "unknown_format"),  # token too short for the pattern
        ("https://healthcode.example/c/G7kP2mQ9xW4tR8vL; rm -rf /", "unknown_format"),
        ("https://healthcode.example/c/G7kP2mQ9xW4tR8vL\x00", "binary"),
        ("ab\x07cd", "binary"),
        ("x" * 600, "too_long"),
        ("110105194912310021", "bad_id_number"),
    ],
)
def test_rejections_have_reasons(payload, reason):
    result = RULES.classify(payload)
    assert isinstance(result, Rejection)
    assert result.reason == reason


def test_oversized_checked_on_raw_bytes():
    result = RULES.classify("ok", raw=b"\x00" * 2000)
    assert isinstance(result, Rejection) and result.reason == "too_long"


def test_scanner_line_endings_are_tolerated():
    person = DEMO_PEOPLE[0]
    assert RULES.classify(person.payload + "\r\n") == Credential(CredentialKind.HEALTH_CODE, person.token)


def test_credential_repr_does_not_leak_the_token():
    person = DEMO_PEOPLE[0]
    text = repr(RULES.classify(person.payload))
    assert person.token not in text
    assert "health_code" in text


def test_debounce_same_credential_within_window_is_one_check():
    d = Debouncer(window_s=5)
    key = ("health_code", "abc")
    assert d.is_new(key, 0.0)
    assert not d.is_new(key, 1.0)
    assert not d.is_new(key, 5.5)  # each sighting restarts the window: held still, never re-triggers
    assert d.is_new(key, 11.0)  # gone for more than 5 s: a new check


def test_debounce_other_credentials_are_independent():
    d = Debouncer(window_s=5)
    assert d.is_new(("health_code", "a"), 0.0)
    assert d.is_new(("health_code", "b"), 0.1)
    assert not d.is_new(("health_code", "a"), 0.2)


def test_debounce_forget():
    d = Debouncer(window_s=5)
    d.is_new(("k", "v"), 0.0)
    d.forget(("k", "v"))
    assert d.is_new(("k", "v"), 0.1)

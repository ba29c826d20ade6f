"""The payload grammar is ASCII and exact: nothing outside it reaches the service.

Python's `\\d` matches Devanagari, Arabic-Indic and fullwidth digits, and `str.strip()` removes
NBSP, U+3000 and several control characters, so an ID number in foreign digits or a URL wrapped in
invisible characters used to be sent to the service. The property tests drive arbitrary text (and
near-misses built from good payloads) through `CredentialRules` and the kiosk pipeline with a
recording verifier: nothing raises, and the verifier is asked only about payloads in the grammar,
with exactly the ASCII token or ID number. Bounded (300 examples, no deadline) for a busy 2-core box.
"""

from __future__ import annotations

import re
import tempfile
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardware.gate import FakeGate
from sentinel.config import ConfigError, CredentialConfig, PolicyConfig, parse_config
from sentinel.credentials import Credential, CredentialKind, CredentialRules, Rejection, valid_id_number
from sentinel.demo_data import DEMO_HEALTH_CODE_PREFIX, DEMO_PEOPLE
from sentinel.outbox import Outbox
from sentinel.pipeline import Pipeline
from sentinel.records import RecordMaker
from sentinel.verifier import TableVerifier
from tests.helpers import T0, FakeClock, InlineExecutor
from ui.console import ConsoleDisplay

RULES = CredentialRules(CredentialConfig())
PERSON = DEMO_PEOPLE[0]
ID_NUMBER = "11010519491231002X"  # the GB 11643 example number

#: the grammar of the default config, written out independently of sentinel.credentials
_TRIM = " \t\r\n"
_HEALTH_CODE = re.compile(re.escape(DEMO_HEALTH_CODE_PREFIX) + r"([A-Za-z0-9_-]{16,64})", re.ASCII)
_ID_SHAPE = re.compile(r"[1-9][0-9]{16}[0-9Xx]", re.ASCII)

PROPERTY = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def in_grammar(payload: str) -> str | None:
    """What the service may be asked about for this payload (token or ID number), or None."""
    if len(payload.encode("utf-8", "surrogatepass")) > CredentialConfig().max_payload_bytes:
        return None
    text = payload.strip(_TRIM)
    if m := _HEALTH_CODE.fullmatch(text):
        return m.group(1)
    if _ID_SHAPE.fullmatch(text):
        return text.upper()
    return None


# --- the cases the audit found ------------------------------------------------------------------


def _digits(text: str, zero: str) -> str:
    """`text` with its ASCII digits written in another script's digits (same values)."""
    return "".join(chr(ord(zero) + int(c)) if c.isdigit() else c for c in text)


FOREIGN_ZEROS = {"devanagari": "\u0966", "arabic-indic": "\u0660", "fullwidth": "\uff10", "bengali": "\u09e6", "thai": "\u0e50"}


@pytest.mark.parametrize("script", list(FOREIGN_ZEROS))
def test_an_id_number_in_foreign_digits_is_refused(script):
    zero = FOREIGN_ZEROS[script]
    assert unicodedata.digit(zero) == 0
    for foreign in (_digits(ID_NUMBER, zero), ID_NUMBER[0] + _digits(ID_NUMBER[1:], zero)):  # all, or all but the first
        assert not valid_id_number(foreign)
        result = RULES.classify(foreign)
        assert isinstance(result, Rejection), result


WRAPPERS = {
    "nbsp": "\u00a0",
    "ideographic-space": "\u3000",
    "line-separator": "\u2028",
    "next-line": "\u0085",
    "file-separator": "\x1c",
    "unit-separator": "\x1f",
    "vertical-tab": "\x0b",
    "form-feed": "\x0c",
    "zero-width-space": "\u200b",
    "bom": "\ufeff",
    "nul": "\x00",
    "del": "\x7f",
}


@pytest.mark.parametrize("wrapper", list(WRAPPERS))
@pytest.mark.parametrize("payload", [PERSON.payload, ID_NUMBER], ids=["health-code", "id-number"])
def test_a_wrapped_payload_is_refused(payload, wrapper):
    w = WRAPPERS[wrapper]
    for wrapped in (w + payload, payload + w, w + payload + w, payload[:10] + w + payload[10:]):
        result = RULES.classify(wrapped)
        assert isinstance(result, Rejection), (wrapped, result)
        assert result.reason in ("binary", "not_ascii", "unknown_format")


def test_what_a_scanner_adds_is_still_trimmed():
    for end in ("\r\n", "\n", "\r", "\t", " "):
        assert RULES.classify(PERSON.payload + end) == Credential(CredentialKind.HEALTH_CODE, PERSON.token)
        assert RULES.classify(end + ID_NUMBER.lower() + end) == Credential(CredentialKind.ID_NUMBER, ID_NUMBER)


def test_a_site_pattern_with_unicode_classes_matches_ascii_only():
    rules = CredentialRules(CredentialConfig(health_code_patterns=[r"HC:(?P<token>\w{8}\d{4})"]))
    assert rules.classify("HC:abcdEFGH1234") == Credential(CredentialKind.HEALTH_CODE, "abcdEFGH1234")
    for odd in ("HC:abcdéFGH1234", "HC:abcdEFGH١٢٣٤", "HC:ａｂｃｄEFGH1234"):
        assert isinstance(rules.classify(odd), Rejection), odd


def test_a_pattern_that_is_not_ascii_is_a_config_error():
    with pytest.raises(ConfigError) as caught:
        parse_config({"credentials": {"health_code_patterns": ["健康码:(?P<token>[0-9]{8})"]}})
    assert "credentials.health_code_patterns" in caught.value.problems[0] and "ASCII" in caught.value.problems[0]


# --- properties: payload → rules → pipeline → verifier ----------------------------------------------


class Loop:
    """The kiosk pipeline with a recording verifier, inline, one payload at a time."""

    def __init__(self, folder: Path):
        self.clock = FakeClock()
        self.verifier = TableVerifier({})
        self.outbox = Outbox(folder / "outbox.sqlite3", wall=lambda: T0)
        self.pipeline = Pipeline(
            decoder=None,
            rules=CredentialRules(CredentialConfig()),
            verifier=self.verifier,
            policy=PolicyConfig(),
            records=RecordMaker("dev-1", "site-1", b"k" * 32),
            outbox=self.outbox,
            gate=FakeGate(pulse_s=1.0, clock=self.clock),
            display=ConsoleDisplay(),
            language="en",
            clock=self.clock,
            wall=lambda: T0,
            executor=InlineExecutor(),
        )

    def offer(self, payload: str) -> list[Credential]:
        """The verifier calls this payload caused."""
        before = len(self.verifier.calls)
        self.pipeline.offer_payload(payload)
        self.pipeline.step(None, paused=True)  # paused: no camera here, and that is no fault
        self.clock.advance(60.0)  # past the debounce window and the result screen: the next one is new
        self.pipeline.step(None, paused=True)
        return self.verifier.calls[before:]

    def close(self) -> None:
        self.pipeline.close()
        self.outbox.close()


def _check(loop: Loop, payload: str) -> None:
    expected = in_grammar(payload)
    result = RULES.classify(payload)  # never raises
    assert isinstance(result, Credential | Rejection)
    calls = loop.offer(payload)  # never raises
    if expected is None or (_ID_SHAPE.fullmatch(expected) and not valid_id_number(expected)):
        assert isinstance(result, Rejection), (payload, result)
        assert calls == [], payload
    else:
        assert isinstance(result, Credential) and result.value == expected, (payload, result)
        assert [c.value for c in calls] == [expected]
    for c in calls:
        assert c.value.isascii() and c.value.isprintable()


_ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=80)
_NEAR_MISS_CHARS = st.sampled_from(
    ["\u00a0", "\u3000", "\u2028", "\u0085", "\x1c", "\x00", "\x7f", "\u200b", "\ufeff", "\ufffd", "é", "\ud800", " ", "\t", "\r\n"]
)


@st.composite
def near_misses(draw) -> str:
    """Good payloads, bent: a character inserted or swapped, digits in another script, wrapped."""
    good = draw(st.sampled_from([p.payload for p in DEMO_PEOPLE] + [p.id_number for p in DEMO_PEOPLE] + [ID_NUMBER]))
    how = draw(st.sampled_from(["insert", "replace", "digits", "wrap"]))
    if how == "digits":
        return _digits(good, draw(st.sampled_from(list(FOREIGN_ZEROS.values()))))
    c = draw(_NEAR_MISS_CHARS | st.characters(codec=None))
    if how == "wrap":
        return c + good + draw(_NEAR_MISS_CHARS)
    i = draw(st.integers(0, len(good) - 1))
    return good[:i] + c + good[i + (how == "replace") :]


@pytest.fixture(scope="module")
def loop():
    with tempfile.TemporaryDirectory() as d:
        one = Loop(Path(d))
        yield one
        one.close()


@PROPERTY
@given(payload=_ANY_TEXT | near_misses())
def test_no_payload_outside_the_grammar_reaches_the_verifier(loop, payload):
    _check(loop, payload)


@PROPERTY
@given(
    token=st.from_regex(re.compile(r"[A-Za-z0-9_-]{16,64}", re.ASCII), fullmatch=True),
    end=st.sampled_from(["", "\r\n", "\n", " "]),
)
def test_every_health_code_in_the_grammar_reaches_the_verifier(loop, token, end):
    _check(loop, DEMO_HEALTH_CODE_PREFIX + token + end)

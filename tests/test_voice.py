"""Every verdict reason has a spoken prompt in both languages, shipped as a WAV file, short, and
saying what the screen says: the voice never refuses entry over an amber staff check or a fault.

The prompts are made by tools/make_sounds.py with espeak-ng and shipped in ui/sounds/, so this
test reads the real files (no synthesiser needed)."""

from __future__ import annotations

import wave

import pytest

from sentinel.health import HealthStatus, Status
from sentinel.policy import REASON_TEXT, Verdict, VerdictKind
from sentinel.screens import Screen, ScreenKind
from ui.sound import (
    CUES,
    REASON_VOICE,
    SOUNDS_DIR,
    VOICE_KIND,
    VOICE_TEXT,
    VOICES,
    cue_for,
    sound_file,
)

LANGUAGES = ("zh-CN", "en")
#: a prompt longer than this holds up the next person (the old zh fault prompt took 4.8 s)
LONGEST_S = 3.5


def seconds(path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


def test_every_reason_has_a_prompt():
    assert set(REASON_VOICE) == set(REASON_TEXT), set(REASON_TEXT) ^ set(REASON_VOICE)
    assert set(REASON_VOICE.values()) <= set(VOICES)
    assert set(VOICE_KIND) == set(VOICES)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("reason", sorted(REASON_TEXT))
def test_every_reason_is_spoken_in_both_languages_and_briefly(reason, language):
    voice = REASON_VOICE[reason]
    words = VOICE_TEXT[voice][LANGUAGES.index(language)]
    assert words.strip(), (reason, language)
    path = sound_file(f"voice:{voice}", language)
    assert path.is_file(), f"{path} missing: run tools/make_sounds.py"
    length = seconds(path)
    assert 0.3 < length <= LONGEST_S, (path.name, language, round(length, 2))


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_cue_names_a_shipped_file(language):
    names = {n for cue in CUES.values() for n in cue} | {f"voice:{v}" for v in VOICES}
    missing = [str(sound_file(n, language)) for n in names if not sound_file(n, language).is_file()]
    assert not missing and SOUNDS_DIR.is_dir(), missing


@pytest.mark.parametrize("kind", list(VerdictKind))
@pytest.mark.parametrize("reason", sorted(REASON_TEXT))
def test_the_voice_matches_the_screen(reason, kind):
    """Whatever verdict kind a reason comes with (the pipeline turns passes into staff checks),
    the prompt played is one made for the screen shown; a refusal is only spoken over red."""
    screen = Screen.result(Verdict(kind, reason, (("h", 48), ("n", 3))), HealthStatus(status=Status.GREEN), "zh-CN", False)
    voices = [n.partition(":")[2] for n in cue_for(screen) if n.startswith("voice:")]
    assert len(voices) == 1
    assert VOICE_KIND[voices[0]] == screen.kind
    said = VOICE_TEXT[voices[0]]
    if screen.kind != ScreenKind.DENY:
        assert "禁止通行" not in said[0] and "refused" not in said[1], (reason, kind, said)


def test_offline_and_unauthorised_device_are_not_spoken_as_refusals():
    """The field complaint: a network outage said 禁止通行 to a person with a green code."""
    for reason, expected in (("offline_denied", ScreenKind.MANUAL_CHECK), ("offline_no_cache", ScreenKind.MANUAL_CHECK),
                             ("device_unauthorized", ScreenKind.FAULT)):
        screen = Screen.result(Verdict(VerdictKind.DENY, reason), HealthStatus.unreachable(Status.TIMEOUT, "x"), "zh-CN", True)
        assert screen.kind == expected and screen.title != "禁止通行"
        spoken = [VOICE_TEXT[n.partition(":")[2]][0] for n in cue_for(screen) if n.startswith("voice:")]
        assert spoken and not any("禁止" in s for s in spoken), spoken


def test_a_red_code_says_why():
    screen = Screen.result(Verdict(VerdictKind.DENY, "red_code"), HealthStatus(status=Status.RED), "en", False)
    assert cue_for(screen) == ("tone:deny", "voice:red")
    assert VOICE_TEXT["red"] == ("红码，禁止通行", "Red code. Entry refused")

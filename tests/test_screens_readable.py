"""Readable from 1.5 m on the 7" 800×480 panel (5.2 px/mm): every line a person must read is at
least 7 mm (36 px) high, the reason under a headline is never smaller than what follows it, the
alarm is read in the banner without pushing the site name out of the status bar, and on the
1080×1920 pillar the card fills its column. Real pygame drawing (dummy SDL driver)."""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import pytest  # noqa: E402

pygame = pytest.importorskip("pygame", reason="pygame is a dev dependency (apt python3-pygame on the Pi)")

from ui.layout import LAYOUTS  # noqa: E402
from ui.render import Renderer  # noqa: E402
from ui.samples import ALARM, SAMPLE_NOW, SITE_NAME, samples  # noqa: E402
from ui.strings import text as ui_text  # noqa: E402

LANGUAGES = ["zh-CN", "en"]
SEVEN_MM = 36  # px on the 800×480 panel
#: what a person at the gate reads (the technician's menu and keypad are not theirs)
PUBLIC_ROLES = {"title", "message", "person", "code", "nat", "time", "second", "hint", "prompt", "help", "date",
                "clock", "banner", "status", "status_bold"}
CARD_ORDER = ["title", "message", "person", "code", "nat", "time", "hint", "second"]


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def drawn(renderer, sample, size):
    surface = pygame.Surface(size)
    renderer.draw(surface, sample.screen, sample.status, now=SAMPLE_NOW, menu=sample.menu, language=sample.screen.language)
    return list(renderer.drawn)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_public_line_is_at_least_7_mm_on_the_7_inch_panel(renderer, language):
    small = []
    for sample in samples(language, technician=False):
        for d in drawn(renderer, sample, LAYOUTS["landscape"]):
            if d.role in PUBLIC_ROLES and d.size < SEVEN_MM:
                small.append(f"{sample.name}: {d.role} {d.text!r} {d.size} px")
    assert not small, "\n".join(small)


@pytest.mark.parametrize("size", [LAYOUTS["landscape"], LAYOUTS["portrait"]], ids=["landscape", "portrait"])
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_reason_is_never_smaller_than_the_lines_under_it(renderer, size, language):
    for sample in samples(language, technician=False):
        texts = drawn(renderer, sample, size)
        reason = next((d for d in texts if d.role == "message"), None)
        if reason is None:
            continue
        after = [d for d in texts if d.role in CARD_ORDER[CARD_ORDER.index("message") + 1:]]
        assert all(reason.size >= d.size for d in after), (sample.name, reason.size, [(d.role, d.size) for d in after])


@pytest.mark.parametrize("size", [LAYOUTS["landscape"], LAYOUTS["portrait"]], ids=["landscape", "portrait"])
@pytest.mark.parametrize("language", LANGUAGES)
def test_an_alarm_is_readable_and_leaves_the_site_name_whole(renderer, size, language):
    sample = next(s for s in samples(language, technician=False) if s.name == "fault_camera")
    assert sample.status.alarm
    texts = drawn(renderer, sample, size)
    site = [d for d in texts if d.text == SITE_NAME[language]]
    assert site and not site[0].truncated, [(d.role, d.text, d.truncated) for d in texts]
    alarm = [d for d in texts if ALARM[language] in d.text]
    assert alarm and not alarm[0].truncated and alarm[0].size >= SEVEN_MM


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_status_bar_says_queue(renderer, language):
    """'Queue 37' reads as people queuing: the bar says records waiting to upload, in words where
    they fit beside the site name, else the upload icon and the number; the site name stays."""
    sample = next(s for s in samples("zh-CN", technician=False) if s.name == "fault_camera")
    words = [d.text for d in drawn(renderer, sample, LAYOUTS["portrait"])]
    assert "3条待上传" in words and SITE_NAME["zh-CN"] in words
    for size in LAYOUTS.values():
        for sample in samples(language, technician=False):
            words = [d.text for d in drawn(renderer, sample, size)]
            assert not [w for w in words if "Queue" in w or "待传 " in w]
            if sample.status.outbox_depth:
                assert {f"{sample.status.outbox_depth}", ui_text("outbox", language, n=sample.status.outbox_depth)} & set(words)


@pytest.mark.parametrize("name", ["pass", "deny_red", "manual"])
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_pillar_card_fills_its_column(renderer, name, language):
    """No empty band under the icon: the words run from near the icon to the lower fifth."""
    w, h = LAYOUTS["portrait"]
    sample = next(s for s in samples(language, technician=False) if s.name == name)
    texts = [d for d in drawn(renderer, sample, (w, h)) if d.role in CARD_ORDER]
    assert {"title", "person", "nat", "time", "second"} <= {d.role for d in texts}
    assert max(d.ink.bottom for d in texts) > 0.8 * h
    assert min(d.ink.y for d in texts) < 0.45 * h


@pytest.mark.parametrize("language", LANGUAGES)
def test_idle_has_a_clock_the_prompt_in_both_languages_and_help_without_a_phone(renderer, language):
    sample = next(s for s in samples(language, technician=False) if s.name == "idle")
    roles = {d.role: d for d in drawn(renderer, sample, LAYOUTS["portrait"])}
    assert roles["clock"].text == f"{SAMPLE_NOW:%H:%M}" and roles["clock"].size >= roles["prompt"].size * 0.9
    assert {"prompt", "hint", "help", "date"} <= set(roles)
    assert ("身份证" if language == "zh-CN" else "ID card") in roles["help"].text
    # on the 7" panel the status bar's clock (36 px) stands in for the big one when room is short
    landscape = {d.role for d in drawn(renderer, sample, LAYOUTS["landscape"])}
    assert {"prompt", "hint", "help"} <= landscape

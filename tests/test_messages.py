"""The message catalogue (sentinel/locale): every message in both languages with the same
placeholders, every id the code asks for present, the compiled .mo files the same as their .po
files, and a third language added by adding a file.

Babel (a dev dependency) reads and compiles the .po files here, as `pybabel compile` does."""

from __future__ import annotations

import re
import shutil
import string
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from sentinel.locale import CATALOGUE, DOMAIN, LOCALE_DIR, PAIR, Catalogue, message

ROOT = Path(__file__).resolve().parents[1]
LANGUAGES = ("zh_CN", "en")


def po(folder: str, root: Path = LOCALE_DIR) -> Catalog:
    with open(root / folder / "LC_MESSAGES" / f"{DOMAIN}.po", "rb") as f:
        return read_po(f)


def entries(catalog: Catalog) -> dict[str, tuple[str, ...]]:
    """msgid → its text(s): one, or one per plural form."""
    out = {}
    for m in catalog:
        if not m.id:
            continue
        key = m.id[0] if isinstance(m.id, tuple) else m.id
        out[key] = tuple(m.string) if isinstance(m.string, tuple | list) else (m.string,)
    return out


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_the_shipped_languages_are_zh_cn_and_en():
    assert set(PAIR) <= set(CATALOGUE.languages)


def test_every_message_exists_in_both_languages_with_the_same_placeholders():
    zh, en = entries(po("zh_CN")), entries(po("en"))
    assert len(en) > 200  # the whole catalogue, not an empty file that agrees with itself
    assert sorted(zh.keys() ^ en.keys()) == []
    empty = [(k, lang) for lang, cat in (("zh-CN", zh), ("en", en)) for k, texts in cat.items() if not all(t.strip() for t in texts)]
    assert not empty
    differing = [k for k in en if set().union(*map(fields, zh[k])) != set().union(*map(fields, en[k]))]
    # a message may leave out a field the other language needs (zh says the number, en the word)
    allowed = {"technician.unreachable", "technician.unsteady", "ui.date"}
    assert sorted(set(differing) - allowed) == []


def test_the_compiled_catalogues_are_the_po_files():
    """A .po edited without `pybabel compile -d sentinel/locale -D sentinel` would not be what runs.
    Compared message by message (gettext reading the shipped .mo against the .po), not byte by
    byte: another Babel release writes the same catalogue with other header bytes."""
    import gettext

    for folder in LANGUAGES:
        with (LOCALE_DIR / folder / "LC_MESSAGES" / f"{DOMAIN}.mo").open("rb") as f:
            shipped = gettext.GNUTranslations(f)
        catalog = po(folder)
        ids = [m.id for m in catalog if m.id]
        assert ids, folder
        for m in catalog:
            if not m.id:
                continue
            stale = f"{folder}: {m.id!r} differs from the .po: run pybabel compile -d sentinel/locale -D sentinel"
            if isinstance(m.id, (tuple, list)):
                for n, form in ((1, m.string[0]), (2, m.string[-1])):
                    assert shipped.ngettext(m.id[0], m.id[1], n) == form, stale
            else:
                assert shipped.gettext(m.id) == m.string, stale
        assert len(shipped._catalog) - 1 == sum(len(m.string) if isinstance(m.id, (tuple, list)) else 1 for m in catalog if m.id), (
            f"{folder}: the .mo holds messages the .po does not: run pybabel compile -d sentinel/locale -D sentinel")


#: calls that name a message literally: message("…"), N_("…"), pair("…"), plural("…", …)
_LITERAL = re.compile(r"""\b(?:message|N_|pair|plural|words)\(\s*["']([a-z_]+(?:\.[a-z0-9_]+)+)["']""")
#: ui.strings.text("key") and sentinel.handheld.screens.text("key") name `ui.key` / `handheld.key`
_SHORT = re.compile(r"""\b(?:text|ui_text)\(\s*["']([a-z_]+)["']""")


def _named_in_code() -> set[str]:
    found = set()
    for folder in ("sentinel", "ui"):
        for path in (ROOT / folder).rglob("*.py"):
            source = path.read_text(encoding="utf-8")
            found |= set(_LITERAL.findall(source))
            prefix = "handheld" if "handheld" in path.parts else "ui" if path.parts[-2] == "ui" else None
            if prefix:
                found |= {f"{prefix}.{key}" for key in _SHORT.findall(source)}
    return found


def _named_by_tables() -> set[str]:
    from sentinel.policy import REASONS
    from sentinel.screens import _BILINGUAL_PROMPTS, _PROMPTS, FAULTS, ScreenKind
    from sentinel.vehicle import VEHICLE_REASONS
    from ui.sound import VOICE_NAMES
    from ui.technician import MENU_BUTTONS

    ids = {f"reason.{r}" for r in REASONS} | {f"vehicle_reason.{r}" for r in VEHICLE_REASONS}
    ids |= {f"voice.{v}" for v in VOICE_NAMES} | {f"screen.fault.{f}" for f in (*FAULTS, "generic")}
    ids |= {f"screen.prompt.{k.value}" for k in _PROMPTS}
    ids |= {f"screen.prompt_hint.{k.value}" for k in _PROMPTS - _BILINGUAL_PROMPTS}
    ids |= {f"screen.headline.{k.value}" for k in (ScreenKind.PASS, ScreenKind.DENY, ScreenKind.MANUAL_CHECK,
                                                    ScreenKind.UNKNOWN_CODE, ScreenKind.FAULT)}
    ids |= {f"ui.{key}" for _, key in MENU_BUTTONS}
    ids |= {f"ui.weekday.{d}" for d in range(7)} | {f"ui.month.{m}" for m in range(1, 13)}
    return ids


def test_every_message_the_code_names_is_in_the_catalogue():
    named = _named_in_code() | _named_by_tables()
    assert len(named) > 150  # the scan finds the code's messages (a broken pattern finds none)
    missing = sorted(named - CATALOGUE.msgids())
    assert missing == []


def test_every_message_formats_in_every_language():
    for language in CATALOGUE.languages:
        for msgid in sorted(CATALOGUE.msgids()):
            text = message(msgid, language)
            text.format(**{name: 1 for name in fields(text)})  # a stray brace would raise here


def test_a_missing_message_or_language_never_raises():
    assert message("reason.red_code", "de") == "Red code"  # no German catalogue: English, as before
    assert message("no.such.message", "zh-CN") == "no.such.message"


def test_a_third_language_is_added_by_adding_a_file(tmp_path):
    """Copy the shipped catalogues, add fr/LC_MESSAGES/sentinel.mo (compiled from a .po as
    `pybabel compile` does): French is spoken, its missing messages fall back to English, and the
    two shipped languages are untouched."""
    shutil.copytree(LOCALE_DIR, tmp_path / "locale", ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    root = tmp_path / "locale"
    before = Catalogue(root)
    assert "fr" not in before.languages
    french = Catalog(locale="fr", domain=DOMAIN)
    french.add("screen.prompt.idle", "Montrez votre code sanitaire")
    french.add("reason.nat_missing", "Aucun test PCR de moins de {h} h")
    folder = root / "fr" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    with open(folder / f"{DOMAIN}.mo", "wb") as f:
        write_mo(f, french)

    catalogue = Catalogue(root)
    assert "fr" in catalogue.languages
    assert catalogue.message("screen.prompt.idle", "fr") == "Montrez votre code sanitaire"
    assert catalogue.message("reason.nat_missing", "fr", h=48) == "Aucun test PCR de moins de 48 h"
    assert catalogue.message("reason.red_code", "fr") == "Red code"  # not translated yet: English
    assert catalogue.message("screen.prompt.idle", "zh-CN") == "请出示健康码"
    assert catalogue.message("screen.prompt.idle", "en") == "Show your health code"


@pytest.mark.parametrize(("n", "zh", "en"), [(1, "已接种1针", "1 vaccine dose"), (3, "已接种3针", "3 vaccine doses")])
def test_plural_forms_follow_each_language(n, zh, en):
    from sentinel.locale import plural

    assert plural("screen.doses", "screen.doses.plural", n, "zh-CN") == zh
    assert plural("screen.doses", "screen.doses.plural", n, "en") == en

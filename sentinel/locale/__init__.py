"""Every word a person reads or hears (screens, voice prompts, the technician menu), one message
catalogue per language: gettext catalogues, managed with Babel, read with the standard library.

Layout: `sentinel/locale/<dir>/LC_MESSAGES/sentinel.po` (the words, edited by people) and its
compiled `sentinel.mo` (what runs), `<dir>` the language with `_` for `-` (`zh_CN` for zh-CN). The
message ids are names, not English sentences (`reason.red_code`, `handheld.plate_ok`), so that no
language is the source of another and one text can change without renaming its id; `{name}`
placeholders are `str.format` fields. `en` is the reference catalogue: it has every message.

Adding a language is adding a file (Babel is a dev dependency, not needed on the device):

    pybabel init -i sentinel/locale/en/LC_MESSAGES/sentinel.po -d sentinel/locale -D sentinel -l fr
    (translate sentinel/locale/fr/LC_MESSAGES/sentinel.po)
    pybabel compile -d sentinel/locale -D sentinel

After editing any .po, `pybabel compile` again: tests/test_messages.py fails while a .mo differs
from its .po, while a language lacks a message the reference has, or a placeholder differs.

How it fails: a language with no catalogue speaks English (as the kiosk always did for anything
but zh-CN); a message missing from a catalogue falls back to English, and one missing from English
too shows its id. Nothing here raises on a missing word: the kiosk keeps running.
"""

from __future__ import annotations

import gettext
from functools import lru_cache
from pathlib import Path

DOMAIN = "sentinel"
LOCALE_DIR = Path(__file__).resolve().parent
#: the reference language: every message is in it, and every other language falls back to it
REFERENCE = "en"
#: the two languages the kiosk has always spoken; (zh-CN, en) pairs are in this order
PAIR = ("zh-CN", "en")


def N_(msgid: str) -> str:
    """Marks a message id written in a table, to be looked up later (gettext's usual name)."""
    return msgid


def folder_name(language: str) -> str:
    return language.replace("-", "_")


class Catalogue:
    """The compiled catalogues of one folder, each loaded once."""

    def __init__(self, directory: Path = LOCALE_DIR, domain: str = DOMAIN) -> None:
        self.directory = Path(directory)
        self.domain = domain
        self._translations = lru_cache(maxsize=None)(self._load)

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages with a compiled catalogue here, as tags (zh-CN, en, …)."""
        found = self.directory.glob(f"*/LC_MESSAGES/{self.domain}.mo")
        return tuple(sorted(p.parent.parent.name.replace("_", "-") for p in found))

    def _load(self, language: str) -> gettext.NullTranslations:
        reference = gettext.translation(self.domain, self.directory, [folder_name(REFERENCE)], fallback=True)
        if language == REFERENCE:
            return reference
        found = gettext.translation(self.domain, self.directory, [folder_name(language)], fallback=True)
        if found is reference or type(found) is gettext.NullTranslations:
            return reference
        found.add_fallback(reference)
        return found

    def message(self, msgid: str, language: str, **params: object) -> str:
        """The message in `language`, its `{name}` fields filled from `params` (left as they are
        when none are given: some texts are filled in later, where the number is known)."""
        words = self._translations(language).gettext(msgid)
        return words.format(**params) if params else words

    def plural(self, msgid: str, msgid_plural: str, n: int, language: str, **params: object) -> str:
        """The form of the message for the number `n` (filled in as `{n}`)."""
        return self._translations(language).ngettext(msgid, msgid_plural, n).format(n=n, **params)

    def msgids(self, language: str = REFERENCE) -> frozenset[str]:
        """The message ids `language`'s own catalogue holds (its fallback's not counted)."""
        found = gettext.translation(self.domain, self.directory, [folder_name(language)], fallback=True)
        return frozenset(k if isinstance(k, str) else k[0] for k in getattr(found, "_catalog", {}) if k)

    def pair(self, msgid: str) -> tuple[str, str]:
        """(zh-CN, en): for the tables that show both (a bilingual hint, the tests, the sound maker)."""
        return (self.message(msgid, PAIR[0]), self.message(msgid, PAIR[1]))


#: the kiosk's catalogue (this folder)
CATALOGUE = Catalogue()
message = CATALOGUE.message
plural = CATALOGUE.plural
pair = CATALOGUE.pair


def pairs(prefix: str, names: tuple[str, ...] | list[str] | None = None) -> dict[str, tuple[str, str]]:
    """name → (zh-CN, en) of the messages `<prefix>.<name>`: a view of the catalogue for code
    that lists a family of messages by name (the verdict reasons, the voice prompts). Without
    `names`: every such message the reference catalogue has."""
    if names is None:
        names = sorted(m[len(prefix) + 1:] for m in CATALOGUE.msgids() if m.startswith(f"{prefix}."))
    return {name: pair(f"{prefix}.{name}") for name in names}

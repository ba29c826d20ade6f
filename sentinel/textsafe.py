"""Text that came from the service, made safe to print on a terminal or write to a log.

A site name, a masked name or a rejection message is chosen by whoever runs (or impersonates) the
service. Printed raw, an escape sequence (`ESC [2J` clears the technician's screen, others retitle
the window or rewrite what was shown), a CR or LF (a forged journal line: "\\nFAKE LOG LINE"), or a
Unicode bidi override (text that reads differently from what it is) reaches the terminal and the
journal. `printable` removes every control character (C0 and C1, DEL, ESC, CR, LF, tab), the line
and paragraph separators and the bidi embedding, override and isolate marks, each becoming one
space, and bounds the length. Everything else (Chinese names, `*` masks) passes unchanged.
"""

from __future__ import annotations

import unicodedata

#: bidi embeddings, overrides, isolates and marks (Trojan Source), and the Arabic letter mark
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


def _unsafe(c: str) -> bool:
    return c in BIDI_CONTROLS or unicodedata.category(c) in ("Cc", "Zl", "Zp")


def printable(text: object, limit: int = 200) -> str:
    """`text` (anything: it is made a str) on one line without control characters, at most `limit`
    characters (cut with "…")."""
    text = text if isinstance(text, str) else str(text)
    clean = "".join(" " if _unsafe(c) else c for c in text[: limit * 4])
    if len(clean) > limit:
        clean = clean[: max(0, limit - 1)] + "…"
    return clean

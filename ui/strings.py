"""The display's own words (status bar, technician menu): the messages `ui.<key>` of the message
catalogue in sentinel/locale, in any language it has.

Words about a check (prompts, verdicts, reasons, faults) belong to the screen model in
`sentinel/screens.py` and `sentinel/policy.py`; these are only the chrome around them.
"""

from __future__ import annotations

from sentinel.locale import message


def text(key: str, language: str, **params: object) -> str:
    return message(f"ui.{key}", language, **params)

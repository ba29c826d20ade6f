"""The displays without pygame (display.type = "console" or "none"); `ui.display.open_display`
picks the configured one.

ConsoleDisplay logs each screen change (a kiosk without a screen, the tests), with the text of
the service (masked names, messages) passed through `sentinel.textsafe.printable`, so it cannot
put escape sequences or forged lines into the journal; NoDisplay shows nothing.
`DisplayError` is `ui.errors.DisplayError` (here too for its callers).
"""

from __future__ import annotations

import logging
from typing import Any

from sentinel.screens import Screen
from sentinel.textsafe import printable
from ui.errors import DisplayError

__all__ = ["ConsoleDisplay", "DisplayError", "NoDisplay"]

log = logging.getLogger("ui.console")


class ConsoleDisplay:
    def __init__(self) -> None:
        self.shown: list[Screen] = []

    def show(self, screen: Screen) -> None:
        self.shown.append(screen)
        del self.shown[:-50]  # enough history for tests and debugging, bounded for a long run
        # a masked name and a rejection text come from the service: no escapes or line breaks in the journal
        words = " · ".join(printable(t, 300) for t in (screen.title, screen.message) if t)
        extra = f" [{printable(screen.person, 100)}]" if screen.person else ""
        log.info("screen %s: %s%s%s", screen.kind.value, words, extra, " (offline)" if screen.offline else "")

    def preview(self, frame) -> None:
        pass

    def connect(self, **wiring: Any) -> None:
        """Nothing to wire: no status bar, no technician menu (so `on_menu` is never called), no window."""

    def close(self) -> None:
        pass


class NoDisplay:
    def show(self, screen: Screen) -> None:
        pass

    def preview(self, frame) -> None:
        pass

    def connect(self, **wiring: Any) -> None:
        pass

    def close(self) -> None:
        pass

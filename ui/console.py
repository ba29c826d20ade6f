"""Console display: each screen change goes to the log. The pygame touchscreen replaces it on a kiosk."""

from __future__ import annotations

import logging

from sentinel.screens import Screen

log = logging.getLogger("ui.console")


class ConsoleDisplay:
    def __init__(self) -> None:
        self.shown: list[Screen] = []

    def show(self, screen: Screen) -> None:
        self.shown.append(screen)
        del self.shown[:-50]  # enough history for tests and debugging, bounded for a long run
        extra = f" [{screen.person}]" if screen.person else ""
        log.info("screen %s: %s%s%s", screen.kind.value, screen.message, extra, " (offline)" if screen.offline else "")


    def preview(self, frame) -> None:
        pass


class NoDisplay:
    def show(self, screen: Screen) -> None:
        pass

    def preview(self, frame) -> None:
        pass


def open_display(kind: str):
    return ConsoleDisplay() if kind == "console" else NoDisplay()

"""Displays without pygame, and `open_display`, which picks the configured one.

ConsoleDisplay logs each screen change (a kiosk without a screen, the tests), with the text of
the service (masked names, messages) passed through `sentinel.textsafe.printable`, so it cannot
put escape sequences or forged lines into the journal; NoDisplay shows nothing. The touchscreen is `ui.pygame_display.PygameDisplay`, imported only when configured,
so that `import ui.console` never loads pygame.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sentinel.screens import Screen, StatusBar
from sentinel.textsafe import printable

if TYPE_CHECKING:
    from pathlib import Path

    from sentinel.config import DisplayConfig
    from ui.technician import TechnicianActions

log = logging.getLogger("ui.console")


class DisplayError(RuntimeError):
    """The configured display cannot be used (no screen, no CJK font); the message says why and
    what to do. `sentinel run` reports it and exits instead of running blind."""


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


def open_display(
    config: "DisplayConfig | str" = "console",
    *,
    language: str = "zh-CN",
    site_name: str = "",
    status: Callable[[], StatusBar] | None = None,
    actions: "TechnicianActions | None" = None,
    on_quit: Callable[[], None] | None = None,
    on_menu: Callable[[bool], None] | None = None,
    pin_state_file: "Path | None" = None,
) -> Any:
    """The display a config's `[display]` section names (or a bare type: "pygame", "console",
    "none"). The pygame display is running when this returns; it raises DisplayError instead of
    starting blind: no screen, or no CJK font (FontNotFoundError, which names the package).

    `status` is polled once a second for the status bar, `actions` back the technician menu,
    `on_quit` is called when the window is closed (a desktop) so the kiosk can stop, and
    `on_menu(opened)` when the technician's PIN pad is asked for (True: pause the checks) and when
    pad and menu are gone (False). Displays without a menu never call it. `pin_state_file` keeps the
    PIN pad's failed tries and lockout across restarts (in the state directory)."""
    from sentinel.config import DisplayConfig

    if isinstance(config, str):
        config = DisplayConfig(type=config)
    if config.type == "pygame":
        from ui.pygame_display import PygameDisplay

        return PygameDisplay(
            config, language=language, site_name=site_name, status=status, actions=actions, on_quit=on_quit, on_menu=on_menu,
            pin_state_file=pin_state_file,
        )
    return ConsoleDisplay() if config.type == "console" else NoDisplay()

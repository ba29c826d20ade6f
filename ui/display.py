"""`open_display`: the display a config's `[display]` section names (display.type: pygame,
console or none), running, or a `DisplayError` saying why not.

The touchscreen (`ui.pygame_display.PygameDisplay`) is imported only when configured, so that
`import ui.display` never loads pygame; the displays without pygame are in `ui.console`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sentinel.screens import StatusBar
from ui.console import ConsoleDisplay, NoDisplay
from ui.errors import DisplayError

if TYPE_CHECKING:
    from pathlib import Path

    from sentinel.config import DisplayConfig
    from ui.technician import TechnicianActions

__all__ = ["DisplayError", "open_display"]


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

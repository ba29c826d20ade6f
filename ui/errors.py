"""`DisplayError`: the configured display cannot be used.

A leaf on purpose: the factory (`ui.display.open_display`) imports the backends, and the backends
(`ui.pygame_display`, `ui.fonts`) raise this error; were it defined next to the factory, each
would import the other (issue 19's import circle).
"""

from __future__ import annotations


class DisplayError(RuntimeError):
    """The configured display cannot be used (no screen, no CJK font); the message says why and
    what to do. `sentinel run` reports it and exits instead of running blind."""

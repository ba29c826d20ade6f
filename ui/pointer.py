"""Touch and keys, as the display reads them: where a finger is in the picture as drawn, and
which vehicle-screen button a desktop keyboard's key stands for.

SDL reports fingers normalised to 0..1 of the window and also synthesises mouse events from them;
those carry `touch = True` and are dropped, so a tap counts once. A real mouse works too (a
desktop, the demo). The panel may be turned (`display.rotation`): a point on it is turned back into
the picture's coordinates, where the buttons' boxes are.
"""

from __future__ import annotations

import logging
from typing import Any

from sentinel.screens import VEHICLE_KINDS, ScreenKind
from ui.technician import MenuState

log = logging.getLogger("ui.display")


def to_logical(x: float, y: float, rotation: int, logical_size: tuple[int, int]) -> tuple[float, float]:
    """A point on the panel (physical pixels) → the same point in the picture as drawn, for a
    picture turned clockwise by `rotation` degrees onto the panel."""
    lw, lh = logical_size
    if rotation == 90:
        return y, lh - 1 - x
    if rotation == 180:
        return lw - 1 - x, lh - 1 - y
    if rotation == 270:
        return lw - 1 - y, x
    return x, y


def pointer_event(event: Any, window_size: tuple[int, int]) -> tuple[str, float, float, Any] | None:
    """(down | up | move, x, y, pointer id) in window pixels for a finger or a real mouse's left
    button; None for anything else, including mouse events SDL synthesised from touch."""
    import pygame

    w, h = window_size
    if event.type in (pygame.FINGERDOWN, pygame.FINGERUP, pygame.FINGERMOTION):
        action = {pygame.FINGERDOWN: "down", pygame.FINGERUP: "up", pygame.FINGERMOTION: "move"}[event.type]
        x = min(max(event.x, 0.0), 1.0) * (w - 1)
        y = min(max(event.y, 0.0), 1.0) * (h - 1)
        return action, x, y, ("finger", event.finger_id)
    if event.type in (pygame.MOUSEBUTTONDOWN, pygame.MOUSEBUTTONUP, pygame.MOUSEMOTION):
        if getattr(event, "touch", False):
            return None  # the same touch again, as a mouse: already handled as a finger
        if event.type == pygame.MOUSEMOTION:
            if not event.buttons[0]:
                return None
            return "move", event.pos[0], event.pos[1], "mouse"
        if event.button != 1:
            return None
        return ("down" if event.type == pygame.MOUSEBUTTONDOWN else "up"), event.pos[0], event.pos[1], "mouse"
    return None


def plate_key(event: Any, pygame: Any) -> str | None:
    """The plate keypad's button a key stands for (a keyboard on a desktop, the demo): Enter is
    OK, Backspace deletes, Escape skips, a printable key types itself; None for anything else."""
    if event.key in (pygame.K_RETURN, pygame.K_KP_ENTER):
        return "key:ok"
    if event.key == pygame.K_BACKSPACE:
        return "key:back"
    if event.key == pygame.K_ESCAPE:
        return "key:skip"
    if event.unicode and event.unicode.strip():
        return f"key:{event.unicode.upper()}"
    return None


class DisplayInput:
    """The touchscreen display's input, run on its render thread: events in, a technician menu
    button pressed, a vehicle button handed to the kiosk, the menu asked for, the window closed.
    A part of `ui.pygame_display.PygameDisplay` (which holds the state it reads: the menu, the
    corner gesture, the renderer's `hits`, the screen shown, `on_button`, `on_quit`)."""

    def _event(self, event) -> None:
        pygame = self._pygame
        if event.type == pygame.QUIT:
            self._quit()
            return
        if event.type in (pygame.VIDEORESIZE, pygame.WINDOWSIZECHANGED) and not self._fullscreen:
            self._use_window(pygame.display.get_surface())
            return
        if event.type == pygame.KEYDOWN:
            self._key(event)
            return
        pointer = pointer_event(event, self._window.get_size())
        if pointer is not None:
            action, x, y, pid = pointer
            x, y = to_logical(x, y, self.config.rotation, self.size)
            self.handle_pointer(action, x, y, pid)

    def handle_pointer(self, action: str, x: float, y: float, pid: Any = "mouse") -> None:
        """One finger or mouse step in picture pixels (the render thread calls this; tests too)."""
        if action == "down":
            if self._pressed is not None and self._pressed[0] != pid:
                return  # a second finger while the first is down: ignored
            self.gesture.down(x, y, self._clock(), self.size)
            self._pressed = (pid, self._hit(x, y))
        elif action == "move":
            if self._pressed is not None and self._pressed[0] == pid:
                self.gesture.move(x, y)
        elif action == "up":
            if self._pressed is None or self._pressed[0] != pid:
                return
            pressed_button = self._pressed[1]
            self._pressed = None
            self.gesture.up()
            if pressed_button is not None and self._hit(x, y) == pressed_button:
                if self.menu.is_open:
                    self.menu.press(pressed_button)
                else:
                    self._button(pressed_button)

    def _button(self, button: str) -> None:
        """A vehicle screen's button: to whoever connected (the handheld controller), off this thread."""
        if self.on_button is not None:
            self._buttons.submit(self.on_button, button)

    def _hit(self, x: float, y: float) -> str | None:
        if not self.menu.is_open and not self._vehicle_screen():
            return None
        for button, box in self._renderer.hits.items():
            if box.hit(x, y):
                return button
        return None

    def _vehicle_screen(self) -> bool:
        with self._lock:
            return self._screen.kind in VEHICLE_KINDS and self.on_button is not None

    def _key(self, event) -> None:
        pygame = self._pygame
        if not self.menu.is_open and self._vehicle_screen() and self._vehicle_key(event):
            return
        if event.key == pygame.K_F2 and not self.menu.is_open:
            self.request_menu()
        elif event.key == pygame.K_ESCAPE:
            if self.menu.is_open:
                self.menu.close()
            elif self._menu_requested:
                self._menu_requested = False  # asked for, not shown yet: forget it (the kiosk resumes)
            elif not self._fullscreen:
                self._quit()
        elif self.menu.is_open and self.menu.state == MenuState.PIN:
            if event.unicode and event.unicode.isdigit():
                self.menu.press(f"digit:{event.unicode}")
            elif event.key == pygame.K_BACKSPACE:
                self.menu.press("back")
            elif event.key in (pygame.K_RETURN, pygame.K_KP_ENTER):
                self.menu.press("ok")

    def _vehicle_key(self, event) -> bool:
        """A keyboard on a desktop (the demo): the plate keypad's keys, Enter, Backspace, Escape."""
        with self._lock:
            kind = self._screen.kind
        button = plate_key(event, self._pygame) if kind == ScreenKind.PLATE else None
        if button is not None:
            self._button(button)
        return button is not None

    def _quit(self) -> None:
        log.info("display: window closed")
        if self.on_quit is not None:
            self.on_quit()

"""The technician menu: a hidden gesture, a PIN pad, and actions the kiosk provides.

Pure logic, no pygame: the display feeds it taps (by button id, from the renderer's hit boxes)
and a clock, and draws what `view()` says. Everything slow (the PIN hash, a gate pulse, a network
probe, reloading config) runs through `submit` on a worker thread and is picked up by `poll()`,
so the render thread never waits for it.

The gesture: a finger (or mouse button) held still for 3 s in the top-left corner opens the PIN
pad. Nothing on screen hints at it.

The kiosk behind it. While the PIN pad or the menu is on screen nobody in the queue sees a
verdict, so the kiosk pauses its checks (no new check starts, the relay stays closed) from the
moment the pad is asked for until it closes; `TechnicianActions.on_menu` is how it hears of it
(ui/pygame_display.py reports each change, sentinel/kiosk_technician.py pauses and resumes the
pipeline). The PIN pad closes by itself after `pin_timeout_s` (45 s) without a touch, the menu
after `idle_timeout_s` (2 min): a pad opened by someone leaning on the corner, or left behind by a
technician who did not know the PIN, costs the queue under a minute, not two.

Audit: the right PIN (`technician_menu_opened`), a wrong or refused one (`technician_pin_failed`)
and the start of a lock-out (`technician_locked_out`) go to `TechnicianActions.audit(event,
detail)`, on a worker thread; the detail is a few numbers and reasons, never the PIN or its digits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from enum import StrEnum

from ui.pin import PinGate, PinResult
from ui.strings import text

log = logging.getLogger("ui.technician")

InfoLines = list[tuple[str, str]]  # (label, value) rows shown in the info panel


@dataclass
class TechnicianActions:
    """What the menu can do on this device; the kiosk provides these. Each runs on a UI worker
    thread (never the render thread or the kiosk loop) and returns rows to show; an exception is
    shown as "failed: …". None: the button is shown disabled."""

    device_status: Callable[[], InfoLines] | None = None  # device id, site, version, camera, uptime
    network_status: Callable[[], InfoLines] | None = None  # service URL, reachable, round trip
    gate_test: Callable[[], InfoLines] | None = None  # pulse the gate once, say what happened
    outbox_status: Callable[[], InfoLines] | None = None  # records waiting, oldest
    reload_config: Callable[[], InfoLines] | None = None  # re-read the config file, say what changed

    # Hooks, not buttons: what the kiosk hears from the menu (both on a UI worker thread, in order
    # for on_menu; never the render thread).
    #: the PIN pad was asked for (True: pause the checks, keep the relay closed) or everything closed (False)
    on_menu: Callable[[bool], None] | None = None
    #: an audit event: (technician_menu_opened | technician_pin_failed | technician_locked_out, detail)
    audit: Callable[[str, dict], None] | None = None


class MenuState(StrEnum):
    CLOSED = "closed"
    PIN = "pin"
    MENU = "menu"
    PREVIEW = "preview"


#: the menu's buttons in order: (id, string key)
MENU_BUTTONS = [
    ("device", "device"),
    ("network", "network"),
    ("gate", "gate"),
    ("sound", "sound"),
    ("preview", "preview"),
    ("outbox", "outbox_status"),
    ("reload", "reload"),
    ("close", "close"),
]
PIN_BUTTONS = [f"digit:{d}" for d in "123456789"] + ["back", "digit:0", "ok"]
MAX_PIN_DIGITS = 8


@dataclass(frozen=True)
class Button:
    id: str
    label: str
    enabled: bool = True


@dataclass(frozen=True)
class MenuView:
    """What to draw: the renderer turns this into pixels and hit boxes."""

    state: MenuState
    title: str = ""
    buttons: tuple[Button, ...] = ()
    pin_digits: int = 0
    message: str = ""
    message_is_error: bool = False
    info_title: str = ""
    info: tuple[tuple[str, str], ...] = ()
    busy: bool = False


class CornerLongPress:
    """A press held in one corner for `hold_s` seconds; moving out of the corner cancels it."""

    def __init__(self, hold_s: float = 3.0, corner_fraction: float = 0.12):
        self.hold_s = hold_s
        self.corner_fraction = corner_fraction
        self._since: float | None = None
        self._size = (1, 1)

    def _in_corner(self, x: float, y: float) -> bool:
        side = self.corner_fraction * min(self._size)
        return x <= side and y <= side

    def down(self, x: float, y: float, now: float, size: tuple[int, int]) -> None:
        self._size = size
        self._since = now if self._in_corner(x, y) else None

    def move(self, x: float, y: float) -> None:
        if self._since is not None and not self._in_corner(x, y):
            self._since = None

    def up(self) -> None:
        self._since = None

    @property
    def pressing(self) -> bool:
        return self._since is not None

    def poll(self, now: float) -> bool:
        """True once, when the press has been held long enough."""
        if self._since is not None and now - self._since >= self.hold_s:
            self._since = None
            return True
        return False


@dataclass
class _Pending:
    kind: str  # "pin" or an action id
    future: Future
    title: str = ""


class TechnicianMenu:
    def __init__(
        self,
        pin_gate: PinGate,
        actions: TechnicianActions,
        submit: Callable[..., Future],
        *,
        language: str = "zh-CN",
        sound_test: Callable[[], InfoLines] | None = None,
        clock: Callable[[], float] = time.monotonic,
        idle_timeout_s: float = 120.0,
        pin_timeout_s: float = 45.0,
    ):
        self._gate = pin_gate
        self._actions = actions
        self._submit = submit
        self._language = language
        self._sound_test = sound_test
        self._clock = clock
        self._idle_timeout_s = idle_timeout_s
        self._pin_timeout_s = pin_timeout_s
        self.state = MenuState.CLOSED
        self._pin = ""
        self._message = ""
        self._message_is_error = False
        self._info_title = ""
        self._info: InfoLines = []
        self._pending: _Pending | None = None
        self._last_touch = clock()
        self.changes = 0  # bumped on every change the screen shows, so the display knows to redraw

    def set_actions(self, actions: TechnicianActions) -> None:
        self._actions = actions
        self.changes += 1

    def set_language(self, language: str) -> None:
        """A reloaded config's language: the next frame of the pad or menu speaks it."""
        if language != self._language:
            self._language = language
            if self.state == MenuState.PIN and not self._gate.configured:
                self._message = text("pin_not_set", language)
            self.changes += 1

    @property
    def pin_gate(self) -> PinGate:
        return self._gate

    def _audit(self, event: str, **detail: object) -> None:
        """Hand an audit event to the kiosk on a worker (an outbox write is an fsync)."""
        audit = self._actions.audit
        if audit is None:
            return
        try:
            self._submit(_call_audit, audit, event, detail)
        except RuntimeError:  # the executor is shutting down with the display
            log.warning("technician menu: audit event %s not recorded (closing)", event)

    # --- input ----------------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.state != MenuState.CLOSED

    def open(self) -> None:
        log.info("technician menu: PIN pad opened")
        self.state = MenuState.PIN
        self._pin = ""
        self._set_message("" if self._gate.configured else text("pin_not_set", self._language), error=not self._gate.configured)
        self._touched()

    def close(self) -> None:
        if self.state != MenuState.CLOSED:
            log.info("technician menu closed")
        self.state = MenuState.CLOSED
        self._pin = ""
        self._info = []
        self._info_title = ""
        self._message = ""
        self._touched()

    def press(self, button: str) -> None:
        """A tap on a button of the current view (ids from `view().buttons`, or "cancel")."""
        self._touched()
        if button == "cancel" or button == "close":
            self.close()
            return
        if self.state == MenuState.PIN:
            self._press_pin(button)
        elif self.state == MenuState.MENU:
            self._press_menu(button)
        elif self.state == MenuState.PREVIEW:
            self.state = MenuState.MENU

    def _press_pin(self, button: str) -> None:
        if self._pending is not None:
            return  # one PIN at a time
        if button.startswith("digit:"):
            if len(self._pin) < MAX_PIN_DIGITS:
                self._pin += button.removeprefix("digit:")
        elif button == "back":
            self._pin = self._pin[:-1]
        elif button == "ok" and self._pin:
            self._set_message(text("pin_checking", self._language))
            self._pending = _Pending("pin", self._submit(self._gate.attempt, self._pin))
            self._pin = ""

    def _press_menu(self, button: str) -> None:
        if button == "preview":
            self.state = MenuState.PREVIEW
            return
        if self._pending is not None:
            return
        functions = self._functions()
        if button not in functions:
            return
        label = dict(MENU_BUTTONS)[button]
        self._info_title = text(label, self._language)
        function = functions[button]
        if function is None:
            self._info = [("", text("not_wired", self._language))]
            return
        log.info("technician menu: %s", button)
        self._info = [("", text("busy", self._language))]
        self._pending = _Pending(button, self._submit(function), self._info_title)

    # --- time -----------------------------------------------------------------------------------

    def poll(self) -> None:
        """Pick up finished work and close the menu when nobody touched it for a while."""
        now = self._clock()
        timeout = self._pin_timeout_s if self.state == MenuState.PIN else self._idle_timeout_s
        if self.is_open and now - self._last_touch > timeout and not (self.state == MenuState.PIN and self._pending):
            log.info("technician menu: nobody touched it for %.0f s", timeout)
            self.close()
            return
        pending = self._pending
        if pending is None or not pending.future.done():
            if self.state == MenuState.PIN and self._gate.locked_for() > 0:
                self._show_lockout()
            return
        try:
            result = pending.future.result()
        except Exception as e:  # an action that raised: say so, keep the menu
            log.warning("technician action %s failed: %s", pending.kind, e)
            result = e
        if pending.kind == "pin":
            self._pin_result(result)
        elif self.state != MenuState.CLOSED:
            if isinstance(result, BaseException):
                self._info = [("", text("action_failed", self._language, e=f"{type(result).__name__}: {result}"))]
            else:
                self._info = [(str(k), str(v)) for k, v in (result or [])]
        self._pending = None  # last: whoever sees no pending work also sees its answer
        self.changes += 1

    def _pin_result(self, result: PinResult | BaseException) -> None:
        if self.state != MenuState.PIN:
            return
        if isinstance(result, BaseException):
            self._set_message(text("action_failed", self._language, e=type(result).__name__), error=True)
        elif result.ok:
            log.info("technician menu: PIN accepted")
            self.state = MenuState.MENU
            self._set_message("")
            self._info_title = ""
            self._info = []
            self._audit("technician_menu_opened")
        elif result.reason == "locked":
            if result.started_lockout:
                log.warning("technician menu: PIN locked for %.0f s", result.locked_for_s)
                self._audit("technician_pin_failed", reason="wrong", tries_left=0)
                self._audit("technician_locked_out", locked_for_s=round(result.locked_for_s))
            else:
                log.warning("technician menu: PIN refused, locked for %.0f s more", result.locked_for_s)
                self._audit("technician_pin_failed", reason="locked", locked_for_s=round(result.locked_for_s))
            self._show_lockout()
        elif result.reason == "not_configured":
            self._set_message(text("pin_not_set", self._language), error=True)
            self._audit("technician_pin_failed", reason="not_configured")
        else:
            log.warning("technician menu: wrong PIN")
            self._set_message(text("pin_wrong", self._language, n=result.tries_left), error=True)
            self._audit("technician_pin_failed", reason="wrong", tries_left=result.tries_left)

    def _show_lockout(self) -> None:
        seconds = int(self._gate.locked_for() + 0.999)
        if seconds > 0:
            self._set_message(text("pin_locked", self._language, s=seconds), error=True)

    # --- output ---------------------------------------------------------------------------------

    def view(self) -> MenuView:
        lang = self._language
        if self.state == MenuState.PIN:
            labels = {"back": text("delete", lang), "ok": text("ok", lang)}
            buttons = tuple(Button(b, labels.get(b) or b.removeprefix("digit:")) for b in PIN_BUTTONS)
            return MenuView(
                MenuState.PIN,
                title=text("pin_title", lang),
                buttons=buttons + (Button("cancel", text("cancel", lang)),),
                pin_digits=len(self._pin),
                message=self._message,
                message_is_error=self._message_is_error,
                busy=self._pending is not None,
            )
        if self.state == MenuState.MENU:
            functions = self._functions()
            buttons = tuple(
                Button(b, text(key, lang), enabled=functions.get(b, True) is not None) for b, key in MENU_BUTTONS
            )
            info = tuple(self._info) or (("", text("choose", lang)),)
            return MenuView(
                MenuState.MENU, title=text("menu_title", lang), buttons=buttons,
                info_title=self._info_title, info=info, busy=self._pending is not None,
            )
        if self.state == MenuState.PREVIEW:
            return MenuView(MenuState.PREVIEW, title=text("preview", lang), buttons=(Button("back", text("back", lang)),))
        return MenuView(MenuState.CLOSED)

    def _functions(self) -> dict[str, Callable[[], InfoLines] | None]:
        """Menu button → what it runs (None: not wired on this device, shown disabled)."""
        return {
            "device": self._actions.device_status,
            "network": self._actions.network_status,
            "gate": self._actions.gate_test,
            "outbox": self._actions.outbox_status,
            "reload": self._actions.reload_config,
            "sound": self._sound_test,
        }

    def _set_message(self, message: str, error: bool = False) -> None:
        if (message, error) != (self._message, self._message_is_error):
            self._message, self._message_is_error = message, error
            self.changes += 1

    def _touched(self) -> None:
        self._last_touch = self._clock()
        self.changes += 1


def _call_audit(audit: Callable[[str, dict], None], event: str, detail: dict) -> None:
    try:
        audit(event, detail)
    except Exception:  # the kiosk's outbox failing must not show as a failed PIN
        log.exception("technician menu: recording the audit event %s failed", event)

"""The touchscreen: pygame, full screen on the Pi (KMSDRM, no X), a window on a desktop.

Threads. pygame (SDL) must be used from one thread, and on KMSDRM that thread owns the screen;
the kiosk loop must never wait for drawing. So the display runs its own render thread, which
does everything pygame: it opens the screen, reads touch events, draws, plays sounds. The
kiosk's calls (`show`, `preview`) only swap a reference under a lock and return. This keeps the
kiosk loop on the thread that already runs it (the main thread, with its signal handlers) and
asks nothing of `sentinel/kiosk.py` but to construct and close the display. (The one platform
where SDL insists on the main thread is macOS, which is no target.)

Each pass of the render loop: pump events (touch, mouse, keys), poll the technician menu and the
sound queue, then redraw only if something visible changed — a new screen, a new camera frame
while the camera view shows, the clock's second, the menu, the checking spinner — at most
`display.fps` times a second. A verdict screen therefore costs one frame per second.

A frame that fails to draw (a renderer bug, a screen kind it does not know) is drawn again plainly
(`Renderer.draw_plain`: the screen's words on a dark background), and at worst as a plain fill, so
the screen never stays frozen on an old verdict; each distinct failure is logged once, and
`fallback_frames` / `last_draw_error` say so. Warming up at start skips a screen that fails.

Touch (ui/pointer.py): a tap counts once, a real mouse works too. Holding the top-left corner for
3 s opens the technician menu (F2 on a keyboard); its PIN is checked against
`display.technician_pin_hash`. The window is opened by ui/window.py (`display.fullscreen`,
`display.width`, `display.height`, `display.rotation`); the status bar is polled and the kiosk's
hooks are called off this thread (ui/workers.py).

The menu and the queue. The gesture (or F2) *asks* for the PIN pad: at that moment `on_menu(True)`
tells the kiosk to pause its checks (no new check, relay closed; sentinel/kiosk_technician.py), and
the pad appears as soon as no verdict is on screen: a verdict shown to a person (or a check whose
verdict is coming) stays up for its `display.result_s` first, so a technician's gesture never
hides someone's answer. When the pad or the menu closes (Cancel, Exit, Esc, or nobody touching it:
ui/technician.py), `on_menu(False)` resumes the checks. Each change is reported once, in order,
on a worker thread of its own (`ui-menu`), never on the render thread.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from sentinel.config import DisplayConfig
from sentinel.locale import message
from sentinel.screens import CAMERA_KINDS, Screen, ScreenKind, StatusBar
from ui.errors import DisplayError
from ui.fonts import FontSet, find_cjk_fonts
from ui.pin import PinGate
from ui.pointer import DisplayInput
from ui.sound import CUES, SOUND_TEST, SoundPlayer
from ui.strings import text as ui_text
from ui.technician import (
    CornerLongPress,
    InfoLines,
    MenuState,
    TechnicianActions,
    TechnicianMenu,
)
from ui.theme import PLAIN_BG
from ui.window import explain, open_window
from ui.workers import Handoff, StatusPoller

log = logging.getLogger("ui.display")

START_TIMEOUT_S = 20.0
#: screens that carry a person's verdict: the PIN pad waits until they have been up result_s
#: how long after a verdict the idle screen says the queue's rule (one at a time, 1 m apart)
QUEUE_HINT_S = 60.0
VERDICT_KINDS = frozenset({ScreenKind.PASS, ScreenKind.DENY, ScreenKind.MANUAL_CHECK, ScreenKind.UNKNOWN_CODE, ScreenKind.VEHICLE_SUMMARY})
#: longest a "checking" screen holds the PIN pad back (its verdict, when it comes, holds it result_s more)
CHECKING_HOLD_S = 10.0


class PygameDisplay(DisplayInput):
    """The kiosk's display seam on pygame. `show` and `preview` may be called from any thread and
    return at once; everything else happens on the render thread."""

    def __init__(
        self,
        config: DisplayConfig | None = None,
        *,
        language: str = "zh-CN",
        status: Callable[[], StatusBar] | None = None,
        site_name: str = "",
        actions: TechnicianActions | None = None,
        on_quit: Callable[[], None] | None = None,
        on_menu: Callable[[bool], None] | None = None,
        pin_state_file: Path | None = None,
        fonts: FontSet | None = None,
        clock: Callable[[], float] = time.monotonic,
        start: bool = True,
    ):
        self.config = config or DisplayConfig(type="pygame")
        self.language = language
        self._fonts = fonts or find_cjk_fonts()  # fails here, in the caller, with the package to install
        self._clock = clock
        self.on_quit = on_quit
        #: told True when the PIN pad is asked for and False when pad and menu are gone (module docstring)
        self.on_menu: Callable[[bool], None] | None = on_menu
        self._lock = threading.Lock()
        self._screen = Screen.prompt(ScreenKind.IDLE, language)
        self._screen_no = 0
        self._hold_until = float("-inf")  # the verdict on screen keeps the PIN pad back until then
        self._last_verdict_at = float("-inf")  # people are coming through: idle says the queue's rule
        self._menu_requested = False  # the gesture or F2 asked for the pad; it waits for the verdict
        self._menu_reported = False  # what on_menu heard last
        self._menu_hooks = Handoff("ui-menu", "the menu hook")
        self._new_sound: SoundPlayer | None = None  # a reloaded config's sound settings, for the render thread
        self._frame: Any = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._status = StatusPoller(status, StatusBar(site_name=site_name))
        self._sound = SoundPlayer(language, volume=self.config.volume, mute=self.config.mute, voice=self.config.voice)
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ui-action")
        if actions is not None and actions.on_menu is not None:
            self.on_menu = actions.on_menu
        self.menu = TechnicianMenu(
            PinGate(self.config.technician_pin_hash, clock=clock, state_file=pin_state_file),
            self._menu_actions(actions or TechnicianActions()),
            self._executor.submit,
            language=language,
            sound_test=self._sound_test,
            clock=clock,
        )
        self.gesture = CornerLongPress()
        #: a handheld's vehicle screens report their buttons here (`connect(on_button=...)`); taps
        #: are handed over in order on a worker of their own, never on the render thread
        self.on_button: Callable[[str], None] | None = None
        self._buttons = Handoff("ui-button", "a button")
        self._flips: deque[float] = deque(maxlen=61)
        self.frames_drawn = 0
        self.fallback_frames = 0  # frames drawn plainly because drawing the real one failed
        self.last_draw_error: str | None = None
        self._draw_errors: set[tuple[ScreenKind, str]] = set()
        self.draw_ms = 0.0
        self.driver = ""
        self.size = (0, 0)
        self._thread = threading.Thread(target=self._run, name="ui-render", daemon=True)
        if start:
            self.start()

    # --- the kiosk's side (any thread, never blocks) ----------------------------------------------

    def show(self, screen: Screen) -> None:
        now = self._clock()
        with self._lock:
            if screen is self._screen:
                return
            self._screen = screen
            self._screen_no += 1
            self._hold_until = now + self._hold_for(screen)
            if screen.kind in VERDICT_KINDS:
                self._last_verdict_at = now
        if screen.vehicle is not None:  # a vehicle screen sounds only when it carries a new verdict
            if screen.vehicle.cue is not None:
                self._sound.request(CUES.get(screen.vehicle.cue, ()))
        else:
            self._sound.request_for(screen)

    def preview(self, frame: Any) -> None:
        with self._lock:
            self._frame = frame

    def _hold_for(self, screen: Screen) -> float:
        """How long this screen keeps a requested PIN pad back: a verdict its result time, a check
        in flight until its verdict (at most CHECKING_HOLD_S), anything else not at all."""
        vehicle = screen.vehicle
        if screen.kind in VERDICT_KINDS or (vehicle is not None and vehicle.cue is not None):
            return self.config.result_s
        if screen.kind == ScreenKind.CHECKING or (
            vehicle is not None and vehicle.check is not None and vehicle.check.kind == ScreenKind.CHECKING
        ):
            return CHECKING_HOLD_S
        return float("-inf")

    def connect(
        self,
        *,
        status: Callable[[], StatusBar] | None = None,
        actions: TechnicianActions | None = None,
        on_quit: Callable[[], None] | None = None,
        on_button: Callable[[str], None] | None = None,
        on_menu: Callable[[bool], None] | None = None,
    ) -> None:
        """Wire the kiosk in after both exist (the pipeline needs the display before the kiosk is
        built): the status bar's provider, the technician menu's actions, what a closed window does,
        who hears the handheld's vehicle buttons, and who hears the technician menu open and close
        (`on_menu(opened)`, also taken from `actions.on_menu`). A hook connected while the pad is
        up hears `True` at once."""
        if on_button is not None:
            self.on_button = on_button
        if status is not None:
            self._status.set_provider(status)
        if actions is not None:
            self.menu.set_actions(self._menu_actions(actions))
            if actions.on_menu is not None:
                on_menu = on_menu or actions.on_menu
        if on_quit is not None:
            self.on_quit = on_quit
        if on_menu is not None:
            self.on_menu = on_menu
            if self._menu_reported:
                self._report_menu(True, force=True)

    def _menu_actions(self, actions: TechnicianActions) -> TechnicianActions:
        return dataclasses.replace(actions, device_status=self._with_display_info(actions.device_status))

    def reconfigure(self, config: DisplayConfig, language: str) -> None:
        """Take what a reloaded config changes that the display can apply live: the language,
        the result time (how long a verdict holds the PIN pad back), volume, mute, voice and the
        technician PIN's hash. The rest of `config` (type, size, rotation, fps, full screen,
        mirror) needs a restart and is ignored here; the kiosk says so on the menu. Any thread."""
        old = self.config
        self.config = old.model_copy(update={
            "result_s": config.result_s, "volume": config.volume, "mute": config.mute, "voice": config.voice,
            "technician_pin_hash": config.technician_pin_hash,
        })
        if config.technician_pin_hash != old.technician_pin_hash:
            self.menu.pin_gate.set_hash(config.technician_pin_hash)
        if language != self.language or config.volume != old.volume:
            # the voice files are per language and the volume is set as they load: a new player,
            # swapped in (and the old one closed) on the render thread
            self._new_sound = SoundPlayer(language, volume=config.volume, mute=config.mute, voice=config.voice)
        else:
            self._sound.mute, self._sound.voice = config.mute, config.voice
        self.language = language
        self.menu.set_language(language)
        self._drawn_key = None  # redraw in the new words (the status bar's site name comes from the kiosk's provider)

    @property
    def current(self) -> Screen:
        with self._lock:
            return self._screen

    @property
    def fps(self) -> float:
        """Frames actually drawn per second, over the last (up to) 60."""
        flips = list(self._flips)
        if len(flips) < 2 or flips[-1] == flips[0]:
            return 0.0
        return (len(flips) - 1) / (flips[-1] - flips[0])

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            self._stop.set()
            raise DisplayError(f"the display did not start within {START_TIMEOUT_S:.0f} s")
        if self._error is not None:
            self.close()
            raise DisplayError(explain(self._error)) from self._error

    def close(self) -> None:
        self._stop.set()
        self._status.close()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(5.0)
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._buttons.close(cancel=True)
        self._menu_hooks.close()

    # --- technician actions the display does itself ------------------------------------------------

    def _sound_test(self) -> InfoLines:
        self._sound.request(SOUND_TEST, force=True)
        lines = [(ui_text("sound", self.language), ui_text("sound_played", self.language))]
        if self._sound.available is False:
            lines = [(ui_text("sound", self.language), f"{ui_text('sound_off', self.language)}: {self._sound.problem}")]
        elif self.config.mute:
            lines.append(("", ui_text("sound_muted", self.language)))
        lines.append((ui_text("volume", self.language), f"{self.config.volume:.0%}"))
        return lines

    def _with_display_info(self, device_status: Callable[[], InfoLines] | None) -> Callable[[], InfoLines]:
        def status() -> InfoLines:
            lines = list(device_status()) if device_status else []
            w, h = self.size
            lines.append((message("ui.display", self.language), f"{w}×{h} · {self.driver} · {self.fps:.0f} fps"))
            return lines

        return status

    # --- the render thread ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._open()
        except BaseException as e:  # reported to start(), in the caller's thread
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        failures = 0
        try:
            self._sound.open()
            self._warm_up()
            clock = self._pygame.time.Clock()
            while not self._stop.is_set():
                try:
                    self._tick()
                    failures = 0
                except Exception:
                    failures += 1
                    if failures == 1:
                        log.exception("display: drawing failed (retrying; the kiosk goes on)")
                    time.sleep(0.2)
                clock.tick(self.config.fps)
        finally:
            self._sound.close()
            self._pygame.display.quit()

    def _open(self) -> None:
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        # Signals stay Python's: SDL must not turn SIGINT/SIGTERM into a window-close event.
        os.environ.setdefault("SDL_NO_SIGNAL_HANDLERS", "1")
        import pygame

        from ui.preview import Preview
        from ui.render import Renderer

        self._pygame = pygame
        window = open_window(pygame, self.config)
        self.driver, fullscreen = window.driver, window.fullscreen
        self._fullscreen = fullscreen
        self._renderer = Renderer(self._fonts)
        self._preview = Preview(mirror=self.config.mirror_preview)
        self._use_window(window.surface)
        self._drawn_key: tuple | None = None
        self._drawn_frame: Any = None
        self._pressed: tuple[Any, str | None] | None = None
        log.info("display: %s %dx%d%s, fonts %s", self.driver, *self.size,
                 " full screen" if fullscreen else "", self._fonts.describe())

    def _warm_up(self) -> None:
        """Draw every kind of screen once, unseen, so that the first verdict of the day does not
        wait for icons and headlines to be rendered (on a Pi, tens of ms at 1080×1920)."""
        from ui.samples import samples

        started = time.perf_counter()
        for sample in samples(self.language, technician=False):
            if self._stop.is_set():
                return
            try:
                self._renderer.draw(self._canvas, sample.screen, sample.status, language=self.language)
            except Exception:
                log.exception("display: warming up the %s screen failed", sample.name)
        self._drawn_key = None
        log.debug("display: screens warmed up in %.0f ms", (time.perf_counter() - started) * 1000)

    def _use_window(self, window) -> None:
        self._window = window
        pw, ph = window.get_size()
        turned = self.config.rotation in (90, 270)
        self.size = (ph, pw) if turned else (pw, ph)
        self._canvas = window if self.config.rotation == 0 else self._pygame.Surface(self.size)
        self._drawn_key = None

    def _tick(self) -> None:
        pygame = self._pygame
        for event in pygame.event.get():
            self._event(event)
        now = self._clock()
        if not self.menu.is_open and self.gesture.poll(now):
            self.request_menu()
        self._open_requested_menu(now)
        self.menu.poll()
        self._report_menu(self._menu_requested or self.menu.is_open)
        if self._new_sound is not None:
            self._swap_sound()
        self._sound.pump()
        with self._lock:
            screen, frame, screen_no = self._screen, self._frame, self._screen_no
        status = self._status.latest
        view = self.menu.view() if self.menu.is_open else None
        vehicle = screen.vehicle if view is None else None
        camera_visible = (
            (view is None and screen.kind in CAMERA_KINDS)
            or (view is not None and view.state == MenuState.PREVIEW)
            or (vehicle is not None and screen.kind == ScreenKind.VEHICLE and vehicle.camera_on)
        )
        spinning = view is None and (
            screen.kind == ScreenKind.CHECKING or (vehicle is not None and vehicle.check is not None and vehicle.check.kind == ScreenKind.CHECKING)
        )
        key = (screen_no, int(time.time()), self.menu.changes, view, status)
        if key == self._drawn_key and not spinning and not (camera_visible and frame is not self._drawn_frame):
            return
        started = time.perf_counter()
        self._preview.frame = frame
        self._draw(screen, status, view, now)
        if self.config.rotation:
            self._window.blit(pygame.transform.rotate(self._canvas, -self.config.rotation), (0, 0))
        pygame.display.flip()
        self._drawn_key, self._drawn_frame = key, frame
        self.frames_drawn += 1
        self._flips.append(time.perf_counter())
        self.draw_ms = 0.9 * self.draw_ms + 0.1 * (time.perf_counter() - started) * 1000 if self.draw_ms else (time.perf_counter() - started) * 1000

    def _draw(self, screen: Screen, status: StatusBar, view: Any, now: float) -> None:
        """Draw the frame; should that fail, draw the screen's words plainly instead
        (`Renderer.draw_plain`), and at worst a plain fill, so that what shows is never an old
        verdict frozen in place. Each distinct failure is logged once with its traceback."""
        if screen.kind == ScreenKind.IDLE and not screen.queue and now - self._last_verdict_at < QUEUE_HINT_S:
            screen = dataclasses.replace(screen, queue=message("screen.queue_hint", screen.language))
        try:
            self._renderer.draw(
                self._canvas, screen, status, now=datetime.now(), preview=self._preview, menu=view,
                phase=int(now * 12) % 12, language=self.language,
            )
            self.last_draw_error = None
            return
        except Exception as e:
            error = f"{type(e).__name__}: {e}"
            if (screen.kind, error) not in self._draw_errors:
                self._draw_errors.add((screen.kind, error))
                log.exception("display: drawing the %s screen failed; showing it plainly", screen.kind.value)
            self.last_draw_error = error
        self.fallback_frames += 1
        try:
            self._renderer.draw_plain(self._canvas, screen, status, error=error)
        except Exception:
            log.exception("display: even the plain screen failed")
            self._canvas.fill(PLAIN_BG)

    # --- the technician menu and the kiosk behind it ----------------------------------------------

    def request_menu(self) -> None:
        """The gesture or F2: pause the kiosk now, show the PIN pad once no verdict is on screen."""
        if self.menu.is_open or self._menu_requested:
            return
        log.info("technician menu asked for: checks pause")
        self._menu_requested = True

    def _open_requested_menu(self, now: float) -> None:
        if not self._menu_requested:
            return
        with self._lock:
            hold_until = self._hold_until
        if now >= hold_until:
            self._menu_requested = False
            self.menu.open()

    def _report_menu(self, opened: bool, force: bool = False) -> None:
        """Tell `on_menu` of a change (once per change, in order, off the render thread)."""
        if opened == self._menu_reported and not force:
            return
        self._menu_reported = opened
        if self.on_menu is not None:
            self._menu_hooks.submit(self.on_menu, opened)

    def _swap_sound(self) -> None:
        new, self._new_sound = self._new_sound, None
        old, self._sound = self._sound, new
        old.close()
        new.open()

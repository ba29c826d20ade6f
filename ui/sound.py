"""Tones and spoken prompts, through pygame.mixer, never blocking anybody.

`request()` may be called from any thread (the kiosk loop calls it through `show()`): it only
appends to a queue. `pump()` runs on the display's render thread, the one thread that touches
pygame, and hands the next sound to the mixer, which plays it on SDL's own audio thread. A new
verdict cuts off what is still playing, so a queue of people never hears stale prompts.

No audio device is not an error: the first failure is logged once and the kiosk stays silent.
The WAV files in `ui/sounds/` are made by `tools/make_sounds.py` (tones in Python, voices with
espeak-ng) and shipped, so a kiosk needs no speech synthesiser.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from pathlib import Path

from sentinel.screens import Screen, ScreenKind

log = logging.getLogger("ui.sound")

SOUNDS_DIR = Path(__file__).resolve().parent / "sounds"

#: tone files (shared by both languages) and voice files (one per language folder)
TONES = ("pass", "deny", "attention", "read")
VOICES = ("pass", "deny", "manual", "unknown", "fault")

#: screen kind → sounds in order: "tone:NAME" or "voice:NAME"
CUES: dict[ScreenKind, tuple[str, ...]] = {
    ScreenKind.CHECKING: ("tone:read",),
    ScreenKind.PASS: ("tone:pass", "voice:pass"),
    ScreenKind.DENY: ("tone:deny", "voice:deny"),
    ScreenKind.MANUAL_CHECK: ("tone:attention", "voice:manual"),
    ScreenKind.UNKNOWN_CODE: ("tone:deny", "voice:unknown"),
    ScreenKind.FAULT: ("tone:attention", "voice:fault"),
}
SOUND_TEST = ("tone:pass", "voice:pass", "tone:deny", "voice:deny")


def sound_file(name: str, language: str, folder: Path = SOUNDS_DIR) -> Path:
    kind, _, stem = name.partition(":")
    return folder / f"tone_{stem}.wav" if kind == "tone" else folder / language / f"{stem}.wav"


def cue_for(screen: Screen) -> tuple[str, ...]:
    return CUES.get(screen.kind, ())


class SoundPlayer:
    def __init__(
        self,
        language: str = "zh-CN",
        *,
        volume: float = 0.8,
        mute: bool = False,
        voice: bool = True,
        folder: Path = SOUNDS_DIR,
    ):
        self.language = language
        self.volume = volume
        self.mute = mute
        self.voice = voice
        self.folder = folder
        self._requests: deque[tuple[tuple[str, ...], bool]] = deque(maxlen=4)
        self._lock = threading.Lock()
        self._sounds: dict[str, object] = {}
        self._channel = None
        self._playlist: deque[str] = deque()
        self.available: bool | None = None  # None until opened
        self.problem = ""
        self.played: list[str] = []  # names handed to the mixer, newest last (bounded; tests read it)

    # --- any thread -------------------------------------------------------------------------------

    def request(self, names: tuple[str, ...], *, force: bool = False) -> None:
        """Play these next (cutting off what plays now). `force` plays even when muted (sound test)."""
        if names:
            with self._lock:
                self._requests.append((names, force))

    def request_for(self, screen: Screen) -> None:
        self.request(cue_for(screen))

    # --- the render thread --------------------------------------------------------------------------

    def open(self) -> bool:
        """Start the mixer and load the sounds; False (logged once) when there is no audio device."""
        if self.available is not None:
            return self.available
        try:
            import pygame.mixer

            pygame.mixer.pre_init(frequency=44100, size=-16, channels=2, buffer=1024)
            pygame.mixer.init()
            pygame.mixer.set_num_channels(2)
            self._channel = pygame.mixer.Channel(0)
        except Exception as e:  # pygame.error, or no SDL audio at all
            self.problem = f"no audio device ({e})"
            log.warning("%s: sounds off", self.problem)
            self.available = False
            return False
        missing = []
        for tone in TONES:
            missing += self._load(f"tone:{tone}")
        for voice in VOICES:
            missing += self._load(f"voice:{voice}")
        if missing:
            log.warning("sound files missing (run tools/make_sounds.py): %s", ", ".join(missing))
        self.available = True
        return True

    def _load(self, name: str) -> list[str]:
        import pygame.mixer

        path = sound_file(name, self.language, self.folder)
        try:
            sound = pygame.mixer.Sound(str(path))
        except (pygame.error, FileNotFoundError, OSError):
            return [str(path)]
        sound.set_volume(self.volume)
        self._sounds[name] = sound
        return []

    def pump(self) -> None:
        """Hand the next sound to the mixer; returns at once."""
        with self._lock:
            request = self._requests.pop() if self._requests else None
            self._requests.clear()  # only the newest request counts
        if request is not None:
            names, force = request
            if (self.mute and not force) or not self.open():
                return
            names = tuple(n for n in names if self.voice or force or not n.startswith("voice:"))
            self._playlist = deque(n for n in names if n in self._sounds)
            if self._channel is not None:
                self._channel.stop()
        if not self._playlist or not self.available or self._channel is None:
            return
        if not self._channel.get_busy():
            self._start(self._channel.play)
        elif self._channel.get_queue() is None:
            self._start(self._channel.queue)

    def _start(self, how) -> None:
        name = self._playlist.popleft()
        how(self._sounds[name])
        self.played.append(name)
        del self.played[:-20]

    def close(self) -> None:
        if self.available:
            try:
                import pygame.mixer

                pygame.mixer.quit()
            except Exception:  # closing on the way out: nothing to do about it
                pass
        self.available = None

"""Tones and spoken prompts, through pygame.mixer, never blocking anybody.

`request()` may be called from any thread (the kiosk loop calls it through `show()`): it only
appends to a queue. `pump()` runs on the display's render thread, the one thread that touches
pygame, and hands the next sound to the mixer, which plays it on SDL's own audio thread. A new
verdict cuts off what is still playing, so a queue of people never hears stale prompts.

What is played matches the screen: the screen kind's tone (pass, deny, attention), then the
prompt for the verdict's reason ("红码，禁止通行", "核酸超时，禁止通行", "网络中断，请人工核验"…,
`REASON_VOICE`), but only a prompt made for that kind of screen (`VOICE_KIND`): a reason shown as
an amber staff check is never spoken as a refusal.

No audio device is not an error: the first failure is logged once (one line: what libasound
writes to the console meanwhile is caught and logged at debug level) and the kiosk stays silent.
The WAV files in `ui/sounds/` are made by `tools/make_sounds.py` (tones in Python, voices with
espeak-ng, `apt install espeak-ng`) and shipped, so a kiosk needs no speech synthesiser;
tests/test_voice.py holds every reason to a prompt in both languages.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import threading
from collections import deque
from pathlib import Path

from sentinel.locale import pairs
from sentinel.screens import Screen, ScreenKind

log = logging.getLogger("ui.sound")

SOUNDS_DIR = Path(__file__).resolve().parent / "sounds"

#: tone files, shared by both languages
TONES = ("pass", "deny", "attention", "read")

#: the spoken prompts, by name: each says the verdict and its reason in a few words, as the screen
#: does (the screen's headline and reason, shortened). The words are the messages `voice.<name>` in
#: sentinel/locale; `tools/make_sounds.py` speaks them into `ui/sounds/<language>/<name>.wav`, so a
#: name is also a file name and stays as it is.
VOICE_NAMES: tuple[str, ...] = (
    "pass", "deny", "manual", "red", "yellow_check", "yellow_deny", "expired", "not_found", "nat_positive",
    "nat_missing", "nat_too_old", "vaccination", "unknown", "offline", "face_not_live", "one_at_a_time", "fault",
)
#: name → (zh-CN, en) words, read from the catalogue
VOICE_TEXT: dict[str, tuple[str, str]] = pairs("voice", VOICE_NAMES)
VOICES = tuple(VOICE_TEXT)

_P, _D, _M = ScreenKind.PASS, ScreenKind.DENY, ScreenKind.MANUAL_CHECK
#: the screen each prompt speaks for: a prompt is only ever played with that screen, so the voice
#: never says 禁止通行 over an amber staff check (`cue_for` falls back to the kind's own prompt)
VOICE_KIND: dict[str, ScreenKind] = {
    "pass": _P, "deny": _D, "manual": _M, "red": _D, "yellow_check": _M, "yellow_deny": _D, "expired": _D,
    "not_found": _M, "nat_positive": _D, "nat_missing": _D, "nat_too_old": _D, "vaccination": _D,
    "unknown": ScreenKind.UNKNOWN_CODE, "offline": _M, "face_not_live": _M,
    "one_at_a_time": ScreenKind.ONE_AT_A_TIME, "fault": ScreenKind.FAULT,
}

#: each verdict reason's prompt (`sentinel.policy.REASONS`; tests/test_voice.py holds every
#: reason to one): what the screen for that reason says, so a reason shown as an amber staff
#: check (offline) or a fault (device not authorised) is not spoken as a refusal
REASON_VOICE: dict[str, str] = {
    "ok": "pass",
    "offline_allowed": "pass",
    "red_code": "red",
    "yellow_code": "yellow_check",
    "yellow_denied": "yellow_deny",
    "green_not_allowed": "deny",
    "expired_code": "expired",
    "not_found": "not_found",
    "nat_positive": "nat_positive",
    "nat_missing": "nat_missing",
    "nat_too_old": "nat_too_old",
    "vaccination": "vaccination",
    "unrecognised": "unknown",
    "offline_denied": "offline",
    "offline_no_cache": "offline",
    "device_unauthorized": "fault",
    "verify_failed": "manual",
    "face_not_live": "face_not_live",
    "face_staff_check": "manual",
    "record_failed": "manual",
    "outbox_full": "manual",
    "outbox_overdue": "manual",
}

#: screen kind → sounds in order: "tone:NAME" or "voice:NAME"; a verdict screen's voice is its
#: reason's (`REASON_VOICE`) when it has one, this one otherwise
CUES: dict[ScreenKind, tuple[str, ...]] = {
    ScreenKind.CHECKING: ("tone:read",),
    ScreenKind.PASS: ("tone:pass", "voice:pass"),
    ScreenKind.DENY: ("tone:deny", "voice:deny"),
    ScreenKind.MANUAL_CHECK: ("tone:attention", "voice:manual"),
    ScreenKind.UNKNOWN_CODE: ("tone:deny", "voice:unknown"),
    ScreenKind.FAULT: ("tone:attention", "voice:fault"),
    ScreenKind.ONE_AT_A_TIME: ("tone:attention", "voice:one_at_a_time"),
    ScreenKind.HOLD_CLOSER: ("tone:attention",),  # a tone, no words: the code is still being held up
}
SOUND_TEST = ("tone:pass", "voice:pass", "tone:deny", "voice:deny")


def sound_file(name: str, language: str, folder: Path = SOUNDS_DIR) -> Path:
    kind, _, stem = name.partition(":")
    return folder / f"tone_{stem}.wav" if kind == "tone" else folder / language / f"{stem}.wav"


def cue_for(screen: Screen) -> tuple[str, ...]:
    """The tone of the screen's kind, then the prompt for its reason, or the kind's own prompt
    when the reason's is for another screen (a reason the pipeline turned into a staff check)."""
    cue = CUES.get(screen.kind, ())
    voice = REASON_VOICE.get(screen.reason)
    if voice and VOICE_KIND.get(voice) == screen.kind:
        cue = tuple(f"voice:{voice}" if n.startswith("voice:") else n for n in cue)
    return cue


@contextlib.contextmanager
def _stderr_captured():
    """Standard error at the file-descriptor level (where C libraries write) goes to a temporary
    file meanwhile: ALSA's complaints become one log line instead of eight on the console."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no fd 2 (a test harness): nothing to capture
        yield None
        return
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield sink
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            sink.captured = sink.read(4096).decode("utf-8", "replace")  # type: ignore[attr-defined]


def _read(sink) -> list[str]:
    return (getattr(sink, "captured", "") or "").splitlines() if sink is not None else []


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
        noise = None
        try:
            import pygame.mixer

            pygame.mixer.pre_init(frequency=44100, size=-16, channels=2, buffer=1024)
            with _stderr_captured() as noise:  # libasound writes 8 lines to fd 2 on a machine without audio
                pygame.mixer.init()
            pygame.mixer.set_num_channels(2)
            self._channel = pygame.mixer.Channel(0)
        except Exception as e:  # pygame.error, or no SDL audio at all
            self.problem = f"no audio device ({e})"
            log.warning("%s: sounds off", self.problem)
            self.available = False
            return False
        finally:
            if noise_lines := [line for line in _read(noise) if line.strip()]:
                log.debug("audio: %d lines from the sound library, the first: %s", len(noise_lines), noise_lines[0])
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

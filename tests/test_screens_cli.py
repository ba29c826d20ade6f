"""The command line says what is wrong in one line and exits 2 on a mistake: `sentinel demo
--size big` (no traceback), `sentinel screens --only foo` (names the screens there are, writes
nothing); and a machine without audio gets one line about it, not libasound's eight."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def sentinel(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
    return subprocess.run([sys.executable, "-m", "sentinel", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.mark.parametrize("size", ["big", "800", "800x", "x480", "80x48"])
def test_demo_with_a_bad_size_says_so_in_one_line(size):
    result = sentinel("demo", "--display", "pygame", "--size", size)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--size" in lines[0] and "800x480" in lines[0], result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_screens_only_an_unknown_name_exits_2_naming_the_screens(tmp_path):
    result = sentinel("screens", "--out", str(tmp_path / "out"), "--only", "foo")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "foo" in lines[0] and "deny_red" in lines[0] and "idle" in lines[0]
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_screens_only_a_known_name_writes_it(tmp_path):
    result = sentinel("screens", "--out", str(tmp_path), "--only", "deny_red", "--layout", "landscape")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["landscape-en-deny_red.png", "landscape-zh-CN-deny_red.png"]


def test_noise_from_a_sound_library_becomes_one_log_line(caplog):
    """What a C library writes to file descriptor 2 while the mixer opens is caught, not shown."""
    from ui.sound import _read, _stderr_captured

    with _stderr_captured() as sink:
        for n in range(8):
            os.write(2, f"ALSA lib conf.c:{n}: cannot find card '0'\n".encode())
    lines = _read(sink)
    assert len(lines) == 8 and lines[0].startswith("ALSA lib")
    os.write(2, b"")  # fd 2 is back: writing to it works


def test_no_audio_device_is_one_warning(monkeypatch, caplog):
    import pygame.mixer

    from ui.sound import SoundPlayer

    def no_device(*a, **kw):
        os.write(2, b"ALSA lib pcm.c:2666:(snd_pcm_open_noupdate) Unknown PCM default\n" * 8)
        raise pygame.error("ALSA: Couldn't open audio device")

    monkeypatch.setattr(pygame.mixer, "init", no_device)
    with caplog.at_level(logging.DEBUG, logger="ui.sound"):
        assert SoundPlayer().open() is False
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "no audio device" in warnings[0].getMessage()
    assert any("8 lines" in r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG)

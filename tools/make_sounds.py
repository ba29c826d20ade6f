"""Make the kiosk's sounds: tones in pure Python, spoken prompts with espeak-ng.

    .venv/bin/python tools/make_sounds.py [--out ui/sounds] [--tones-only]

Writes mono 16 kHz 16-bit WAV files (small, and every mixer takes them):

- `tone_pass.wav`       two rising notes (a pass)
- `tone_deny.wav`       two low buzzes (a deny), unlike the pass tone in pitch, timbre and rhythm
- `tone_attention.wav`  three short mid beeps (staff check, faults)
- `tone_read.wav`       one short blip (the code was read, checking)
- `zh-CN/*.wav`, `en/*.wav`  the spoken prompts: `ui.sound.VOICE_TEXT`, one per verdict reason
  (`ui.sound.REASON_VOICE`), each a few words, said briskly so the queue keeps moving

Voices need `espeak-ng` (apt install espeak-ng); `sox` is used to resample when present, numpy
otherwise. The files are shipped in the repository, so kiosks and CI need neither; rerun this
after changing a prompt. Output is deterministic: the same input makes the same bytes.
"""

from __future__ import annotations

import argparse
import math
import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

RATE = 16_000
ROOT = Path(__file__).resolve().parents[1]

sys.path.insert(0, str(ROOT))
from ui.sound import VOICE_TEXT  # the prompts' words have one home, next to their use (after sys.path)

#: language → prompt name → words
VOICES: dict[str, dict[str, str]] = {
    "zh-CN": {name: zh for name, (zh, _) in VOICE_TEXT.items()},
    "en": {name: en for name, (_, en) in VOICE_TEXT.items()},
}
ESPEAK_VOICE = {"zh-CN": "cmn", "en": "en-us"}
ESPEAK_SPEED = {"zh-CN": "230", "en": "175"}  # words per minute: brisk, the queue is waiting


def _envelope(n: int, attack_s: float = 0.005, release_s: float = 0.04) -> np.ndarray:
    env = np.ones(n)
    a, r = max(1, int(attack_s * RATE)), max(1, int(release_s * RATE))
    env[:a] = np.linspace(0, 1, a)
    env[-r:] *= np.linspace(1, 0, r)
    return env


def _note(freq: float, seconds: float, harmonics=(1.0,), decay: float = 0.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    wave_ = sum(amp * np.sin(2 * math.pi * freq * (k + 1) * t) for k, amp in enumerate(harmonics))
    if decay:
        wave_ = wave_ * np.exp(-decay * t)
    return wave_ / sum(abs(a) for a in harmonics) * _envelope(len(t))


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE))


def tones() -> dict[str, np.ndarray]:
    square_ish = (1.0, 0.0, 0.33, 0.0, 0.2, 0.0, 0.14)  # odd harmonics: a buzz
    return {
        "tone_pass": np.concatenate([_note(1046.5, 0.11, (1.0, 0.25), 6), _silence(0.02), _note(1568.0, 0.2, (1.0, 0.25), 8)]),
        "tone_deny": np.concatenate([_note(311.0, 0.2, square_ish), _silence(0.07), _note(311.0, 0.28, square_ish)]),
        "tone_attention": np.concatenate([_note(880.0, 0.09, (1.0, 0.3)), _silence(0.06)] * 2 + [_note(880.0, 0.09, (1.0, 0.3))]),
        "tone_read": _note(2000.0, 0.05, (1.0,), 20),
    }


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16 if width == 2 else np.uint8)
    samples = data.astype(np.float64)
    if width == 1:
        samples = samples - 128
    samples /= 32768.0 if width == 2 else 128.0
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    return samples, rate


def _resample(samples: np.ndarray, rate: int) -> np.ndarray:
    if rate == RATE:
        return samples
    n = int(len(samples) * RATE / rate)
    return np.interp(np.arange(n) * rate / RATE, np.arange(len(samples)), samples)


def _trim(samples: np.ndarray, threshold: float = 0.01, pad_s: float = 0.03) -> np.ndarray:
    loud = np.flatnonzero(np.abs(samples) > threshold)
    if loud.size == 0:
        return samples
    pad = int(pad_s * RATE)
    return samples[max(0, loud[0] - pad) : loud[-1] + pad]


def speak(text: str, language: str, espeak: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        subprocess.run([espeak, "-v", ESPEAK_VOICE[language], "-s", ESPEAK_SPEED[language], "-w", str(raw), text], check=True, capture_output=True)
        sox = shutil.which("sox")
        if sox:
            converted = Path(tmp) / "16k.wav"
            subprocess.run([sox, "-D", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(converted)], check=True, capture_output=True)
            samples, _ = _read_wav(converted)
        else:
            samples, rate = _read_wav(raw)
            samples = _resample(samples, rate)
    return _trim(samples)


def write_wav(path: Path, samples: np.ndarray, peak: float = 0.8) -> int:
    top = float(np.max(np.abs(samples))) or 1.0
    data = np.clip(samples / top * peak, -1, 1)
    fade = min(len(data), int(0.01 * RATE))
    data[-fade:] *= np.linspace(1, 0, fade)
    pcm = (data * 32767).astype("<i2").tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm)
    return path.stat().st_size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "ui" / "sounds", help="output folder (default ui/sounds)")
    parser.add_argument("--tones-only", action="store_true", help="skip the spoken prompts")
    args = parser.parse_args(argv)
    total = 0
    for name, samples in tones().items():
        total += write_wav(args.out / f"{name}.wav", samples, peak=0.7)
    if not args.tones_only:
        espeak = shutil.which("espeak-ng")
        if espeak is None:
            print("make_sounds: espeak-ng not found (apt install espeak-ng); use --tones-only to skip the voices", file=sys.stderr)
            return 1
        for language, prompts in VOICES.items():
            for name, text in prompts.items():
                total += write_wav(args.out / language / f"{name}.wav", speak(text, language, espeak), peak=0.9)
    print(f"make_sounds: wrote {args.out} ({total / 1024:.0f} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

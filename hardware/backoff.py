"""Capped exponential back-off for reopening a device that is missing or failing (cameras,
scanners): wait `initial`, then twice that, up to `cap`, and start over once the device works.

Why: a device that comes back is seen within `cap` plus one open, and a device that stays away
costs one cheap open attempt every `cap` seconds, never a busy loop (a zero `initial` still grows).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Longest wait between two attempts to (re)open a camera that is missing or failing. A camera
#: that comes back is therefore seen within this plus one open (≈ 1 s), which the kiosk promises
#: to be within 5 s. Opening a missing /dev/video0 or Pi camera costs a few ms, so trying every
#: 4 s is no burden. sentinel/notify.py's watchdog keeps pinging while these attempts go on (see
#: there): the two policies are stated against this one number.
RECONNECT_MAX_S = 4.0
#: the first wait after a failure; it doubles up to RECONNECT_MAX_S
RECONNECT_INITIAL_S = 0.5


@dataclass
class Backoff:
    """Capped exponential back-off for reopening a device: `initial`, doubling, at most `cap`."""

    initial: float = RECONNECT_INITIAL_S
    cap: float = RECONNECT_MAX_S

    def __post_init__(self) -> None:
        self.cap = max(self.cap, 0.0)
        self._next = min(self.initial, self.cap)

    def next_delay(self) -> float:
        """The wait before the next attempt; each call doubles the one after (up to `cap`)."""
        delay = self._next
        self._next = min(max(delay, 1e-3) * 2, self.cap)
        return delay

    def reset(self) -> None:
        self._next = min(self.initial, self.cap)

"""The kiosk's lock on its state directory: one sentinel process at a time.

The running kiosk holds `<state_dir>/sentinel.lock` (`LOCK_NAME`); `sentinel wipe` and `sentinel
outbox` refuse while another process holds it, so records are never destroyed or moved under a
running kiosk. flock is advisory and released by the kernel when the holder dies, so a kill -9
never leaves a stale lock. The lock file is opened without following a link and created 0600.

How it fails: `acquire` raises `StateLockHeld` (a BlockingIOError) naming the directory when
another process holds it, and OSError when the directory cannot be made or the file opened (a
read-only card: sentinel/kiosk_parts.py then falls back as its docstring says).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from sentinel.state_files import FILE_MODE, LOCK_NAME


class StateLockHeld(BlockingIOError):
    """Another process (a running kiosk) holds the state directory."""


class StateLock:
    """The advisory lock on one state directory (the module docstring says how it behaves)."""

    def __init__(self, state_dir: Path):
        self.path = Path(state_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> "StateLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StateLockHeld(f"{self.path.parent} is in use by another sentinel process (is the kiosk running?)") from None
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "StateLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

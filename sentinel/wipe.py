"""Destroying a device's local personal data, for a retired or handed-over device.

What is personal data here: the outbox (records: masked identities, statuses, keyed credential
hashes), the records set aside in it, copies of a corrupt outbox, the status cache, the record key
(with it, a credential hash can be tested against a guessed token or ID number), and a face
gallery (`faces/`) if the device has one. `wipe` overwrites each file with zeros, flushes it to
the card, truncates and deletes it, then flushes the directory.

What it cannot promise: an SD card (or eMMC, or an SSD) maps writes to fresh flash blocks for wear
levelling, so the old blocks may survive the overwrite inside the card until it reuses them, and
the filesystem's journal may hold fragments. Overwriting removes the data from everything that
reads the card through its normal interface; against someone who desoldered the flash, only a
physically destroyed card (or data that was encrypted with a key now destroyed) is safe.

The kiosk holds `state_dir/sentinel.lock` while it runs; wipe refuses while another process holds
it, so records are never destroyed under a running kiosk.
"""

from __future__ import annotations

import fcntl
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from sentinel.outbox import corrupt_copies, sidecars

log = logging.getLogger("sentinel.wipe")

LOCK_NAME = "sentinel.lock"
RECORD_KEY_NAME = "record.key"
STATUS_CACHE_NAME = "status-cache.sqlite3"
FACES_DIR_NAME = "faces"

_CHUNK = 1024 * 1024

WEAR_LEVELLING_NOTE = (
    "Overwritten through the filesystem. An SD card's wear levelling may keep old copies of these "
    "blocks inside the card where no normal read reaches them; for a card that leaves your hands "
    "with data that must not be recovered, destroy the card."
)


class StateLockHeld(BlockingIOError):
    """Another process (a running kiosk) holds the state directory."""


class StateLock:
    """An advisory lock on the state directory (flock: released by the kernel when the holder dies,
    so a kill -9 never leaves a stale lock)."""

    def __init__(self, state_dir: Path):
        self.path = Path(state_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> "StateLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
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


@dataclass
class WipeReport:
    files: list[str] = field(default_factory=list)
    bytes_overwritten: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def personal_data(state_dir: Path, outbox_path: Path, status_cache_path: Path | None = None) -> list[Path]:
    """Every file wipe would destroy, existing ones only, in a stable order."""
    state_dir = Path(state_dir)
    outbox_path = Path(outbox_path)
    cache = Path(status_cache_path) if status_cache_path else state_dir / STATUS_CACHE_NAME
    candidates: list[Path] = []
    for db in (outbox_path, *corrupt_copies(outbox_path), cache):
        candidates += [db, *sidecars(db)]
    if outbox_path.parent.is_dir():  # also pieces of a copy whose move was cut short
        candidates += sorted(p for p in outbox_path.parent.iterdir() if p.name.startswith(outbox_path.name + ".corrupt-"))
    candidates.append(state_dir / RECORD_KEY_NAME)
    candidates.append(state_dir / (RECORD_KEY_NAME.rsplit(".", 1)[0] + ".tmp"))  # a key write cut short
    faces = state_dir / FACES_DIR_NAME
    if faces.is_dir():
        candidates += sorted(p for p in faces.rglob("*") if p.is_file() or p.is_symlink())
    seen: set[Path] = set()
    out = []
    for p in candidates:
        if p not in seen and (p.is_file() or p.is_symlink()):
            seen.add(p)
            out.append(p)
    return out


def shred(path: Path) -> int:
    """Overwrite a file with zeros, sync, truncate and delete it; returns bytes overwritten.
    A symlink is removed, not followed (it could point anywhere)."""
    path = Path(path)
    if path.is_symlink():
        path.unlink()
        return 0
    size = path.stat().st_size
    fd = os.open(path, os.O_WRONLY)
    try:
        zeros = bytes(min(size, _CHUNK))
        left = size
        while left > 0:
            left -= os.write(fd, zeros[: min(left, _CHUNK)])
        os.fsync(fd)
        os.ftruncate(fd, 0)
        os.fsync(fd)
    finally:
        os.close(fd)
    path.unlink()
    return size


def _sync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def wipe(state_dir: Path, outbox_path: Path, status_cache_path: Path | None = None) -> WipeReport:
    """Destroy the local personal data. The caller has confirmed, and holds the state lock."""
    state_dir = Path(state_dir)
    report = WipeReport()
    for path in personal_data(state_dir, outbox_path, status_cache_path):
        try:
            report.bytes_overwritten += shred(path)
            report.files.append(str(path))
        except OSError as e:
            report.errors.append(f"{path}: {e}")
    faces = state_dir / FACES_DIR_NAME
    if faces.is_dir():
        for d in sorted((p for p in faces.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            try:
                d.rmdir()
            except OSError as e:
                report.errors.append(f"{d}: {e}")
        try:
            faces.rmdir()
        except OSError as e:
            report.errors.append(f"{faces}: {e}")
    for d in {Path(outbox_path).parent, state_dir}:
        _sync_dir(d)
    for f in report.files:
        log.warning("wiped %s", f)
    return report

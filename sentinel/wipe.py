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

How it resists being turned against the machine (it runs as root, in a directory the kiosk user
owns; sentinel/state_files.py says why): it works as the `sentinel` user where one exists
(`sentinel/commands/wipe.py`), and every directory and file is opened relative to a directory
descriptor with `O_NOFOLLOW`, so it never follows a link out of the state directory, not even one
swapped in between a look and an open. A symlink where a file belongs is removed (the link, not
its target); a symlink where a directory belongs (`faces -> /home`) is refused, left in place and
named in one line (`WipeReport.errors`, exit 1), because someone put it there. A file with more
than one name that belongs to another user than the directory's owner is unlinked without being
overwritten (overwriting it would write through a hard link into someone else's file).

The kiosk holds `state_dir/sentinel.lock` while it runs (sentinel/state_lock.py); wipe refuses
while another process holds it, so records are never destroyed under a running kiosk.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from sentinel.atomic import fsync_dir
from sentinel.state_files import (
    OUTBOX_NAME,
    STATUS_CACHE_NAME,
    SymlinkRefused,
    open_child_dir,
    open_dir,
    personal_entry,
)

log = logging.getLogger("sentinel.wipe")

_CHUNK = 1024 * 1024

WEAR_LEVELLING_NOTE = (
    "Overwritten through the filesystem. An SD card's wear levelling may keep old copies of these "
    "blocks inside the card where no normal read reaches them; for a card that leaves your hands "
    "with data that must not be recovered, destroy the card."
)


@dataclass
class WipeReport:
    files: list[str] = field(default_factory=list)
    bytes_overwritten: int = 0
    errors: list[str] = field(default_factory=list)
    #: symlinks removed without following them (where a file belonged)
    links_removed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


# --- finding what to destroy, without following a link -------------------------------------------


@dataclass(frozen=True)
class _Found:
    path: Path
    dir_fd: int  # valid only inside the walk
    name: str
    kind: str  # "file" | "link" | "dir" | "other"


def _kind(entry: os.DirEntry) -> str:
    if entry.is_symlink():
        return "link"
    if entry.is_dir(follow_symlinks=False):
        return "dir"
    if entry.is_file(follow_symlinks=False):
        return "file"
    return "other"


def _walk(
    state_dir: Path,
    outbox_path: Path,
    status_cache_path: Path | None,
    errors: list[str],
    *,
    remove_dirs: bool = False,
    only: str | None = None,
) -> Iterator[_Found]:
    """Every personal entry, depth first (a directory after its contents), each with the
    descriptor of its directory. `remove_dirs`: each personal directory is removed once emptied."""
    state_dir = Path(state_dir)
    outbox_path = Path(outbox_path)
    cache = Path(status_cache_path) if status_cache_path else state_dir / STATUS_CACHE_NAME
    dirs: dict[Path, set[str]] = {}
    for folder, kind in ((state_dir, None), (outbox_path.parent, "outbox"), (cache.parent, "cache")):
        dirs.setdefault(folder, set()).add(kind or "state")
    for folder, roles in dirs.items():
        try:
            fd = open_dir(folder)
        except FileNotFoundError:
            continue
        except OSError as e:
            errors.append(str(e) if isinstance(e, SymlinkRefused) else f"{folder}: {e}")
            continue
        try:
            for entry in _scan(fd):
                row = personal_entry(entry.name, outbox_path.name, cache.name)
                if row is None or _home(row) not in roles or (only is not None and row.name != only):
                    continue
                kind = _kind(entry)
                if row.directory and kind == "dir":
                    yield from _tree(fd, entry.name, folder / entry.name, errors, remove_dirs)
                elif row.directory and kind == "link":
                    errors.append(str(_refusal(fd, entry.name, folder / entry.name)))
                elif not row.directory:
                    yield _Found(folder / entry.name, fd, entry.name, kind)
        finally:
            os.close(fd)


def _home(row) -> str:
    """Which configured directory a personal entry lives in: the outbox's, the cache's, or the state directory."""
    if row.sqlite and row.name.startswith(OUTBOX_NAME):
        return "outbox"
    if row.name == STATUS_CACHE_NAME:
        return "cache"
    return "state"


def _scan(fd: int) -> list[os.DirEntry]:
    with os.scandir(fd) as it:
        return sorted(it, key=lambda e: e.name)


def _refusal(parent_fd: int, name: str, path: Path) -> OSError:
    try:
        os.close(open_child_dir(parent_fd, name, path))
    except OSError as e:
        return e
    return OSError(f"{path}: changed while being looked at")


def _tree(parent_fd: int, name: str, path: Path, errors: list[str], remove: bool) -> Iterator[_Found]:
    """The files under the directory `name`, never through a link; then the directory itself."""
    try:
        fd = open_child_dir(parent_fd, name, path)
    except OSError as e:
        errors.append(str(e) if isinstance(e, SymlinkRefused) else f"{path}: {e}")
        return
    try:
        for entry in _scan(fd):
            kind = _kind(entry)
            if kind == "dir":
                yield from _tree(fd, entry.name, path / entry.name, errors, remove)
            elif kind == "link" and _points_to_dir(fd, entry.name):
                errors.append(str(_refusal(fd, entry.name, path / entry.name)))
            else:
                yield _Found(path / entry.name, fd, entry.name, kind)
    finally:
        os.close(fd)
    if remove:
        try:
            os.rmdir(name, dir_fd=parent_fd)
        except OSError as e:
            errors.append(f"{path}: {e}")


def _points_to_dir(dir_fd: int, name: str) -> bool:
    """Whether the link's target is a directory (looked at, never opened)."""
    try:
        return stat.S_ISDIR(os.stat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        return False


def personal_data(state_dir: Path, outbox_path: Path, status_cache_path: Path | None = None) -> list[Path]:
    """Every file wipe would destroy (symlinks included, as links), in a stable order. Nothing
    behind a link is listed."""
    return [f.path for f in _walk(state_dir, outbox_path, status_cache_path, [])]


def refused(state_dir: Path, outbox_path: Path, status_cache_path: Path | None = None) -> list[str]:
    """One line per symlink where a directory belongs (wipe leaves them and fails)."""
    errors: list[str] = []
    for _ in _walk(state_dir, outbox_path, status_cache_path, errors):
        pass
    return errors


# --- destroying ---------------------------------------------------------------------------------


def shred(path: Path) -> int:
    """Overwrite a file with zeros, sync, truncate and delete it; returns bytes overwritten.
    A symlink is removed, not followed (it could point anywhere), also one swapped in while this
    runs. The directories above `path` are the caller's (trusted) choice."""
    path = Path(path)
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return shred_at(fd, path.name)
    finally:
        os.close(fd)


def shred_at(dir_fd: int, name: str, *, removed_link: Callable[[str], None] | None = None) -> int:
    """`shred` for `name` inside the directory `dir_fd`: opened with O_NOFOLLOW (a link fails the
    open and is unlinked instead), checked to be a regular file on the open descriptor, written
    through that descriptor, then its name unlinked relative to `dir_fd`."""
    try:
        fd = os.open(name, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as e:
        # ELOOP: a symlink; ENXIO, ENODEV: a FIFO without reader, a socket, a device. Remove the
        # name only: nothing behind it is touched.
        if e.errno not in (errno.ELOOP, errno.ENXIO, errno.ENODEV, errno.EOPNOTSUPP):
            raise
        if e.errno == errno.ELOOP and removed_link is not None:
            removed_link(name)
        os.unlink(name, dir_fd=dir_fd)
        return 0
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            size = 0  # a FIFO or a device opened after all: never write to it
        elif st.st_nlink > 1 and st.st_uid != os.fstat(dir_fd).st_uid:
            log.warning("%s has other names and belongs to uid %d: unlinked, not overwritten", name, st.st_uid)
            size = 0
        else:
            size = st.st_size
            zeros = bytes(min(size, _CHUNK))
            left = size
            while left > 0:
                left -= os.write(fd, zeros[: min(left, _CHUNK)])
            os.fsync(fd)
            os.ftruncate(fd, 0)
            os.fsync(fd)
    finally:
        os.close(fd)
    os.unlink(name, dir_fd=dir_fd)
    return size


def wipe(
    state_dir: Path,
    outbox_path: Path,
    status_cache_path: Path | None = None,
    *,
    as_root: Callable[[], AbstractContextManager] | None = None,
    only: str | None = None,
) -> WipeReport:
    """Destroy the local personal data. The caller has confirmed, and holds the state lock.
    `as_root`: a context that gives root back for one file the current user cannot open
    (`StateOwner.as_root`, when the command dropped to the kiosk's user). `only`: just this
    entry of sentinel/state_files.py (`faces`: the gallery's retention)."""
    state_dir = Path(state_dir)
    report = WipeReport()
    for found in _walk(state_dir, outbox_path, status_cache_path, report.errors, remove_dirs=True, only=only):

        def removed_link(name: str, found: _Found = found) -> None:
            report.links_removed.append(f"{found.path} -> {_readlink_at(found.dir_fd, name)}")

        try:
            try:
                report.bytes_overwritten += shred_at(found.dir_fd, found.name, removed_link=removed_link)
            except PermissionError:
                if as_root is None:
                    raise
                with as_root():
                    report.bytes_overwritten += shred_at(found.dir_fd, found.name, removed_link=removed_link)
            report.files.append(str(found.path))
        except FileNotFoundError:
            pass  # gone meanwhile (a SQLite sidecar)
        except OSError as e:
            report.errors.append(f"{found.path}: {e}")
    for d in {Path(outbox_path).parent, state_dir}:
        fsync_dir(d)
    for f in report.files:
        log.warning("wiped %s", f)
    for link in report.links_removed:
        log.warning("removed the symbolic link %s without following it", link)
    return report


def _readlink_at(dir_fd: int, name: str) -> str:
    try:
        return os.readlink(name, dir_fd=dir_fd)
    except OSError:
        return "?"


__all__ = ["WEAR_LEVELLING_NOTE", "WipeReport", "personal_data", "refused", "shred", "shred_at", "wipe"]

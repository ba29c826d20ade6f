"""Replacing a file so that a power cut leaves either the old content or the new, never half of
either: the one home of that recipe (the device token and config written by `sentinel bind`, the
record key, the state directory's fsync after a wipe).

How: the bytes go to a temporary file in the target's own folder (a rename is atomic only within
one file system), which gets its final mode (and owner, when asked and allowed) before the first
byte is written, is fsynced, renamed over the target, and then the folder is fsynced so the rename
itself survives a power cut. How it fails: any OSError is raised to the caller after the temporary
file is removed; no empty or partial temporary file is left behind. A failed folder fsync (a file
system that does not support it) is ignored: the data is already on disk.

Standard library only; the core stays pure Python.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

#: the mode a new state file gets (see sentinel/state_files.py FILE_MODE)
PRIVATE_MODE = 0o600


def write_atomic(path: Path | str, data: bytes, mode: int = PRIVATE_MODE, *, owner: tuple[int, int] | None = None,
                 tmp: Path | str | None = None) -> None:
    """Replace `path` with `data`, `mode` from the first byte (whatever the umask).

    `owner` (uid, gid) is given to the file when this process may (root); otherwise it stays ours.
    `tmp` names the temporary file when a fixed name is needed (a name `sentinel wipe` knows);
    by default a unique hidden name in the same folder is used."""
    path = Path(path)
    if tmp is None:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # created 0600
    else:
        tmp_name = os.fspath(tmp)
        fd = os.open(tmp_name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode & PRIVATE_MODE)
    try:
        try:
            if owner is not None and hasattr(os, "fchown"):
                try:
                    os.fchown(fd, *owner)
                except PermissionError:
                    pass  # not root: the file stays ours
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except OSError:
            pass
        raise
    fsync_dir(path.parent)


def fsync_dir(folder: Path | str) -> None:
    """Make a rename or unlink in `folder` durable; silently nothing where the folder cannot be
    opened or fsynced (the data itself is already on disk)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

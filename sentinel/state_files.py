"""Every name a sentinel uses in its state directory (`[device] state_dir`, /var/lib/sentinel), in
one table, and how a root-run technician command works in that directory without being turned
against the machine.

Why one table: `sentinel wipe` must destroy every file with personal data, and a file added by
one part of the code and forgotten by wipe would survive a device's retirement. Wipe walks the
directory and destroys whatever `personal_entry` names; `tests/test_wipe_attacks.py` creates one
of each entry in `STATE_FILES` and checks that wipe takes the personal ones and leaves the rest.
A new file in the state directory gets a row here first.

Why the care: the kiosk runs as the unprivileged `sentinel` user and owns the state directory,
while `sentinel wipe` and `sentinel faces …` are run by a technician with sudo. Whoever controls
the kiosk user (a bug, a compromised kiosk) can put symbolic links in that directory, and a root
process that follows them zeroes or deletes files anywhere (`faces -> /etc`). So these commands:

- do their work as the `sentinel` user when it exists (`as_state_owner`: the effective ids are
  dropped for the duration, so the kernel refuses whatever that user could not do anyway; where
  no such user exists, a development machine, they go on as they are);
- open every directory and file relative to a directory descriptor with `O_NOFOLLOW`, so a
  symlink swapped in between a check and an open (a race) fails the open instead of being
  followed; a symlink where a file belongs is removed (the link, never its target), a symlink
  where a directory belongs is refused and named;
- create files with an explicit mode (0600) through `os.open`, whatever sudo's umask.

The configured directory itself is root's choice and trusted as given, except that its last
component must not be a symlink (`open_dir`). Standard library only: imported by the gallery and
by `sentinel.wipe`, which everything else imports.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("sentinel.state_files")

#: the user the kiosk runs as (systemd/sentinel.service `User=`); technician commands work as it
STATE_USER = "sentinel"

LOCK_NAME = "sentinel.lock"
RECORD_KEY_NAME = "record.key"
#: `records.load_or_create_key` writes the key here first (`path.with_suffix(".tmp")`)
RECORD_KEY_TMP_NAME = "record.tmp"
OUTBOX_NAME = "outbox.sqlite3"
#: `<outbox>.corrupt-<UTC time>`: a damaged outbox moved aside (sentinel/outbox/)
CORRUPT_INFIX = ".corrupt-"
STATUS_CACHE_NAME = "status-cache.sqlite3"
FACES_DIR_NAME = "faces"
GALLERY_NAME = "gallery.sqlite3"
IMAGES_DIR_NAME = "images"
#: the files SQLite keeps next to a database
SQLITE_SIDECARS = ("-wal", "-shm", "-journal")
#: only in `sentinel demo`'s temporary state directory
PIN_LOCKOUT_NAME = "pin-lockout.json"
#: the fleet's signed site policy in force, as received (sentinel/fleet/link.py)
FLEET_POLICY_NAME = "fleet-policy.json"
DEMO_TOKEN_NAME = "device-token"
DEMO_SERVICE_NAME = "service.sqlite3"
DEMO_SCENES_DIR_NAME = "demo-scenes"

#: mode of every file a sentinel creates in its state directory (the unit's UMask=0027 gives the
#: kiosk 0640 at most; technician commands ask for 0600 explicitly)
FILE_MODE = 0o600
DIR_MODE = 0o700


@dataclass(frozen=True)
class StateFile:
    """One entry of the state directory: `name` exactly, or names starting with it (`prefix`)."""

    name: str
    what: str
    personal: bool
    directory: bool = False
    prefix: bool = False
    sqlite: bool = False  # SQLITE_SIDECARS may sit next to it
    example: str = ""  # a real name, for a prefix entry

    def matches(self, name: str) -> bool:
        bases = [name]
        if self.sqlite:
            bases += [name[: -len(s)] for s in SQLITE_SIDECARS if name.endswith(s)]
        return any(b.startswith(self.name) if self.prefix else b == self.name for b in bases)

    def examples(self) -> list[str]:
        base = self.example or self.name
        return [base, *(base + s for s in SQLITE_SIDECARS)] if self.sqlite else [base]


STATE_FILES: tuple[StateFile, ...] = (
    StateFile(OUTBOX_NAME, "check records waiting for upload, and records set aside (sentinel/outbox/)", True, sqlite=True),
    StateFile(OUTBOX_NAME + CORRUPT_INFIX, "a damaged outbox moved aside for a technician", True, prefix=True, sqlite=True,
              example=OUTBOX_NAME + CORRUPT_INFIX + "20260101T000000000000Z"),
    StateFile(STATUS_CACHE_NAME, "statuses seen online, for the `cached` offline policy (sentinel/status_cache.py)", True, sqlite=True),
    StateFile(RECORD_KEY_NAME, "the key of the credential hashes in records (sentinel/records.py)", True),
    StateFile(RECORD_KEY_TMP_NAME, "a record key being written", True),
    StateFile(FACES_DIR_NAME, "the face gallery: encodings, masked names, kept face images (sentinel/faces/gallery.py)", True,
              directory=True),
    StateFile(LOCK_NAME, "held by the running kiosk (sentinel/state_lock.py StateLock); empty", False),
    StateFile(FLEET_POLICY_NAME, "the fleet's signed site policy in force, kept across restarts (sentinel/fleet/link.py)", False),
    StateFile(PIN_LOCKOUT_NAME, "the technician PIN pad's failed tries and lockout, kept across restarts (ui/pin.py)", False),
    StateFile(DEMO_TOKEN_NAME, "`sentinel demo` only: the demo device's token (a secret, not personal data)", False),
    StateFile(DEMO_SERVICE_NAME, "`sentinel demo` only: the reference service's made-up people", False, sqlite=True),
    StateFile(DEMO_SCENES_DIR_NAME, "`sentinel demo` only: links to the shipped scenes", False, directory=True),
)  # fmt: skip


def personal_entry(name: str, outbox_name: str = OUTBOX_NAME, status_cache_name: str = STATUS_CACHE_NAME) -> StateFile | None:
    """The STATE_FILES row with personal data that `name` is (the outbox and the status cache
    under their configured names), or None: not personal data, or not ours."""
    renamed = {OUTBOX_NAME: outbox_name, STATUS_CACHE_NAME: status_cache_name}
    for row in STATE_FILES:
        if not row.personal:
            continue
        probe = row
        for default, actual in renamed.items():
            if row.name.startswith(default) and actual != default:
                probe = StateFile(actual + row.name[len(default):], row.what, True, row.directory, row.prefix, row.sqlite)
        if probe.matches(name):
            return row
    return None


# --- opening things without following links -------------------------------------------------------


class SymlinkRefused(OSError):
    """A symlink where a directory belongs; never followed. The message is one line for a technician."""

    def __str__(self) -> str:
        return str(self.strerror)


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def open_dir(path: os.PathLike | str) -> int:
    """A descriptor of the directory `path`, refusing it when it is a symlink (SymlinkRefused)."""
    return open_child_dir(None, os.fspath(path))


def open_child_dir(parent_fd: int | None, name: str, shown: os.PathLike | str | None = None) -> int:
    """A descriptor of the directory `name` inside `parent_fd` (a path when None), never through a
    symlink: SymlinkRefused, with `shown` (or `name`) in its one-line message."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link(name, parent_fd):
            raise SymlinkRefused(
                e.errno,
                f"{os.fspath(shown or name)} is a symbolic link to {_readlink(name, parent_fd)}, not a directory: "
                "refused, not followed (look at who put it there)",
            ) from None
        raise


def make_dir(parent_fd: int, name: str, mode: int = DIR_MODE, shown: os.PathLike | str | None = None) -> int:
    """The directory `name` inside `parent_fd`, created with exactly `mode` when missing (whatever
    the umask), opened without following a link."""
    try:
        os.mkdir(name, mode, dir_fd=parent_fd)
        created = True
    except FileExistsError:
        created = False
    fd = open_child_dir(parent_fd, name, shown)
    if created:
        os.fchmod(fd, mode)
    return fd


def make_dirs(path: os.PathLike | str, mode: int = DIR_MODE) -> int:
    """`path` and missing parents (created `mode`), a descriptor of the last, which must not be a
    symlink; existing parents are taken as they are (root's choice)."""
    path = os.path.abspath(os.fspath(path))
    parent, name = os.path.split(path)
    if not os.path.isdir(parent):
        os.close(make_dirs(parent, mode))
    parent_fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return make_dir(parent_fd, name, mode, path)
    finally:
        os.close(parent_fd)


def create_file(dir_fd: int, name: str, mode: int = FILE_MODE, *, exclusive: bool = False) -> int:
    """A descriptor for writing `name` inside `dir_fd`, created with `mode` (umask-independent:
    fchmod after creation), never through a symlink."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_EXCL if exclusive else 0)
    fd = os.open(name, flags, mode, dir_fd=dir_fd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, f"{name} is not a regular file")
        if stat.S_IMODE(st.st_mode) & ~mode:
            os.fchmod(fd, stat.S_IMODE(st.st_mode) & mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _is_link(name: str, dir_fd: int | None) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _readlink(name: str, dir_fd: int | None) -> str:
    try:
        return os.readlink(name, dir_fd=dir_fd)
    except OSError:
        return "?"


# --- working as the kiosk's user ---------------------------------------------------------------


class StateOwner:
    """What `as_state_owner` did: `user` is who the work runs as now (None: unchanged)."""

    def __init__(self, user: str | None, uid: int | None = None, note: str = "") -> None:
        self.user = user
        self.uid = uid
        self.note = note

    @contextlib.contextmanager
    def as_root(self) -> Iterator[None]:
        """Root back for one step (a file left root-owned by an older command, which the kiosk
        user cannot open); a no-op when nothing was dropped. Links are still never followed."""
        if self.user is None:
            yield
            return
        os.setresuid(-1, 0, -1)
        try:
            yield
        finally:
            os.setresuid(-1, self.uid, -1)


@contextlib.contextmanager
def as_state_owner(
    user: str = STATE_USER, *, lookup: Callable[[str], object] | None = None, state_dir: Path | str | None = None
) -> Iterator[StateOwner]:
    """Run the body with the effective user and groups of `user` when this process is root and
    `user` exists; otherwise unchanged. The saved user id stays root, so root is given back at the
    end (the threat is the kiosk user's links, not code in this process). Read root-only files
    (the config, the device token) before entering.

    A `state_dir` that root owns (or, when it is not there yet, whose nearest existing folder root
    owns) is worked on as root: the kiosk's user planted nothing there, and as that user the work
    could not even read it (a state directory given on the command line, or a test's; the installed
    one, /var/lib/sentinel, is the kiosk user's, made by systemd-tmpfiles)."""
    import pwd

    if os.geteuid() != 0:
        yield StateOwner(None, note="not root")
        return
    if state_dir is not None:
        # not there yet: whoever owns the nearest folder above it would own it
        existing = Path(state_dir)
        while not os.path.lexists(existing) and existing != existing.parent:
            existing = existing.parent
        try:
            root_owned = os.lstat(existing).st_uid == 0
        except OSError:
            root_owned = False
        if root_owned:
            yield StateOwner(None, note="state directory owned by root")
            return
    try:
        pw = (lookup or pwd.getpwnam)(user)
    except KeyError:
        log.debug("no %r user on this machine: working as root (links are still never followed)", user)
        yield StateOwner(None, note=f"no {user} user")
        return
    uid, gid, name = pw.pw_uid, pw.pw_gid, pw.pw_name  # type: ignore[attr-defined]
    groups, egid = os.getgroups(), os.getegid()
    try:
        member_of = os.getgrouplist(name, gid)
    except OSError:
        member_of = [gid]
    os.setgroups(member_of)
    os.setresgid(-1, gid, -1)
    os.setresuid(-1, uid, -1)
    try:
        yield StateOwner(name, uid)
    finally:
        os.setresuid(-1, 0, -1)
        os.setresgid(-1, egid, -1)
        os.setgroups(groups)

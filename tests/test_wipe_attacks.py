"""Root-run technician commands in a state directory the kiosk user controls: symbolic links
planted there must never lead `sentinel wipe` or `sentinel faces remove` outside it, not even when
swapped in while they run; every file the state directory can hold (sentinel/state_files.py) is
covered by wipe; files they create are owner-only whatever the umask; and the work is done as
the kiosk's user when there is one. Real files, real symlinks, real threads."""

from __future__ import annotations

import os
import pwd
import stat
import threading
from pathlib import Path

import pytest

from sentinel.cli import main
from sentinel.faces.gallery import Gallery
from sentinel.state_files import STATE_FILES, as_state_owner
from sentinel.state_lock import StateLock
from sentinel.wipe import personal_data, shred, wipe
from tests.test_outbox_cli import write_config
from tests.test_wipe import populate

PRECIOUS = b"someone else's data, not the kiosk's\n" * 200


def outside_tree(tmp_path: Path) -> Path:
    """A directory the wipe has no business with (think /home or /etc)."""
    other = tmp_path / "elsewhere"
    (other / "sub").mkdir(parents=True)
    (other / "a.txt").write_bytes(PRECIOUS)
    (other / "sub" / "b.txt").write_bytes(PRECIOUS)
    return other


def intact(other: Path) -> bool:
    return (other / "a.txt").read_bytes() == PRECIOUS and (other / "sub" / "b.txt").read_bytes() == PRECIOUS


# --- symlinked directories ------------------------------------------------------------------------


def test_wipe_refuses_a_symlinked_faces_folder_and_touches_nothing_behind_it(tmp_path, capsys):
    state = populate(tmp_path)
    other = outside_tree(tmp_path)
    for p in sorted((state / "faces").rglob("*"), reverse=True):
        p.rmdir() if p.is_dir() else p.unlink()
    (state / "faces").rmdir()
    (state / "faces").symlink_to(other)  # planted by whoever controls the kiosk user
    config = write_config(tmp_path)

    assert main(["wipe", "--config", str(config), "--yes"]) == 1
    captured = capsys.readouterr()
    assert intact(other), "wipe followed faces/ out of the state directory"
    refusals = [line for line in captured.err.splitlines() if "faces is a symbolic link" in line]
    assert len(refusals) == 1 and "refused, not followed" in refusals[0], captured.err
    assert (state / "faces").is_symlink()  # left for a technician to look at
    assert not (state / "record.key").exists() and not (state / "outbox.sqlite3").exists()  # the rest is wiped
    assert str(other) not in captured.out  # nothing behind the link was even listed


def test_a_symlinked_folder_inside_faces_is_refused_too(tmp_path):
    state = populate(tmp_path)
    other = outside_tree(tmp_path)
    (state / "faces" / "images").symlink_to(other)
    assert all(not str(p).startswith(str(other)) for p in personal_data(state, state / "outbox.sqlite3"))
    report = wipe(state, state / "outbox.sqlite3")
    assert intact(other)
    assert [e for e in report.errors if "images is a symbolic link" in e]
    assert not (state / "faces" / "gallery" / "enc.npy").exists()


def test_wipe_removes_a_symlinked_file_without_following_it(tmp_path, capsys):
    state = populate(tmp_path)
    other = outside_tree(tmp_path)
    (state / "record.key").unlink()
    (state / "record.key").symlink_to(other / "a.txt")
    (state / "status-cache.sqlite3-wal").symlink_to(other / "sub" / "b.txt")
    config = write_config(tmp_path)
    assert main(["wipe", "--config", str(config), "--yes"]) == 0
    err = capsys.readouterr().err
    assert intact(other)
    assert not (state / "record.key").is_symlink() and not (state / "record.key").exists()
    assert f"removed the symbolic link {state / 'record.key'} -> {other / 'a.txt'} without following it" in err


def test_a_symlinked_state_directory_is_refused(tmp_path, capsys):
    real = populate(tmp_path)
    (tmp_path / "conf").mkdir()
    config = write_config(tmp_path / "conf")
    (tmp_path / "conf" / "state").symlink_to(real)
    assert main(["wipe", "--config", str(config), "--yes"]) == 1
    assert "is a symbolic link: refused, not followed" in capsys.readouterr().err
    assert (real / "record.key").exists()


# --- sentinel faces remove ------------------------------------------------------------------------


def enrolled_with_image(state: Path) -> Gallery:
    from tests.test_faces import A

    g = Gallery(state / "faces" / "gallery.sqlite3")
    (state / "faces" / "images").mkdir()
    (state / "faces" / "images" / "p1-0.jpg").write_bytes(b"jpeg" * 100)
    g.enrol("p1", "王小明", [A], images=["p1-0.jpg"])
    return g


def test_faces_remove_does_not_follow_a_symlinked_images_folder(tmp_path, capsys):
    state = tmp_path / "state"
    enrolled_with_image(state).close()
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "p1-0.jpg").write_bytes(PRECIOUS)  # e.g. a file an attacker wants root to destroy
    images = state / "faces" / "images"
    (images / "p1-0.jpg").unlink()
    images.rmdir()
    images.symlink_to(other)
    config = write_config(tmp_path)
    assert main(["faces", "remove", "p1", "--config", str(config)]) == 0
    assert (other / "p1-0.jpg").read_bytes() == PRECIOUS


def test_faces_remove_does_not_follow_a_symlinked_image(tmp_path):
    state = tmp_path / "state"
    enrolled_with_image(state).close()
    other = outside_tree(tmp_path)
    image = state / "faces" / "images" / "p1-0.jpg"
    image.unlink()
    image.symlink_to(other / "a.txt")
    config = write_config(tmp_path)
    assert main(["faces", "remove", "p1", "--config", str(config)]) == 0
    assert intact(other)
    assert not image.is_symlink()  # the link is gone, its target is not


def test_faces_commands_refuse_a_symlinked_gallery_folder(tmp_path, capsys):
    from tests.test_faces import A

    other = tmp_path / "elsewhere"
    with Gallery(other / "gallery.sqlite3") as g:  # some other gallery (or any SQLite file)
        g.enrol("p1", "王小明", [A])
    before = (other / "gallery.sqlite3").read_bytes()
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "faces").symlink_to(other)
    config = write_config(tmp_path)
    assert main(["faces", "remove", "p1", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "faces is a symbolic link" in err and "refused, not followed" in err
    assert (other / "gallery.sqlite3").read_bytes() == before


# --- the swap race --------------------------------------------------------------------------------


class Swapper(threading.Thread):
    """Keeps replacing `target` by a symlink to `outside` and by a regular file, atomically."""

    def __init__(self, target: Path, outside: Path):
        super().__init__(daemon=True)
        self.target, self.outside = target, outside
        self.stop = threading.Event()
        self.swaps = 0

    def run(self) -> None:
        link, plain = self.target.with_name(".swap-link"), self.target.with_name(".swap-file")
        while not self.stop.is_set():
            try:
                os.symlink(self.outside, link)
                os.replace(link, self.target)
                plain.write_bytes(b"k" * 64)
                os.replace(plain, self.target)
                self.swaps += 1
            except FileNotFoundError:
                continue


def test_a_file_swapped_for_a_symlink_while_shred_runs_never_leads_outside(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    outside = tmp_path / "precious"
    outside.write_bytes(PRECIOUS)
    key = state / "record.key"
    key.write_bytes(b"k" * 64)
    swapper = Swapper(key, outside)
    swapper.start()
    try:
        for _ in range(3000):
            try:
                shred(key)
            except FileNotFoundError:
                pass
            assert outside.read_bytes() == PRECIOUS, f"shred wrote through a swapped-in symlink after {swapper.swaps} swaps"
    finally:
        swapper.stop.set()
        swapper.join()
    assert swapper.swaps > 0


def test_a_state_file_swapped_for_a_symlink_while_wipe_runs_never_leads_outside(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    outside = tmp_path / "precious"
    outside.write_bytes(PRECIOUS)
    swapper = Swapper(state / "status-cache.sqlite3", outside)
    swapper.start()
    try:
        for _ in range(500):
            report = wipe(state, state / "outbox.sqlite3")
            assert not [e for e in report.errors if "precious" in e]
            assert outside.read_bytes() == PRECIOUS
    finally:
        swapper.stop.set()
        swapper.join()


# --- one table of state files, all covered ------------------------------------------------------


def test_wipe_covers_every_file_the_state_directory_can_hold(tmp_path):
    """One of each entry of sentinel/state_files.py (SQLite sidecars and corrupt copies included);
    personal ones are overwritten (a hard link made beforehand reads zeros) and deleted, the rest
    stays."""
    state = tmp_path / "state"
    state.mkdir()
    links = tmp_path / "links"
    links.mkdir()
    personal: dict[Path, Path] = {}
    kept: list[Path] = []
    for row in STATE_FILES:
        for name in row.examples():
            path = state / name
            if row.directory:
                (path / "sub").mkdir(parents=True)
                path = path / "sub" / "data.bin"
            path.write_bytes(f"{name} personal={row.personal}".encode() * 50)
            if row.personal:
                personal[path] = links / f"{len(personal)}"
                os.link(path, personal[path])
            else:
                kept.append(path)
    assert set(personal) == set(personal_data(state, state / "outbox.sqlite3")) - {state / "sentinel.lock"}
    report = wipe(state, state / "outbox.sqlite3")
    assert report.ok, report.errors
    for path, link in personal.items():
        assert not path.exists(), path
        assert link.read_bytes() == b"", f"{path.name} was deleted without being overwritten"
    assert all(p.exists() for p in kept)
    assert sorted(p.name for p in state.iterdir()) == sorted({p.relative_to(state).parts[0] for p in kept})


# --- modes and the kiosk's user -------------------------------------------------------------------


def test_files_made_by_technician_commands_are_owner_only_whatever_the_umask(tmp_path):
    from sentinel.faces.enrol import _keep_face
    from sentinel.status_cache import StatusCache

    old = os.umask(0)
    try:
        state = tmp_path / "state"
        with StateLock(state):
            pass
        with Gallery(state / "faces" / "gallery.sqlite3") as g:
            import numpy as np

            name = _keep_face(g, "p1", np.zeros((200, 200, 3), np.uint8), __import__("sentinel.faces", fromlist=["FaceBox"]).FaceBox(50, 50, 150, 150))
            image = g.image_path(name)
        StatusCache(state / "status-cache.sqlite3").close()
    finally:
        os.umask(old)
    for path in (state / "sentinel.lock", state / "faces" / "gallery.sqlite3", image, state / "status-cache.sqlite3"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for folder in (state / "faces", image.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


def test_without_a_sentinel_user_the_commands_go_on_as_they_are():
    with as_state_owner("no-such-user-here-7f3a") as owner:
        assert owner.user is None
        euid = os.geteuid()
    assert os.geteuid() == euid


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
def test_as_root_the_work_runs_as_the_kiosk_user_and_root_comes_back(tmp_path):
    """`nobody` stands in for the `sentinel` user (no user is created on the machine)."""
    nobody = pwd.getpwnam("nobody")
    root_only = tmp_path / "root-only"
    root_only.write_bytes(PRECIOUS)
    os.chmod(root_only, 0o600)
    with as_state_owner("sentinel", lookup=lambda name: nobody) as owner:
        assert (owner.user, os.geteuid(), os.getegid()) == ("nobody", nobody.pw_uid, nobody.pw_gid)
        with pytest.raises(PermissionError):
            open(root_only, "r+b")
        with owner.as_root():
            assert os.geteuid() == 0
        assert os.geteuid() == nobody.pw_uid
    assert (os.geteuid(), os.getegid()) == (0, 0)
    assert root_only.read_bytes() == PRECIOUS


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
def test_a_state_directory_root_owns_is_worked_on_as_root(tmp_path):
    """A device where the `sentinel` user exists (an installed Pi) and a state directory given on
    the command line that root owns: as the kiosk user the command could not even read it."""
    nobody = pwd.getpwnam("nobody")
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    with as_state_owner("sentinel", lookup=lambda name: nobody, state_dir=state) as owner:
        assert owner.user is None and os.geteuid() == 0
    with as_state_owner("sentinel", lookup=lambda name: nobody, state_dir=state / "not-yet") as owner:
        assert owner.user is None and os.geteuid() == 0  # would be made in a folder root owns
    os.chown(state, nobody.pw_uid, nobody.pw_gid)  # the kiosk user's, as /var/lib/sentinel is
    with as_state_owner("sentinel", lookup=lambda name: nobody, state_dir=state) as owner:
        assert owner.user == "nobody" and os.geteuid() == nobody.pw_uid
    assert os.geteuid() == 0


# --- retention of the face gallery ----------------------------------------------------------------


def test_a_gallery_left_when_faces_are_off_is_destroyed_at_kiosk_start(tmp_path):
    from sentinel.config import SentinelConfig
    from sentinel.faces.gallery import destroy_if_disabled
    from sentinel.faces.kiosk import open_faces

    state = tmp_path / "state"
    enrolled_with_image(state).close()
    keep = tmp_path / "link-to-gallery"
    os.link(state / "faces" / "gallery.sqlite3", keep)
    (state / "record.key").write_bytes(b"k" * 32)

    on = SentinelConfig.model_validate({"device": {"state_dir": str(state)}, "faces": {"enabled": True}})
    assert destroy_if_disabled(on) == [] and (state / "faces" / "gallery.sqlite3").exists()

    off = SentinelConfig.model_validate({"device": {"state_dir": str(state)}, "faces": {"enabled": False}})
    assert open_faces(off) is None  # what the kiosk calls at start
    assert not (state / "faces").exists()
    assert keep.read_bytes() == b"", "the gallery was deleted without being overwritten"
    assert (state / "record.key").exists()  # only the faces, nothing else
    assert destroy_if_disabled(off) == []  # nothing left: a quiet no-op at every later start

"""`sentinel wipe`: overwrite then delete every local file with personal data, only when confirmed,
never under a running kiosk, never silently over undelivered records."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from sentinel.cli import main
from sentinel.health import HealthStatus, Status
from sentinel.outbox import Outbox
from sentinel.records import load_or_create_key
from sentinel.state_lock import StateLock
from sentinel.status_cache import StatusCache
from sentinel.wipe import personal_data, shred, wipe
from tests.test_outbox_cli import demo_record, write_config


def populate(tmp_path: Path, *, pending: int = 0, corrupt_copy: bool = False) -> Path:
    """A state directory as a retired kiosk leaves it."""
    state = tmp_path / "state"
    load_or_create_key(state / "record.key")
    ob = Outbox(state / "outbox.sqlite3")
    for i in range(pending + 3):
        ob.add(demo_record(i))
    ob.acknowledge([p["id"] for p in ob.pending(3)])
    ob.close()
    if corrupt_copy:
        (state / "outbox.sqlite3.corrupt-20260101T000000000000Z").write_bytes(b"old corrupt copy")
    cache = StatusCache(state / "status-cache.sqlite3", ttl_s=3600)
    from datetime import UTC, datetime

    cache.put("a" * 64, HealthStatus(status=Status.GREEN), datetime.now(UTC))
    cache.close()
    (state / "faces" / "gallery").mkdir(parents=True)
    (state / "faces" / "gallery" / "enc.npy").write_bytes(b"\x01" * 4096)
    (state / "device-token").write_text("sdt_not-personal-data")  # not personal data: kept
    return state


def links_to(paths: list[Path], into: Path) -> dict[Path, Path]:
    """Hard links see the same blocks: after an overwrite-in-place they read zeros."""
    into.mkdir()
    out = {}
    for i, p in enumerate(paths):
        link = into / f"{i}-{p.name}"
        os.link(p, link)
        out[p] = link
    return out


def test_wipe_overwrites_then_deletes_every_personal_file(tmp_path):
    state = populate(tmp_path, corrupt_copy=True)
    files = personal_data(state, state / "outbox.sqlite3")
    names = {p.relative_to(state).as_posix() for p in files}
    assert {"outbox.sqlite3", "outbox.sqlite3.corrupt-20260101T000000000000Z", "status-cache.sqlite3", "record.key",
            "faces/gallery/enc.npy"} <= names
    links = links_to([p for p in files if p.stat().st_size], tmp_path / "links")
    report = wipe(state, state / "outbox.sqlite3")
    assert report.ok and sorted(report.files) == sorted(str(p) for p in files)
    for original, link in links.items():
        assert not original.exists()
        assert link.read_bytes() == b"", f"{original.name} was unlinked without being overwritten"
    assert not (state / "faces").exists()
    assert (state / "device-token").exists()
    assert personal_data(state, state / "outbox.sqlite3") == []


def test_shred_really_zeroes_before_truncating(tmp_path, monkeypatch):
    """Truncating alone would free the blocks with the data still in them: look at the file just
    before the truncation (made a no-op here) through a descriptor that keeps the inode alive."""
    import sentinel.wipe

    p = tmp_path / "f"
    p.write_bytes(b"secret" * 1000 + b"tail")
    truncated = []
    monkeypatch.setattr(sentinel.wipe.os, "ftruncate", lambda fd, n: truncated.append(n))
    fd = os.open(p, os.O_RDONLY)
    try:
        assert shred(p) == 6004
        assert not p.exists() and truncated == [0]
        assert os.pread(fd, 10_000, 0) == bytes(6004)
    finally:
        os.close(fd)


def test_cli_asks_for_the_device_id(tmp_path, monkeypatch, capsys):
    state = populate(tmp_path)
    config = write_config(tmp_path)
    monkeypatch.setattr("sys.stdin", io.StringIO("wrong-device\n"))
    monkeypatch.setattr("sys.stdin.isatty", lambda: True, raising=False)
    assert main(["wipe", "--config", str(config)]) == 1
    assert "not confirmed" in capsys.readouterr().err
    assert (state / "outbox.sqlite3").exists()
    monkeypatch.setattr("sys.stdin", io.StringIO("demo-device\n"))
    monkeypatch.setattr("sys.stdin.isatty", lambda: True, raising=False)
    assert main(["wipe", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "wear levelling" in out and "wiped" in out
    assert not (state / "outbox.sqlite3").exists() and not (state / "record.key").exists()


def test_cli_without_a_terminal_needs_yes(tmp_path, monkeypatch, capsys):
    state = populate(tmp_path)
    config = write_config(tmp_path)
    monkeypatch.setattr("sys.stdin", io.StringIO("demo-device\n"))  # piped, not typed
    assert main(["wipe", "--config", str(config)]) == 1
    assert (state / "record.key").exists()
    assert main(["wipe", "--config", str(config), "--yes"]) == 0
    assert not (state / "record.key").exists()


def test_cli_refuses_over_undelivered_records_unless_told(tmp_path, capsys):
    state = populate(tmp_path, pending=2)
    config = write_config(tmp_path)
    assert main(["wipe", "--config", str(config), "--yes"]) == 1
    err = capsys.readouterr()
    assert "2 records have NOT been delivered" in err.out and "sentinel outbox export" in err.err
    assert Outbox(state / "outbox.sqlite3").health().depth == 2
    assert main(["wipe", "--config", str(config), "--yes", "--discard-undelivered", "--dry-run"]) == 0
    assert (state / "outbox.sqlite3").exists()
    assert main(["wipe", "--config", str(config), "--yes", "--discard-undelivered"]) == 0
    assert not (state / "outbox.sqlite3").exists()


def test_cli_treats_a_corrupt_copy_as_possibly_undelivered(tmp_path, capsys):
    state = populate(tmp_path, corrupt_copy=True)
    config = write_config(tmp_path)
    assert main(["wipe", "--config", str(config), "--yes"]) == 1
    assert "corrupt outbox copies may hold records" in capsys.readouterr().out
    assert main(["wipe", "--config", str(config), "--yes", "--discard-undelivered"]) == 0
    assert list(state.glob("outbox.sqlite3*")) == []


def test_cli_refuses_while_the_kiosk_runs(tmp_path, capsys):
    state = populate(tmp_path)
    config = write_config(tmp_path)
    with StateLock(state):
        assert main(["wipe", "--config", str(config), "--yes"]) == 1
        assert "is the kiosk running" in capsys.readouterr().err
        assert (state / "record.key").exists()
    assert main(["wipe", "--config", str(config), "--yes"]) == 0


def test_nothing_to_wipe(tmp_path, capsys):
    config = write_config(tmp_path)
    assert main(["wipe", "--config", str(config), "--yes"]) == 0
    assert "nothing to wipe" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["outbox.sqlite3-wal", "status-cache.sqlite3-shm"])
def test_sidecar_files_are_included(tmp_path, name):
    state = tmp_path / "state"
    state.mkdir()
    (state / name).write_bytes(b"x")
    assert [p.name for p in personal_data(state, state / "outbox.sqlite3")] == [name]

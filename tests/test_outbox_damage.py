"""Damage SQLite does not report: a broken -wal frame after a crash, an overwritten page 1.

SQLite replays a -wal only up to its first bad frame and silently drops the committed transactions
after it; with page 1 gone it cannot read the file at all. Both must raise the alarm, keep the
damaged files for a technician, and bring back every record whose body is still intact on disk.
The outboxes here are real SQLite files; a crash is a child process killed with SIGKILL.
"""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sentinel.cli import main
from sentinel.credentials import Credential, CredentialKind
from sentinel.health import HealthStatus, Person, Status
from sentinel.outbox import (
    Outbox,
    OutboxHealth,
    corrupt_copies,
    iter_file_rows,
    readonly_uri,
    wal_damage,
)
from sentinel.policy import Verdict, VerdictKind
from sentinel.records import Record, RecordMaker
from sentinel.service.seed import DEMO_DEVICE_ID, DEMO_DEVICE_TOKEN, DEMO_SITE

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[1]
MAKER = RecordMaker(DEMO_DEVICE_ID, DEMO_SITE.id, b"d" * 32)
PAGE = 4096
FRAME = 24 + PAGE


def make_record(i: int):
    status = HealthStatus(status=Status.GREEN, person=Person(name_masked="王*明", id_masked="1101**********002X"))
    return MAKER.make(Credential(CredentialKind.HEALTH_CODE, f"token-{i:06d}-damage"), status, Verdict(VerdictKind.PASS, "ok"), False, T0)


def wall() -> datetime:
    return T0


_CHILD = """
import sys, time
from tests.test_outbox_damage import make_record, wall
from sentinel.outbox import Outbox
ob = Outbox(sys.argv[1], wall=wall)
for i in range(int(sys.argv[2])):
    record = make_record(i)
    ob.add(record)
    print("COMMITTED", record.model_dump_json(), flush=True)
print("DONE", flush=True)
time.sleep(600)
"""


def crashed_outbox(path: Path, n: int = 99) -> list[Record]:
    """`n` records committed by a process that is then killed with SIGKILL: the db file and its
    -wal (and -shm) are left exactly as a crash leaves them, nothing checkpointed at close.
    Returns the records whose `add` returned."""
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(path), str(n)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    committed = []
    try:
        for line in child.stdout:
            if line.startswith("COMMITTED "):
                committed.append(Record.model_validate_json(line.removeprefix("COMMITTED ")))
            elif line.strip() == "DONE":
                break
        else:
            pytest.fail(f"the child ended early (exit {child.wait()})")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
    assert len(committed) == n
    return committed


def outbox_holding(path: Path, records) -> Outbox:
    """An open outbox at `path` with `records` added (closing it checkpoints them into the file)."""
    ob = Outbox(path, wall=wall)
    for r in records:
        ob.add(r)
    return ob


def reopened(path: Path) -> tuple[OutboxHealth, set[str]]:
    """What the kiosk's next start finds at `path`: the outbox's health and the ids it would upload."""
    ob = Outbox(path, wall=wall)
    try:
        return ob.health(), {p["id"] for p in ob.pending(1000)}
    finally:
        ob.close()


def bodies_intact_on_disk(path: Path, records) -> set[str]:
    data = b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    return {r.id for r in records if r.model_dump_json().encode() in data}


def sqlite_alone_reads(path: Path, tmp: Path) -> int:
    """What plain SQLite recovers from (a copy of) these files: the silent loss, for the record."""
    tmp.mkdir()
    for p in (path, Path(f"{path}-wal")):
        shutil.copy(p, tmp / p.name)
    db = sqlite3.connect(tmp / path.name)
    try:
        return db.execute("SELECT COUNT(*) FROM records").fetchone()[0]
    finally:
        db.close()


def wal_frames(path: Path) -> int:
    return (Path(f"{path}-wal").stat().st_size - 32) // FRAME


def damage_wal_frame(path: Path, frame: int) -> None:
    """Overwrite the page data of one -wal frame (its header stays): its checksum no longer holds."""
    wal = Path(f"{path}-wal")
    data = bytearray(wal.read_bytes())
    at = 32 + frame * FRAME + 24
    data[at:at + PAGE] = b"\xa5" * PAGE
    wal.write_bytes(bytes(data))


RECORDS = [make_record(i) for i in range(99)]
IDS = {r.id for r in RECORDS}


# --- a damaged -wal frame ------------------------------------------------------------------------


def test_a_damaged_wal_frame_raises_the_alarm_keeps_a_copy_and_loses_no_record(tmp_path):
    path = tmp_path / "outbox.sqlite3"
    committed = crashed_outbox(path)
    ids = {r.id for r in committed}
    frames = wal_frames(path)
    assert frames > 20 and wal_damage(path) is None  # a plain crash is not damage
    damage_wal_frame(path, frames // 2)
    assert sqlite_alone_reads(path, tmp_path / "plain") < 80  # SQLite alone drops the rest, silently
    intact = bodies_intact_on_disk(path, committed)
    assert intact == ids  # each record's page was written again later: every body is still there
    assert "damaged" in (wal_damage(path) or "")

    ob = Outbox(path, wall=wall)
    h = ob.health()
    assert "outbox_corrupt_moved" in h.alarms and h.level == "critical"
    (copy,) = corrupt_copies(path)
    assert h.corrupt_copies == (str(copy),)
    assert Path(f"{copy}-wal").stat().st_size == 32 + frames * FRAME  # kept as found, for a technician
    assert {p["id"] for p in ob.pending(1000)} == intact
    assert h.salvaged == len(intact) == h.depth
    ob.add(make_record(500))  # and the kiosk goes on recording
    ob.close()
    # the copy gives the same records to `sentinel outbox export --from`
    assert {row[0] for row in iter_file_rows(copy)} == intact


def test_a_damaged_wal_header_is_damage_too(tmp_path):
    path = tmp_path / "outbox.sqlite3"
    ids = {r.id for r in crashed_outbox(path)}
    wal = Path(f"{path}-wal")
    data = bytearray(wal.read_bytes())
    data[0:32] = b"\x00" * 32
    wal.write_bytes(bytes(data))
    assert wal_damage(path)
    h, pending = reopened(path)
    assert "outbox_corrupt_moved" in h.alarms and pending == ids


def test_a_plain_crash_and_a_torn_tail_are_not_damage(tmp_path):
    path = tmp_path / "outbox.sqlite3"
    ids = {r.id for r in crashed_outbox(path)}
    wal = Path(f"{path}-wal")
    data = wal.read_bytes()
    # a transaction cut short by the crash: half a frame, then a frame of an older WAL generation
    stale = bytearray(data[32:32 + FRAME])
    struct.pack_into(">II", stale, 8, 12345, 67890)  # other salts
    wal.write_bytes(data + bytes(stale) + data[32:32 + FRAME // 2])
    assert wal_damage(path) is None
    h, pending = reopened(path)
    assert h.alarms == () and not corrupt_copies(path)
    assert pending == ids


def test_a_healthy_live_outbox_exports_no_ghosts_of_delivered_records(tmp_path):
    path = tmp_path / "outbox.sqlite3"
    ob = outbox_holding(path, RECORDS[:10])
    ob.acknowledge([r.id for r in RECORDS[:5]])  # their old page images are still in the -wal
    assert {row[0] for row in iter_file_rows(path)} == {r.id for r in RECORDS[5:10]}
    ob.close()


# --- page 1 overwritten ---------------------------------------------------------------------------


def write_config(tmp_path: Path) -> Path:
    token = tmp_path / "device-token"
    token.write_text(DEMO_DEVICE_TOKEN)
    config = tmp_path / "sentinel.toml"
    config.write_text(
        f'[device]\nid = "{DEMO_DEVICE_ID}"\nsite_id = "{DEMO_SITE.id}"\nstate_dir = "{tmp_path / "state"}"\n'
        f'[verifier]\ntype = "http"\nurl = "http://127.0.0.1:9"\ntoken_file = "{token}"\n'
    )
    return config


def export_from(tmp_path: Path, source: Path, name: str) -> list[dict]:
    out = tmp_path / name
    assert main(["outbox", "export", str(out), "--from", str(source), "--config", str(write_config(tmp_path))]) == 0
    return [json.loads(line) for line in out.read_text().splitlines()]


@pytest.mark.parametrize("damaged_bytes", [100, PAGE], ids=["header", "page1"])
def test_an_overwritten_page_1_loses_no_record_to_export_or_salvage(tmp_path, damaged_bytes):
    path = tmp_path / "state" / "outbox.sqlite3"
    outbox_holding(path, RECORDS).close()  # everything checkpointed into the file; the -wal is empty
    data = bytearray(path.read_bytes())
    data[:damaged_bytes] = b"\xa5" * damaged_bytes
    path.write_bytes(bytes(data))
    with pytest.raises(sqlite3.DatabaseError):
        sqlite3.connect(readonly_uri(path), uri=True).execute("SELECT COUNT(*) FROM records").fetchone()

    # a technician exports straight from the damaged file
    lines = export_from(tmp_path, path, "export.jsonl")
    assert lines == [json.loads(r.model_dump_json()) for r in sorted(RECORDS, key=lambda r: r.id)]  # all, as made, in id order

    # and the kiosk's next start moves it aside and salvages all of them
    h, pending = reopened(path)
    assert "outbox_corrupt_moved" in h.alarms and h.salvaged == 99
    assert pending == IDS
    (copy,) = corrupt_copies(path)
    assert {line["id"] for line in export_from(tmp_path, copy, "copy.jsonl")} == IDS


def test_page_1_overwritten_after_a_crash_records_still_in_the_wal(tmp_path):
    path = tmp_path / "outbox.sqlite3"
    ids = {r.id for r in crashed_outbox(path)}
    data = bytearray(path.read_bytes())
    data[:PAGE] = b"\x00" * PAGE
    path.write_bytes(bytes(data))
    h, pending = reopened(path)
    assert "outbox_corrupt_moved" in h.alarms and pending == ids


def test_a_damaged_body_is_left_out_not_brought_back_altered(tmp_path):
    path = tmp_path / "outbox.sqlite3"
    outbox_holding(path, RECORDS[:3]).close()
    data = bytearray(path.read_bytes())
    victim = RECORDS[1].model_dump_json().encode()
    at = data.find(victim)
    assert at > 0 and data.find(victim, at + 1) < 0
    name = "王*明".encode()
    data[at + victim.find(name)] = 0xFF  # one byte of the masked name: no longer UTF-8
    data[:100] = b"\x00" * 100
    path.write_bytes(bytes(data))
    assert {row[0] for row in iter_file_rows(path)} == {RECORDS[0].id, RECORDS[2].id}


def test_bodies_on_overflow_pages_are_salvaged_too(tmp_path):
    # A body past about 1000 bytes (a vehicle session with several people) does not fit in one
    # cell: SQLite continues it on overflow pages, so it is not in one piece anywhere on disk.
    path = tmp_path / "outbox.sqlite3"
    status = HealthStatus(status=Status.GREEN, person=Person(name_masked="王*明", id_masked="1101**********002X"))
    big = [
        MAKER.make(Credential(CredentialKind.HEALTH_CODE, f"token-{i:06d}-big"), status, Verdict(VerdictKind.PASS, "ok"), False, T0,
                   note=f"{i:04d}" + "x" * 900)
        for i in range(30)
    ]
    assert len(big[0].model_dump_json()) > 1100
    outbox_holding(path, big).close()
    data = bytearray(path.read_bytes())
    assert not any(r.model_dump_json().encode() in data for r in big)  # none of them in one piece
    data[:PAGE] = b"\x00" * PAGE
    path.write_bytes(bytes(data))
    rows = list(iter_file_rows(path))
    assert [row[0] for row in rows] == sorted(r.id for r in big)
    assert [row[2] for row in rows] == [r.model_dump_json() for r in sorted(big, key=lambda r: r.id)]

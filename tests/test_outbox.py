"""The durable outbox: order, acknowledgement, caps and alarms, full disk, corrupt files, privacy."""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sentinel.credentials import Credential, CredentialKind
from sentinel.health import HealthStatus, Person, Status
from sentinel.outbox import Outbox, OutboxError, OutboxLimits, corrupt_copies, inspect, iter_file_rows
from sentinel.policy import Verdict, VerdictKind
from sentinel.records import RecordMaker

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
MAKER = RecordMaker("dev-1", "site-1", b"k" * 32)


class Wall:
    def __init__(self, t: datetime = T0):
        self.t = t

    def __call__(self) -> datetime:
        return self.t


def record(i: int, at: datetime = T0, name: str = "王*明"):
    status = HealthStatus(status=Status.GREEN, person=Person(name_masked=name, id_masked="1101**********002X"))
    return MAKER.make(Credential(CredentialKind.HEALTH_CODE, f"token-{i:06d}-abcdefgh"), status, Verdict(VerdictKind.PASS, "ok"), False, at)


def file_bytes(db_path: Path) -> bytes:
    return db_path.read_bytes() + b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "-*"))


def test_records_come_out_oldest_first_and_only_acknowledged_ones_leave(tmp_path):
    ob = Outbox(tmp_path / "o.sqlite3", wall=Wall())
    recs = [record(i) for i in range(10)]
    for r in reversed(recs):  # committed out of order: the id (time) decides the order
        ob.add(r)
    assert [p["id"] for p in ob.pending(4)] == [r.id for r in recs[:4]]
    assert ob.acknowledge([recs[0].id, recs[2].id, "01900000-0000-7000-8000-000000000000"]) == 2
    assert [p["id"] for p in ob.pending(100)] == [r.id for r in recs if r not in (recs[0], recs[2])]
    assert ob.health().depth == 8
    ob.close()
    again = Outbox(tmp_path / "o.sqlite3", wall=Wall())  # what was committed survives a restart, nothing else
    assert again.health().depth == 8
    assert again.pending(1)[0]["id"] == recs[1].id


def test_pragmas_are_wal_full_sync_and_secure_delete(tmp_path):
    ob = Outbox(tmp_path / "o.sqlite3", wall=Wall())
    db = ob._db
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert db.execute("PRAGMA secure_delete").fetchone()[0] == 1


def test_a_delivered_record_is_overwritten_not_just_unlinked(tmp_path):
    """secure_delete: after acknowledgement the record's bytes are gone from the file and its WAL."""
    ob = Outbox(tmp_path / "o.sqlite3", wall=Wall())
    keep = [record(i) for i in range(50)]
    delivered = record(999, name="欧阳*锋")
    for r in [*keep, delivered]:
        ob.add(r)
    ob._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the record is now in the main file
    assert delivered.credential_hash.encode() in (tmp_path / "o.sqlite3").read_bytes()
    ob.acknowledge([delivered.id])
    ob.close()
    data = file_bytes(tmp_path / "o.sqlite3")
    assert delivered.credential_hash.encode() not in data
    assert "欧阳*锋".encode() not in data
    assert keep[0].credential_hash.encode() in data  # the probe does see records that are still there


def test_alarm_near_the_cap_and_manual_policy_at_the_cap(tmp_path, caplog):
    wall = Wall()
    ob = Outbox(tmp_path / "o.sqlite3", limits=OutboxLimits(max_records=10, max_age_s=3600, alarm_fraction=0.8), wall=wall)
    caplog.set_level(logging.WARNING, "sentinel.outbox")
    for i in range(7):
        ob.add(record(i))
    assert (ob.health().alarms, ob.health().at_cap, ob.health().level) == ((), None, "ok")
    ob.add(record(7))
    h = ob.health()
    assert h.alarms == ("outbox_near_cap",) and h.at_cap is None and h.level == "warning"
    assert h.messages("en") == ["8 records waiting for upload, near the cap of 10"]
    assert "接近上限" in h.messages("zh-CN")[0]
    ob.add(record(8))
    ob.add(record(9))
    h = ob.health()
    assert h.at_cap == "outbox_full" and h.level == "critical" and "outbox_full" in h.alarms
    ob.add(record(10))  # past the cap records are still kept
    assert ob.health().depth == 11
    # each alarm is logged once when it appears, not once per record
    alarms = [r.getMessage() for r in caplog.records if "ALARM" in r.getMessage()]
    assert [a.split(":")[0] for a in alarms] == ["ALARM outbox_near_cap", "ALARM outbox_full"]
    ob.acknowledge([p["id"] for p in ob.pending(5)])
    assert ob.health().at_cap is None
    assert any("alarm cleared: outbox_full" in r.getMessage() for r in caplog.records)


def test_age_cap_uses_the_oldest_undelivered_record(tmp_path):
    wall = Wall()
    ob = Outbox(tmp_path / "o.sqlite3", limits=OutboxLimits(max_records=1000, max_age_s=10 * 3600, alarm_fraction=0.8), wall=wall)
    ob.add(record(0, at=T0))
    wall.t = T0 + timedelta(hours=7.9)
    assert ob.health().alarms == ()
    wall.t = T0 + timedelta(hours=8)
    assert ob.health().alarms == ("outbox_old_near_cap",)
    assert ob.health().oldest_age_s == pytest.approx(8 * 3600)
    wall.t = T0 + timedelta(hours=10)
    assert ob.health().at_cap == "outbox_overdue"
    ob.acknowledge([record_id["id"] for record_id in ob.pending()])
    assert ob.health().at_cap is None and ob.health().oldest_age_s is None


def limit_pages(ob: Outbox, pages: int) -> None:
    """SQLite's own size limit gives exactly the error a full disk gives (SQLITE_FULL)."""
    ob._db.execute(f"PRAGMA max_page_count={pages}")


def test_full_disk_add_raises_spill_keeps_the_record_and_a_later_add_writes_it(tmp_path):
    ob = Outbox(tmp_path / "o.sqlite3", wall=Wall())
    first = record(0)
    ob.add(first)
    pages = ob._db.execute("PRAGMA page_count").fetchone()[0]
    limit_pages(ob, pages)
    big = [record(i) for i in range(1, 40)]
    failed = []
    for r in big:
        try:
            ob.add(r)
        except OutboxError as e:
            assert "full" in str(e)
            failed.append(r)
            assert ob.spill(r)
    assert failed, "the page limit never filled the file"
    h = ob.health()
    assert h.spilled == len(failed) and "outbox_spilling" in h.alarms and h.level == "critical"
    # the uploader sees the records held in memory too, in id order
    assert [p["id"] for p in ob.pending(100)] == sorted(r.id for r in [first, *big])
    limit_pages(ob, 1_000_000)  # the disk has room again
    assert ob.retry_spill() == len(failed)
    assert ob.health().spilled == 0 and "outbox_spilling" not in ob.health().alarms
    ob.close()
    assert Outbox(tmp_path / "o.sqlite3", wall=Wall()).health().depth == 40


def test_records_held_in_memory_can_be_delivered_from_there(tmp_path):
    ob = Outbox(tmp_path / "o.sqlite3", wall=Wall())
    limit_pages(ob, ob._db.execute("PRAGMA page_count").fetchone()[0])
    r = record(1)
    for i in range(200):
        try:
            ob.add(record(100 + i))
        except OutboxError:
            break
    with pytest.raises(OutboxError):
        ob.add(r)
    ob.spill(r)
    assert r.id in [p["id"] for p in ob.pending(500)]
    assert ob.acknowledge([r.id]) == 1
    assert ob.health().spilled == 0


def test_a_full_memory_spill_counts_a_lost_record_loudly(tmp_path, caplog):
    ob = Outbox(tmp_path / "o.sqlite3", limits=OutboxLimits(spill_max=2), wall=Wall())
    assert ob.spill(record(1)) and ob.spill(record(2))
    with caplog.at_level(logging.CRITICAL, "sentinel.outbox"):
        assert not ob.spill(record(3))
    assert ob.health().lost == 1 and "outbox_records_lost" in ob.health().alarms
    assert any("LOST" in r.getMessage() for r in caplog.records)


def test_a_file_that_is_not_a_database_is_moved_aside_and_a_new_one_started(tmp_path):
    path = tmp_path / "outbox.sqlite3"
    path.write_bytes(b"this is not sqlite" * 500)
    (tmp_path / "outbox.sqlite3-wal").write_bytes(b"junk wal")
    ob = Outbox(path, wall=Wall())
    (copy,) = corrupt_copies(path)
    assert copy.read_bytes().startswith(b"this is not sqlite")
    assert Path(str(copy) + "-wal").read_bytes() == b"junk wal"  # moved with its WAL, pairing kept
    h = ob.health()
    assert "outbox_corrupt_moved" in h.alarms and h.corrupt_copies == (str(copy),) and h.level == "critical"
    ob.add(record(1))  # the kiosk goes on recording
    assert ob.health().depth == 1
    ob.close()
    # after a restart the copy still raises the alarm, until a technician deals with it
    assert "outbox_corrupt_moved" in Outbox(path, wall=Wall()).health().alarms


def corrupt_pages(path: Path, first: int, count: int) -> None:
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > (first + count) * page
    data[first * page:(first + count) * page] = b"\xa5" * (count * page)
    path.write_bytes(bytes(data))


def test_damaged_pages_move_the_file_aside_and_readable_records_are_recovered(tmp_path):
    path = tmp_path / "outbox.sqlite3"
    ob = Outbox(path, wall=Wall())
    recs = [record(i) for i in range(2000)]
    for r in recs:
        ob.add(r)
    ob.close()
    corrupt_pages(path, 60, 3)
    ob = Outbox(path, wall=Wall())
    h = ob.health()
    assert "outbox_corrupt_moved" in h.alarms
    recovered = {p["id"] for p in ob.pending(5000)}
    assert 1000 < len(recovered) < 2000  # most, not all: three pages of records are gone
    assert recovered <= {r.id for r in recs}
    assert h.salvaged == len(recovered) == h.depth
    # the copy is still readable as far as it goes, for `sentinel outbox export --from`
    (copy,) = corrupt_copies(path)
    assert {row[0] for row in iter_file_rows(copy)} == recovered


def test_corruption_found_while_running_replaces_the_file_and_the_add_succeeds(tmp_path):
    path = tmp_path / "outbox.sqlite3"
    ob = Outbox(path, wall=Wall())
    for i in range(1500):
        ob.add(record(i))
    ob._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    corrupt_pages(path, 2, 40)  # under the running kiosk's feet
    ob._db.execute("PRAGMA cache_size=0")
    new = record(5000)
    try:
        for i in range(5):
            ob.pending(2000)  # reading the b-tree meets the damage
    except OutboxError:
        pytest.fail("a corrupt file must be replaced, not raised")
    ob.add(new)
    assert corrupt_copies(path), "the damaged file was not moved aside"
    assert new.id in {p["id"] for p in ob.pending(5000)}


def test_rejected_records_are_set_aside_and_kept(tmp_path):
    ob = Outbox(tmp_path / "o.sqlite3", wall=Wall())
    a, b = record(1), record(2)
    ob.add(a)
    ob.add(b)
    assert ob.set_aside([(a.id, "wrong_site", "device is bound to site s2")]) == 1
    assert [p["id"] for p in ob.pending()] == [b.id]
    (kept,) = ob.rejected()
    assert kept["record"]["id"] == a.id and kept["error"] == "wrong_site"
    h = ob.health()
    assert h.rejected == 1 and "outbox_rejected" in h.alarms and h.level == "warning"


def test_inspect_reads_counts_without_changing_the_file(tmp_path):
    path = tmp_path / "o.sqlite3"
    ob = Outbox(path, wall=Wall())
    for i in range(3):
        ob.add(record(i, at=T0 - timedelta(hours=1)))
    ob.acknowledge([ob.pending(1)[0]["id"]], delivered_at=T0)
    seen = inspect(path, now=T0)  # while the outbox is open, as with a running kiosk
    assert seen.health.depth == 2 and seen.health.oldest_age_s == pytest.approx(3600)
    assert seen.meta["last_success_at"].startswith("2026-11-25T08:00:00")
    assert seen.meta["delivered_total"] == "1"
    ob.close()
    garbage = tmp_path / "g.sqlite3"
    garbage.write_bytes(b"x" * 4096)
    bad = inspect(garbage)
    assert bad.health is None and bad.error
    assert garbage.read_bytes() == b"x" * 4096  # inspect moves nothing


def test_the_raw_credential_is_never_stored(tmp_path):
    ob = Outbox(tmp_path / "o.sqlite3", wall=Wall())
    token = "token-000042-abcdefgh"
    ob.add(record(42))
    ob.close()
    for p in tmp_path.iterdir():
        assert token.encode() not in p.read_bytes()
    body = sqlite3.connect(tmp_path / "o.sqlite3").execute("SELECT body FROM records").fetchone()[0]
    assert len(json.loads(body)["credential_hash"]) == 64


def test_after_close_nothing_reopens_the_file(tmp_path):
    ob = Outbox(tmp_path / "o.sqlite3", wall=Wall())
    ob.close()
    with pytest.raises(OutboxError):
        ob.add(record(1))


def test_an_outbox_that_cannot_open_keeps_records_in_memory_and_opens_later(tmp_path):
    path = tmp_path / "o.sqlite3"
    path.mkdir()  # something in the way: SQLite cannot open it
    ob = Outbox(path, wall=Wall())
    h = ob.health()
    assert "outbox_unavailable" in h.alarms and h.level == "critical"
    r = record(1)
    with pytest.raises(OutboxError):
        ob.add(r)
    assert ob.spill(r)
    assert [p["id"] for p in ob.pending()] == [r.id]  # still deliverable from memory
    path.rmdir()  # the technician clears it
    later = record(2)
    ob.add(later)
    assert ob.health().alarms == () and ob.health().depth == 2
    ob.close()
    assert {p["id"] for p in Outbox(path, wall=Wall()).pending()} == {r.id, later.id}


def test_a_second_process_does_not_move_a_corrupt_file_it_does_not_own(tmp_path):
    path = tmp_path / "o.sqlite3"
    path.write_bytes(b"garbage" * 1000)
    with pytest.raises(OutboxError, match="corrupt"):
        Outbox(path, recover=False, wall=Wall())
    assert path.read_bytes() == b"garbage" * 1000 and not corrupt_copies(path)


def test_acknowledging_records_held_in_memory_needs_no_disk(tmp_path):
    path = tmp_path / "o.sqlite3"
    path.mkdir()
    ob = Outbox(path, wall=Wall())
    r = record(1)
    ob.spill(r)
    assert ob.acknowledge([r.id], delivered_at=T0) == 1
    assert ob.health().depth == 0

"""`sentinel outbox status|flush|export` as a technician runs them, against real files and the
reference service."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sentinel.cli import main
from sentinel.contract import RecordIn
from sentinel.outbox import Outbox, OutboxLimits, corrupt_copies
from sentinel.service.seed import DEMO_DEVICE_ID, DEMO_DEVICE_TOKEN, DEMO_SITE
from sentinel.service.server import ReferenceServer
from tests.test_outbox import corrupt_pages, record


def write_config(tmp_path: Path, url: str = "http://127.0.0.1:9", **outbox) -> Path:
    token = tmp_path / "device-token"
    token.write_text(DEMO_DEVICE_TOKEN)
    lines = [
        "[device]", f'id = "{DEMO_DEVICE_ID}"', f'site_id = "{DEMO_SITE.id}"', f'state_dir = "{tmp_path / "state"}"',
        "[verifier]", 'type = "http"', f'url = "{url}"', f'token_file = "{token}"',
        "[outbox]", *(f"{k} = {v}" for k, v in outbox.items()),
    ]
    path = tmp_path / "sentinel.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def demo_record(i: int, at: datetime | None = None):
    from sentinel.credentials import Credential, CredentialKind
    from sentinel.health import HealthStatus, Status
    from sentinel.policy import Verdict, VerdictKind
    from sentinel.records import RecordMaker

    maker = RecordMaker(DEMO_DEVICE_ID, DEMO_SITE.id, b"c" * 32)
    return maker.make(Credential(CredentialKind.HEALTH_CODE, f"tok-{i:05d}-bbbbbbbbbb"), HealthStatus(status=Status.TIMEOUT),
                      Verdict(VerdictKind.DENY, "offline_denied"), True, at or datetime.now(UTC))


def test_status_text_and_json(tmp_path, capsys):
    config = write_config(tmp_path, max_records=10)
    ob = Outbox(tmp_path / "state" / "outbox.sqlite3", limits=OutboxLimits(max_records=10))
    for i in range(8):
        ob.add(record(i, at=datetime.now(UTC) - timedelta(hours=2)))
    ob.note_error("connection: cannot reach http://127.0.0.1:9")
    # the kiosk keeps the outbox open while the technician looks: status reads alongside it
    assert main(["outbox", "status", "--config", str(config)]) == 0
    text = capsys.readouterr().out
    assert "waiting       8 records" in text
    assert "8 / 10 records (80.0%)" in text
    assert "8 records waiting for upload, near the cap of 10" in text
    assert "last error    connection: cannot reach" in text
    assert "Records are never dropped" in text and "staff will check" in text

    assert main(["outbox", "status", "--config", str(config), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["health"]["depth"] == 8 and data["level"] == "warning"
    assert data["health"]["oldest_age_s"] == pytest.approx(7200, abs=60)
    assert data["alarm_texts"] == ["8 records waiting for upload, near the cap of 10"]
    assert data["last_success_at"] is None and data["last_error"].startswith("connection")

    ob.add(record(8))
    ob.add(record(9))
    assert main(["outbox", "status", "--config", str(config), "--json"]) == 1  # at the cap: critical
    assert json.loads(capsys.readouterr().out)["health"]["at_cap"] == "outbox_full"
    ob.close()


def test_status_of_a_missing_and_of_a_garbage_file(tmp_path, capsys):
    config = write_config(tmp_path)
    assert main(["outbox", "status", "--config", str(config), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["exists"] is False
    bad = tmp_path / "bad.sqlite3"
    bad.write_bytes(b"\0garbage" * 600)
    assert main(["outbox", "status", "--config", str(config), "--outbox", str(bad), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["level"] == "critical" and data["error"]


def test_export_writes_uploadable_json_lines_owner_only(tmp_path, capsys):
    config = write_config(tmp_path)
    ob = Outbox(tmp_path / "state" / "outbox.sqlite3")
    recs = [demo_record(i) for i in range(5)]
    for r in reversed(recs):
        ob.add(r)
    ob.set_aside([(recs[0].id, "wrong_site", "device is bound to site s2")])
    ob.close()
    out = tmp_path / "export.jsonl"
    assert main(["outbox", "export", str(out), "--config", str(config)]) == 0
    assert "exported 4 records waiting for upload" in capsys.readouterr().err
    assert os.stat(out).st_mode & 0o777 == 0o600
    lines = out.read_text().splitlines()
    assert [RecordIn.model_validate_json(line).id for line in lines] == [r.id for r in recs[1:]]  # oldest first
    assert main(["outbox", "export", str(out), "--config", str(config)]) == 2  # no silent overwrite
    rejected = tmp_path / "rejected.jsonl"
    assert main(["outbox", "export", str(rejected), "--rejected", "--config", str(config)]) == 0
    (line,) = rejected.read_text().splitlines()
    assert json.loads(line)["record"]["id"] == recs[0].id and json.loads(line)["error"] == "wrong_site"
    # the records stay on the device until delivered or wiped
    assert Outbox(tmp_path / "state" / "outbox.sqlite3").health().depth == 4


def test_export_reads_what_it_can_from_a_corrupt_copy(tmp_path, capsys):
    config = write_config(tmp_path)
    path = tmp_path / "state" / "outbox.sqlite3"
    ob = Outbox(path)
    recs = [demo_record(i) for i in range(1500)]
    for r in recs:
        ob.add(r)
    ob.close()
    corrupt_pages(path, 40, 2)
    Outbox(path).close()  # the kiosk's next start moves it aside
    (copy,) = corrupt_copies(path)
    out = tmp_path / "from-copy.jsonl"
    assert main(["outbox", "export", str(out), "--from", str(copy), "--config", str(config)]) == 0
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert 500 < len(ids) < 1500 and set(ids) <= {r.id for r in recs}


def test_flush_delivers_everything_to_the_service(tmp_path, capsys):
    with ReferenceServer(tmp_path / "svc.sqlite3", seed="demo") as srv:
        config = write_config(tmp_path, url=srv.url, batch_size=100)
        ob = Outbox(tmp_path / "state" / "outbox.sqlite3")
        for i in range(250):
            ob.add(demo_record(i))
        ob.close()
        assert main(["outbox", "flush", "--config", str(config), "--progress", "always"]) == 0
        captured = capsys.readouterr()
        assert "delivered 250 records; 0 refused and set aside; 0 still waiting" in captured.out
        assert "250/250" in captured.err  # the progress bar reached the end
        assert Outbox(tmp_path / "state" / "outbox.sqlite3").health().depth == 0
        assert main(["outbox", "status", "--config", str(config), "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["delivered_total"] == 250 and data["last_success_at"]


def test_flush_without_a_network_says_so_and_keeps_the_records(tmp_path, capsys):
    config = write_config(tmp_path, url="http://127.0.0.1:9", retry_initial_s=0.01, retry_max_s=0.02)
    ob = Outbox(tmp_path / "state" / "outbox.sqlite3")
    ob.add(demo_record(1))
    ob.close()
    assert main(["outbox", "flush", "--config", str(config), "--max-failures", "2", "--progress", "never"]) == 1
    captured = capsys.readouterr()
    assert "1 still waiting" in captured.out and "connection" in captured.err
    assert Outbox(tmp_path / "state" / "outbox.sqlite3").health().depth == 1

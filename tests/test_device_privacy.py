"""Nothing leaks, nobody gets in (device side): a wiped device keeps no working token, delivered
records leave no trace in the outbox files, set-aside records expire, the technician PIN lockout
holds (capped, persisted, 6+ digits), service text cannot forge terminal output or log lines, and
`bind` keeps its deadline against a trickling server."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import requests

from sentinel.cli import main
from sentinel.service.seed import DEMO_DEVICE_ID, DEMO_DEVICE_TOKEN
from sentinel.service.server import ReferenceServer
from tests.helpers import json_answering
from tests.test_outbox_cli import demo_record, write_config


@pytest.fixture()
def srv(tmp_path):
    with ReferenceServer(tmp_path / "svc.db", seed="demo") as server:
        yield server


# --- 1. wipe revokes the device token and destroys it --------------------------------------------


def _populated(tmp_path: Path, url: str) -> Path:
    from sentinel.outbox import Outbox

    config = write_config(tmp_path, url=url)
    ob = Outbox(tmp_path / "state" / "outbox.sqlite3")
    ob.add(demo_record(1))
    ob.acknowledge([p["id"] for p in ob.pending()])
    ob.close()
    return config


def test_wipe_revokes_the_token_at_the_service_and_destroys_it(tmp_path, srv, capsys):
    config = _populated(tmp_path, srv.url)
    verify = {"device_id": DEMO_DEVICE_ID, "site_id": "demo-site",
              "credential": {"kind": "health_code", "value": "x" * 20}, "scanned_at": "2026-01-01T00:00:00+00:00"}
    auth = {"Authorization": f"Bearer {DEMO_DEVICE_TOKEN}"}
    assert requests.post(f"{srv.url}/v1/verify", headers=auth, json=verify, timeout=10).status_code != 401
    assert main(["wipe", "--config", str(config), "--yes"]) == 0
    out = capsys.readouterr()
    assert "token revoked at the service and destroyed" in out.out
    assert not (tmp_path / "device-token").exists()
    r = requests.post(f"{srv.url}/v1/verify", headers=auth, json=verify, timeout=10)
    assert r.status_code == 401 and r.json()["error"] == "token_revoked"


def test_wipe_with_the_service_unreachable_destroys_the_token_and_says_so(tmp_path, capsys):
    config = _populated(tmp_path, "http://127.0.0.1:9")
    assert main(["wipe", "--config", str(config), "--yes"]) == 0
    err = capsys.readouterr().err
    assert "service unreachable" in err and "token destroyed here only" in err and "revoke it at the service" in err
    assert DEMO_DEVICE_TOKEN not in err
    assert not (tmp_path / "device-token").exists()


def test_wipe_dry_run_and_refusal_keep_the_token(tmp_path, srv, capsys):
    config = write_config(tmp_path, url=srv.url)
    from sentinel.outbox import Outbox

    ob = Outbox(tmp_path / "state" / "outbox.sqlite3")
    ob.add(demo_record(1))  # undelivered: wipe refuses
    ob.close()
    assert main(["wipe", "--config", str(config), "--yes"]) == 1
    assert main(["wipe", "--config", str(config), "--yes", "--discard-undelivered", "--dry-run"]) == 0
    assert "device token" in capsys.readouterr().out
    assert (tmp_path / "device-token").read_text() == DEMO_DEVICE_TOKEN
    auth = {"Authorization": f"Bearer {DEMO_DEVICE_TOKEN}"}
    assert requests.get(f"{srv.url}/v1/records", headers=auth, params={"device_id": DEMO_DEVICE_ID}, timeout=10).status_code == 200


# --- 2. delivered records leave no copy in the outbox file or its -wal --------------------------


def _traces(rec) -> list[bytes]:
    return [rec.credential_hash.encode(), rec.person.name_masked.encode(), rec.id.encode()]


def _outbox_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))


def test_delivered_records_leave_no_trace_in_the_db_or_the_wal_while_running(tmp_path):
    from sentinel.outbox import Outbox
    from tests.test_outbox import record

    path = tmp_path / "outbox.sqlite3"
    ob = Outbox(path)  # left open: a running kiosk (and, never closed, a killed one)
    recs = [record(i, name=f"张*{chr(0x4e00 + i)}") for i in range(12)]
    for r in recs:
        ob.add(r)
    data = _outbox_bytes(path)
    assert all(t in data for r in recs for t in _traces(r))  # the check below can see them
    ob.acknowledge([r.id for r in recs[:5]])
    ob.acknowledge([r.id for r in recs[5:]])
    data = _outbox_bytes(path)
    left = [r.id for r in recs if any(t in data for t in _traces(r))]
    assert left == [], f"{len(left)} of 12 delivered records still readable in the outbox files"
    ob.close()


def test_a_long_backlog_is_checkpointed_every_n_acks(tmp_path, monkeypatch):
    import sentinel.outbox.store
    from sentinel.outbox import Outbox
    from tests.test_outbox import record

    monkeypatch.setattr(sentinel.outbox.store, "CHECKPOINT_EVERY_ACKS", 4)
    path = tmp_path / "outbox.sqlite3"
    ob = Outbox(path)
    recs = [record(i, name=f"李*{chr(0x4e00 + i)}") for i in range(12)]
    for r in recs:
        ob.add(r)
    ob.acknowledge([r.id for r in recs[:4]])  # 8 still waiting: the outbox is not empty
    data = _outbox_bytes(path)
    assert [r.id for r in recs[:4] if any(t in data for t in _traces(r))] == []
    assert all(r.credential_hash.encode() in data for r in recs[4:])  # still waiting: still there
    ob.close()


# --- 3. records the service refused are purged after their retention -----------------------------


def test_rejected_records_are_purged_after_the_retention(tmp_path):
    from datetime import UTC, datetime, timedelta

    from sentinel.config import parse_config
    from sentinel.outbox import Outbox, OutboxLimits
    from tests.test_outbox import record

    assert parse_config({}).outbox.rejected_retention_days == 30
    now = [datetime(2026, 3, 1, tzinfo=UTC)]
    path = tmp_path / "outbox.sqlite3"
    limits = OutboxLimits(rejected_retention_s=30 * 86400)
    ob = Outbox(path, limits=limits, wall=lambda: now[0])
    old, new = record(1, name="赵*一"), record(2, name="钱*二")
    ob.add(old)
    ob.add(new)
    ob.set_aside([(old.id, "wrong_site", "device is bound to site s2")], at=now[0] - timedelta(days=31))
    ob.set_aside([(new.id, "wrong_site", "device is bound to site s2")], at=now[0] - timedelta(days=2))
    assert ob.health().rejected == 2
    now[0] += timedelta(hours=2)  # periodically: the next acknowledgement after the interval purges
    ob.acknowledge([])
    assert [r["record"]["id"] for r in ob.rejected()] == [new.id]
    assert ob.health().rejected == 1
    assert not any(t in _outbox_bytes(path) for t in _traces(old))
    ob.close()
    now[0] += timedelta(days=29)  # on open
    ob = Outbox(path, limits=limits, wall=lambda: now[0])
    assert ob.rejected() == [] and ob.health().rejected == 0
    ob.close()


# --- 5. service text cannot put escapes or forged lines on the terminal or in the journal ---------

EVIL = "Mall\x1b[2J\nFAKE LOG LINE\r\u202eevil\x9b"


def _evil_bind_server(answer: dict, status: int = 200):
    import http.server
    import threading

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), json_answering(answer, status))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _clean(text: str) -> None:
    assert "\x1b" not in text and "\x9b" not in text and "\r" not in text and "\u202e" not in text
    assert not any(line.startswith("FAKE LOG LINE") for line in text.splitlines())


def test_bind_prints_and_stores_a_malicious_site_name_without_controls(tmp_path, capsys):
    import tomllib

    answer = {"device_id": "gate-1", "site": {"id": "demo-site", "name": EVIL, "address": EVIL}, "token": "sdt_evil-test-token"}
    server = _evil_bind_server(answer)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        config, token = tmp_path / "sentinel.toml", tmp_path / "device-token"
        code = main(["bind", "--server", url, "--site", "demo-site", "--code", "ABCDE-FGHIJ", "--device-id", "gate-1",
                     "--config", str(config), "--token-file", str(token)])
    finally:
        server.shutdown()
        server.server_close()
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "FAKE LOG LINE" in out.out  # shown, but on the one line it belongs to
    _clean(out.out + out.err)
    stored = tomllib.loads(config.read_text())["device"]["site_name"]
    _clean(stored)
    assert "\n" not in stored


def test_a_bind_error_message_from_the_service_is_one_clean_line(tmp_path, capsys):
    server = _evil_bind_server({"error": "nope", "message": EVIL}, status=403)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        code = main(["bind", "--server", url, "--site", "demo-site", "--code", "ABCDE-FGHIJ", "--device-id", "gate-1",
                     "--config", str(tmp_path / "c.toml"), "--token-file", str(tmp_path / "t")])
    finally:
        server.shutdown()
        server.server_close()
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1
    _clean(err)


def test_console_display_logs_a_malicious_masked_name_on_one_clean_line(caplog):
    import logging

    from sentinel.screens import Screen, ScreenKind
    from ui.console import ConsoleDisplay

    caplog.set_level(logging.INFO, logger="ui.console")
    ConsoleDisplay().show(Screen(kind=next(iter(ScreenKind)), message=EVIL, person="王*明" + EVIL, title="T"))
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "王*明" in text
    _clean(text)


def test_a_rejection_message_from_the_service_is_logged_on_one_clean_line(tmp_path, caplog):
    import logging

    from sentinel.outbox import Outbox
    from tests.test_outbox import record

    caplog.set_level(logging.INFO, logger="sentinel.outbox")
    ob = Outbox(tmp_path / "o.sqlite3")
    r = record(1)
    ob.add(r)
    ob.set_aside([(r.id, "wrong_site\x1b[2J", EVIL)])
    ob.close()
    lines = [rec.getMessage() for rec in caplog.records if "not retried" in rec.getMessage()]
    assert len(lines) == 1
    _clean(lines[0])


# --- 6. bind keeps its deadline against a server that trickles its answer -------------------------


@pytest.mark.parametrize("what", ["head", "body"])
def test_bind_keeps_its_overall_deadline_against_a_trickling_server(tmp_path, what):
    import time

    from sentinel.binding import BindError, bind_device
    from tests.test_client import _trickling_server

    servers = _trickling_server(what)
    url = next(servers)
    deadline = 2.0
    started = time.monotonic()
    try:
        with pytest.raises(BindError, match="did not answer within 2 s"):
            bind_device(url, "demo-site", "ABCDE-FGHIJ", "gate-1", tmp_path / "c.toml", tmp_path / "t", timeout_s=deadline)
    finally:
        took = time.monotonic() - started
        next(servers, None)
    assert took < deadline + 5, f"bind took {took:.1f} s with a {deadline:.0f} s deadline"
    assert not (tmp_path / "c.toml").exists() and not (tmp_path / "t").exists()


# --- 4. the technician PIN lockout: capped, kept across restarts ---------------------------------


class _Clock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_pin_lockout_is_capped_and_never_ends_after_many_lockouts():
    from ui.pin import MAX_LOCKOUT_S, PinGate, hash_pin

    clock = _Clock()
    gate = PinGate(hash_pin("246810", iterations=1000), clock=clock)
    waits = []
    for _ in range(1100):  # past 1,024 lockouts, where 2**n overflowed and the lockout stopped
        for _ in range(3):
            result = gate.attempt("000000")
        assert result.reason == "locked" and result.started_lockout
        waits.append(result.locked_for_s)
        clock.t += result.locked_for_s
    assert max(waits) == MAX_LOCKOUT_S == 15 * 60 and waits[-1] == MAX_LOCKOUT_S
    for _ in range(2):
        gate.attempt("000000")
    assert gate.attempt("000000").locked_for_s == MAX_LOCKOUT_S


def test_pin_lockout_survives_a_restart(tmp_path):
    import stat

    from ui.pin import PinGate, hash_pin

    stored = hash_pin("246810", iterations=1000)
    state = tmp_path / "state" / "pin-lockout.json"
    clock, wall = _Clock(), _Clock(1_800_000_000.0)
    gate = PinGate(stored, clock=clock, wall=wall, state_file=state)
    assert gate.attempt("000000").reason == "wrong"
    assert gate.attempt("000000").reason == "wrong"
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    # restarted (a new process: its monotonic clock starts elsewhere): the count goes on
    gate = PinGate(stored, clock=_Clock(5.0), wall=wall, state_file=state)
    result = gate.attempt("000000")
    assert result.reason == "locked" and result.started_lockout and result.locked_for_s == 30
    wall.t += 10
    gate = PinGate(stored, clock=_Clock(7.0), wall=wall, state_file=state)  # restarted while locked
    assert gate.attempt("246810").reason == "locked" and 19 <= gate.locked_for() <= 20
    wall.t += 10_000_000  # a clock set far forward or back never locks for more than one full lockout
    gate = PinGate(stored, clock=_Clock(9.0), wall=wall, state_file=state)
    assert gate.attempt("246810").ok
    gate = PinGate(stored, clock=_Clock(1.0), wall=wall, state_file=state)
    assert gate.locked_for() == 0 and gate.attempt("000000").tries_left == 2  # the right PIN reset it


def test_a_tampered_pin_state_file_locks_rather_than_opens(tmp_path):
    from ui.pin import MAX_LOCKOUT_S, PinGate, hash_pin

    state = tmp_path / "pin-lockout.json"
    state.write_text("{not json")
    gate = PinGate(hash_pin("246810", iterations=1000), clock=_Clock(), state_file=state)
    assert gate.attempt("246810").reason == "locked" and gate.locked_for() == MAX_LOCKOUT_S


def test_a_pin_of_fewer_than_6_digits_is_refused():
    import subprocess
    import sys

    from ui.pin import hash_pin

    for short in ("2468", "12345"):
        with pytest.raises(ValueError, match="6 to 8 digits"):
            hash_pin(short)
    bad = subprocess.run([sys.executable, "-m", "sentinel", "screens", "--hash-pin"], input="2468\n",
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "6 to 8 digits" in bad.stderr and "technician_pin_hash" not in bad.stdout


def test_an_outbox_made_under_a_loose_umask_is_owner_only(tmp_path):
    """`sudo sentinel outbox flush` (umask 022) on a device whose outbox does not exist yet."""
    from sentinel.outbox import Outbox

    old = os.umask(0o022)
    try:
        ob = Outbox(tmp_path / "outbox.sqlite3")
        ob.close()
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert modes and all(mode == 0o600 for mode in modes.values()), modes

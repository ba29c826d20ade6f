"""`sentinel bind` on a device that already has a binding, against the real reference service:
records waiting in the outbox (made under the old binding) stop a bind that would leave them
undeliverable, unless the technician confirms, and are uploaded with the new token when the
binding keeps their device and site; a config value the bind replaces is shown old -> new."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from sentinel.binding import BindError, bind_device, waiting_records
from sentinel.client import ServiceClient, read_token
from sentinel.config import load_config
from sentinel.credentials import Credential, CredentialKind
from sentinel.health import HealthStatus, Person, Status
from sentinel.outbox import Outbox
from sentinel.policy import Verdict, VerdictKind
from sentinel.records import RecordMaker
from sentinel.service.seed import DEMO_SITE
from sentinel.service.server import ReferenceServer

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def srv(tmp_path):
    with ReferenceServer(tmp_path / "svc.db", seed="demo") as server:
        yield server


def admin(srv, method: str, path: str, body: dict | None = None) -> dict:
    r = requests.request(method, srv.url + path, json=body, headers={"Authorization": f"Bearer {srv.admin_token}"}, timeout=10)
    assert r.status_code < 300, r.text
    return r.json()


def new_code(srv, site: str = "demo-site") -> str:
    return admin(srv, "POST", f"/admin/sites/{site}/binding-codes")["code"]


def bind_cli(srv, code: str, config: Path, token: Path, *extra: str, site: str = "demo-site") -> subprocess.CompletedProcess:
    """`sentinel bind` as a script runs it: no terminal, so no question is asked."""
    result = subprocess.run(
        [sys.executable, "-m", "sentinel", "bind", "--server", srv.url, "--site", site, "--code", code,
         "--config", str(config), "--token-file", str(token), *extra],
        cwd=REPO, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def bound_device(srv, tmp_path: Path, device_id: str = "gate-1", site_name: str | None = None) -> tuple[Path, Path]:
    """A device bound to demo-site, with its state directory in tmp_path."""
    config, token = tmp_path / "sentinel.toml", tmp_path / "device-token"
    config.write_text(f'[device]\nid = "{device_id}"\nlanguage = "en"\nstate_dir = "{tmp_path / "state"}"\n')
    bind_device(srv.url, "demo-site", new_code(srv), device_id, config, token)
    if site_name is not None:  # a technician typed a name of their own afterwards
        config.write_text(config.read_text().replace(f'site_name = "{DEMO_SITE.name}"', f'site_name = "{site_name}"'))
    return config, token


def make_records(config_path: Path, n: int) -> list[dict]:
    """`n` check records as the kiosk makes them under the config's binding, waiting in its outbox."""
    config = load_config(config_path)
    maker = RecordMaker(config.device.id, config.device.site_id, b"k" * 32)
    outbox = Outbox(config.outbox_path)
    made = []
    try:
        for i in range(n):
            record = maker.make(
                Credential(CredentialKind.HEALTH_CODE, f"token-{i:04d}-abcdefghijkl"),
                HealthStatus(status=Status.GREEN, person=Person(name_masked="王*明")),
                Verdict(VerdictKind.PASS, "ok"), False, datetime.now(UTC),
            )
            outbox.add(record)
            made.append(record.model_dump(mode="json"))
    finally:
        outbox.close()
    return made


def snapshot(*paths: Path) -> dict:
    return {p: p.read_bytes() if p.exists() else None for p in paths}


def test_records_of_another_site_stop_the_bind_until_confirmed_and_the_service_refuses_them(srv, tmp_path):
    config, token = bound_device(srv, tmp_path)
    made = make_records(config, 3)
    admin(srv, "POST", "/admin/sites", {"id": "plant-3", "name": "Plant 3 north gate", "address": "3 Factory Road"})
    code = new_code(srv, "plant-3")
    before = snapshot(config, token)

    refused = bind_cli(srv, code, config, token, site="plant-3")

    assert refused.returncode == 1 and refused.stdout == ""
    line, = refused.stderr.strip().splitlines()
    for words in ("3 record(s) waiting in the outbox", "device gate-1 at site demo-site", "refuses them",
                  "sentinel outbox flush", "--yes", "the code is not used"):
        assert words in line, line
    assert snapshot(config, token) == before  # nothing written, nothing sent: the same code still works

    admin(srv, "POST", "/admin/devices/gate-1/rebind-allowed", {"site_id": "plant-3"})  # moving a device id is the admin's call
    confirmed = bind_cli(srv, code, config, token, "--yes", site="plant-3")

    assert confirmed.returncode == 0, confirmed.stderr
    assert "bound device gate-1 to site plant-3" in confirmed.stdout
    assert "warning: 3 record(s) waiting" in confirmed.stderr and "bound anyway, as confirmed" in confirmed.stderr
    assert load_config(config).device.site_id == "plant-3"
    # What the message promised: under the new binding the service takes none of them.
    client = ServiceClient(srv.url, read_token(token), device_id="gate-1", site_id="plant-3")
    try:
        answer = client.upload_records_detailed(made)
    finally:
        client.close()
    assert answer.accepted == [] and {r.error for r in answer.rejected} == {"wrong_site"}


def test_records_of_the_same_device_and_site_are_uploaded_with_the_new_token(srv, tmp_path):
    config, token = bound_device(srv, tmp_path)
    old_token = read_token(token)
    made = make_records(config, 2)
    admin(srv, "POST", "/admin/devices/gate-1/rebind-allowed")  # re-binding an id is the admin's call

    result = bind_cli(srv, new_code(srv), config, token)

    assert result.returncode == 0, result.stderr
    assert "warning: 2 record(s) waiting in the outbox" in result.stderr and "uploaded with the new token" in result.stderr
    assert read_token(token) != old_token
    flushed = subprocess.run([sys.executable, "-m", "sentinel", "outbox", "flush", "--config", str(config), "--progress", "never"],
                             cwd=REPO, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert flushed.returncode == 0, flushed.stdout + flushed.stderr
    assert {r["id"] for r in made} <= _stored_ids(srv, token)
    assert waiting_records(load_config(config).outbox_path).total == 0


def _stored_ids(srv, token: Path) -> set[str]:
    client = ServiceClient(srv.url, read_token(token), device_id="gate-1", site_id="demo-site")
    try:
        return {r["id"] for r in client.list_records()}
    finally:
        client.close()


def test_a_site_name_typed_on_the_device_is_replaced_and_shown_old_to_new(srv, tmp_path):
    config, token = bound_device(srv, tmp_path, site_name="东门 (by the car park)")

    result = bind_cli(srv, new_code(srv), config, token, "--device-id", "gate-2")

    assert result.returncode == 0, result.stderr
    assert f"warning: device.site_name changed: '东门 (by the car park)' -> '{DEMO_SITE.name}'" in result.stderr
    assert "warning: device.id changed: 'gate-1' -> 'gate-2'" in result.stderr
    assert load_config(config).device.site_name == DEMO_SITE.name


def test_a_first_bind_has_nothing_to_warn_about(srv, tmp_path):
    config, token = tmp_path / "sentinel.toml", tmp_path / "device-token"
    config.write_text(f'[device]\nlanguage = "en"\nstate_dir = "{tmp_path / "state"}"\n')
    result = bind_cli(srv, new_code(srv), config, token, "--device-id", "gate-7")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_confirm_waiting_is_asked_once_with_the_count_and_a_no_writes_nothing(srv, tmp_path):
    config, token = bound_device(srv, tmp_path)
    make_records(config, 4)
    asked: list[str] = []
    before = snapshot(config, token)
    with pytest.raises(BindError, match="4 record"):
        bind_device(srv.url, "demo-site", new_code(srv), "gate-9", config, token, confirm_waiting=lambda m: asked.append(m) or False)
    assert len(asked) == 1 and "4 record(s)" in asked[0] and "as device gate-1 at site demo-site" in asked[0]
    assert snapshot(config, token) == before

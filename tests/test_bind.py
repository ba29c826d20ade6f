"""`sentinel bind` against the real reference service: a one-time code becomes a root-only token
file and a config that names the device and its site, and every failure is one line, exit 1,
with nothing written and the token never printed."""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import threading
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from sentinel.binding import (
    BindError,
    bind_device,
    machine_device_id,
    update_config,
    write_secret_file,
)
from sentinel.client import ServiceClient, read_token
from sentinel.config import ID_PATTERN, load_config
from sentinel.credentials import Credential, CredentialKind
from sentinel.demo_data import demo_person
from sentinel.health import Status
from sentinel.service.seed import DEMO_BINDING_CODE, DEMO_SITE
from sentinel.service.server import ReferenceServer
from tests.helpers import json_answering

REPO = Path(__file__).resolve().parents[1]

CONFIG = """\
# Pillar at the east gate: installed 2022-04-02, ask Xiao Li before changing the policy.
[device]
id = "unbound-device"   # set by `sentinel bind`
language = "en"

[policy]
offline = "allow_and_flag"   # the mall wants the queue to move
nat_window_h = 72

[gate]
type = "fake"
pulse_s = 2.0
"""


# --- helpers ---------------------------------------------------------------------------------------


@pytest.fixture()
def srv(tmp_path):
    with ReferenceServer(tmp_path / "svc.db", seed="demo", fault_injection=True) as server:
        yield server


def admin(srv, method: str, path: str, body: dict | None = None) -> dict:
    r = requests.request(method, srv.url + path, json=body, headers={"Authorization": f"Bearer {srv.admin_token}"}, timeout=10)
    assert r.status_code < 300, r.text
    return r.json()


def new_code(srv, site: str = "demo-site", **body) -> str:
    return admin(srv, "POST", f"/admin/sites/{site}/binding-codes", body or None)["code"]


def cli(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "sentinel", "bind", *args], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def bind_cli(srv_url: str, code: str, config: Path, token: Path, *extra: str, site: str = "demo-site"):
    return cli("--server", srv_url, "--site", site, "--code", code, "--config", str(config), "--token-file", str(token), *extra)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stdout == ""
    return lines[0]


def snapshot(*paths: Path) -> dict:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns, stat.S_IMODE(p.stat().st_mode)) if p.exists() else None for p in paths}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the CLI against the service ------------------------------------------------------------------


def test_bind_writes_a_root_only_token_that_works_and_a_config_that_keeps_its_comments(srv, tmp_path):
    config = tmp_path / "etc" / "sentinel.toml"
    config.parent.mkdir()
    config.write_text(CONFIG)
    token_file = tmp_path / "secrets" / "device-token"  # folder missing: created 0700

    result = bind_cli(srv.url, DEMO_BINDING_CODE, config, token_file, "--device-id", "mall-7-east-1")

    assert result.returncode == 0, result.stderr
    token = read_token(token_file)
    assert token.startswith("sdt_")
    assert token not in result.stdout + result.stderr
    for shown in ("mall-7-east-1", DEMO_SITE.name, DEMO_SITE.address, str(config), str(token_file)):
        assert shown in result.stdout
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(token_file.parent.stat().st_mode) == 0o700
    assert token_file.read_text() == token + "\n"
    assert sorted(p.name for p in token_file.parent.iterdir()) == ["device-token"]  # no temp file left

    text = config.read_text()
    assert text.startswith("# Pillar at the east gate: installed 2022-04-02")
    assert 'id = "mall-7-east-1"   # set by `sentinel bind`' in text
    assert 'offline = "allow_and_flag"   # the mall wants the queue to move' in text
    assert DEMO_SITE.name in text
    loaded = load_config(config)
    assert (loaded.device.id, loaded.device.site_id, loaded.device.site_name) == ("mall-7-east-1", "demo-site", DEMO_SITE.name)
    assert loaded.device.language == "en" and loaded.policy.offline == "allow_and_flag" and loaded.policy.nat_window_h == 72
    assert loaded.gate.pulse_s == 2.0
    assert loaded.verifier.url == srv.url and loaded.verifier.token_file == token_file
    assert sorted(p.name for p in config.parent.iterdir()) == ["sentinel.toml"]

    # The token is the device's credential at the service: a verify with the config's ids works.
    green = demo_person("green")
    client = ServiceClient(loaded.verifier.url, token, device_id=loaded.device.id, site_id=loaded.device.site_id)
    try:
        status = client.verify(Credential(CredentialKind.HEALTH_CODE, green.token), timeout_s=5.0)
    finally:
        client.close()
    assert status.status == Status.GREEN
    assert admin(srv, "GET", "/admin/devices/mall-7-east-1")["site_id"] == "demo-site"


def test_a_code_works_once_and_the_second_bind_touches_nothing(srv, tmp_path):
    config, token_file = tmp_path / "sentinel.toml", tmp_path / "device-token"
    config.write_text(CONFIG)
    assert bind_cli(srv.url, DEMO_BINDING_CODE, config, token_file).returncode == 0
    before = snapshot(config, token_file)

    again = bind_cli(srv.url, DEMO_BINDING_CODE.lower().replace("-", " "), config, token_file)

    line = one_error_line(again)
    assert "already used" in line and "single-use" in line
    assert snapshot(config, token_file) == before


def test_unknown_code(srv, tmp_path):
    config, token_file = tmp_path / "sentinel.toml", tmp_path / "device-token"
    result = bind_cli(srv.url, "NOPE0-NOPE0", config, token_file)
    assert one_error_line(result) == "sentinel bind: binding code not known to the service: check it, or ask for a new one"
    assert not config.exists() and not token_file.exists()


def test_expired_code(srv, tmp_path):
    code = new_code(srv, expires_at=(datetime.now(UTC) - timedelta(minutes=1)).isoformat())
    config, token_file = tmp_path / "sentinel.toml", tmp_path / "device-token"
    assert "expired" in one_error_line(bind_cli(srv.url, code, config, token_file))
    assert not config.exists() and not token_file.exists()


def test_a_code_for_another_site_writes_nothing(srv, tmp_path):
    admin(srv, "POST", "/admin/sites", {"id": "plant-3", "name": "Plant 3 north gate", "address": "3 Factory Road"})
    code = new_code(srv, "plant-3")
    config, token_file = tmp_path / "sentinel.toml", tmp_path / "device-token"
    config.write_text(CONFIG)
    token_file.write_text("sdt_the-old-token\n")
    token_file.chmod(0o600)
    before = snapshot(config, token_file)

    line = one_error_line(bind_cli(srv.url, code, config, token_file, "--device-id", "pillar-1", site="demo-site"))

    assert "'plant-3'" in line and "'demo-site'" in line and "nothing written" in line
    assert snapshot(config, token_file) == before
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("svc.db")) == ["device-token", "sentinel.toml"]


def test_unreachable_server(tmp_path):
    config, token_file = tmp_path / "sentinel.toml", tmp_path / "device-token"
    line = one_error_line(bind_cli(f"http://127.0.0.1:{free_port()}", "ABCDE-FGHIJ", config, token_file))
    assert line.startswith("sentinel bind: cannot reach the service at http://127.0.0.1:") and "connection refused" in line
    assert not config.exists() and not token_file.exists()


def test_without_a_config_file_it_creates_one_with_a_device_id_from_the_machine(srv, tmp_path):
    config, token_file = tmp_path / "new" / "sentinel.toml", tmp_path / "new" / "device-token"
    result = bind_cli(srv.url, new_code(srv), config, token_file)
    assert result.returncode == 0, result.stderr
    loaded = load_config(config)
    assert loaded.device.site_id == "demo-site" and loaded.device.site_name == DEMO_SITE.name
    assert re.match(ID_PATTERN, loaded.device.id) and loaded.device.id.startswith("sentinel-")
    assert loaded.device.id in result.stdout and "(created)" in result.stdout
    # The folder the config and the token share stays readable for the kiosk; the token does not.
    assert stat.S_IMODE(config.parent.stat().st_mode) == 0o755
    assert stat.S_IMODE(config.stat().st_mode) == 0o644
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert read_token(token_file) not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "faults, words",
    [
        ({"garbage": True}, "not JSON"),
        ({"oversized_bytes": 1_000_000}, "over 64 KiB"),
        ({"status": 503}, "failed (HTTP 503 injected_fault): try again later"),
        ({"drop": True}, "dropped"),
    ],
)
def test_a_broken_answer_is_one_line_and_writes_nothing(srv, tmp_path, faults, words):
    code = new_code(srv)
    config, token_file = tmp_path / "sentinel.toml", tmp_path / "device-token"
    config.write_text(CONFIG)
    before = snapshot(config, token_file)
    admin(srv, "PUT", "/admin/faults", faults)
    try:
        line = one_error_line(bind_cli(srv.url, code, config, token_file))
    finally:
        admin(srv, "PUT", "/admin/faults", {})
    assert words in line
    assert snapshot(config, token_file) == before


def test_a_slow_service_times_out(srv, tmp_path):
    admin(srv, "PUT", "/admin/faults", {"latency_s": 3})
    try:
        with pytest.raises(BindError, match="did not answer within 1 s"):
            bind_device(srv.url, "demo-site", new_code(srv), "d-1", tmp_path / "c.toml", tmp_path / "t", timeout_s=1.0)
    finally:
        admin(srv, "PUT", "/admin/faults", {})
    assert not (tmp_path / "c.toml").exists() and not (tmp_path / "t").exists()


def test_a_broken_config_stops_the_bind_before_the_code_is_spent(srv, tmp_path):
    code = new_code(srv)
    config, token_file = tmp_path / "sentinel.toml", tmp_path / "device-token"
    config.write_text(CONFIG.replace("[gate]", "[gate]\npulse_seconds = 2"))
    line = one_error_line(bind_cli(srv.url, code, config, token_file))
    assert "gate.pulse_seconds: unknown key" in line and "fix it before binding" in line
    assert not token_file.exists()
    config.write_text(CONFIG)
    assert bind_cli(srv.url, code, config, token_file).returncode == 0  # the code was not used up


@pytest.mark.parametrize(
    "args, words",
    [
        (["--server", "ftp://x", "--site", "s", "--code", "c"], "must look like https://host"),
        (["--server", "http://127.0.0.1:1", "--site", "bad site", "--code", "c"], "not a valid site id"),
        (["--server", "http://127.0.0.1:1", "--site", "s", "--code", "c", "--device-id", "gate/1"], "not a valid device id"),
        (["--server", "http://127.0.0.1:1", "--site", "s", "--code", "c", "--ca-bundle", "/nonexistent.pem"], "not a file"),
    ],
)
def test_bad_arguments_are_one_line(tmp_path, args, words):
    line = one_error_line(cli(*args, "--config", str(tmp_path / "c.toml"), "--token-file", str(tmp_path / "t")))
    assert words in line
    assert list(tmp_path.iterdir()) == []


def test_device_id_comes_from_the_option_then_the_config_then_the_machine(srv, tmp_path):
    machine_id = tmp_path / "machine-id"
    machine_id.write_text("0123456789abcdef0123456789abcdef\n")
    config = tmp_path / "c.toml"

    first = bind_device(srv.url, "demo-site", new_code(srv), None, config, tmp_path / "t", machine_id_path=machine_id)
    assert first.device_id == machine_device_id(machine_id) and first.config_created
    assert "0123456789abcdef" not in first.device_id  # derived from the machine id, not a copy of it

    admin(srv, "POST", f"/admin/devices/{first.device_id}/rebind-allowed")  # re-binding an id is the admin's call
    kept = bind_device(srv.url, "demo-site", new_code(srv), None, config, tmp_path / "t", machine_id_path=tmp_path / "none")
    assert kept.device_id == first.device_id and not kept.config_created and kept.token_replaced

    chosen = bind_device(srv.url, "demo-site", new_code(srv), "gate-2", config, tmp_path / "t")
    assert chosen.device_id == "gate-2" == load_config(config).device.id


def test_rebinding_replaces_the_token_and_the_old_one_stops_working(srv, tmp_path):
    config, token_file = tmp_path / "c.toml", tmp_path / "t"
    bind_device(srv.url, "demo-site", new_code(srv), "gate-9", config, token_file)
    old = read_token(token_file)
    admin(srv, "POST", "/admin/devices/gate-9/rebind-allowed")  # re-binding an id is the admin's call
    bind_device(srv.url, "demo-site", new_code(srv), "gate-9", config, token_file)
    new = read_token(token_file)
    assert new != old and stat.S_IMODE(token_file.stat().st_mode) == 0o600
    hit = lambda token: requests.get(  # noqa: E731
        f"{srv.url}/v1/records", params={"device_id": "gate-9"}, headers={"Authorization": f"Bearer {token}"}, timeout=5
    ).status_code
    assert (hit(old), hit(new)) == (401, 200)


def test_binding_a_device_id_already_bound_says_it_is_the_admins_call_and_keeps_the_code(srv, tmp_path):
    config, token_file = tmp_path / "c.toml", tmp_path / "t"
    bind_device(srv.url, "demo-site", new_code(srv), "gate-7", config, token_file)
    before = snapshot(config, token_file)
    code = new_code(srv)
    again = bind_cli(srv.url, code, config, token_file, "--device-id", "gate-7")
    line = one_error_line(again)
    assert "already bound" in line and "admin" in line and "not used" in line
    assert snapshot(config, token_file) == before
    admin(srv, "POST", "/admin/devices/gate-7/rebind-allowed")
    assert bind_cli(srv.url, code, config, token_file, "--device-id", "gate-7").returncode == 0  # the same code still works


def test_token_file_defaults_to_the_configs(srv, tmp_path):
    config, token_file = tmp_path / "c.toml", tmp_path / "keys" / "device-token"
    config.write_text(f'[verifier]\ntype = "http"\ntoken_file = "{token_file}"\n')
    result = cli("--server", srv.url, "--site", "demo-site", "--code", new_code(srv), "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600 and str(token_file) in result.stdout


# --- TLS -------------------------------------------------------------------------------------------


def _bound_over_tls(request: bytes) -> dict:
    """The bind service's answer to `request`: the site and a token for the device that asked."""
    return {"device_id": json.loads(request)["device_id"], "site": DEMO_SITE.model_dump(), "token": "sdt_over-tls"}


@pytest.fixture()
def tls_service(tmp_path):
    """A bind answer over HTTPS with a self-signed certificate for 127.0.0.1, and that certificate."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), json_answering(_bound_over_tls))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", cert
    finally:
        server.shutdown()
        server.server_close()


def test_tls_is_verified_and_a_ca_bundle_is_used_and_kept(tls_service, tmp_path):
    url, cert = tls_service
    config, token_file = tmp_path / "c.toml", tmp_path / "t"

    line = one_error_line(bind_cli(url, "ABCDE-FGHIJ", config, token_file))
    assert "TLS verification failed" in line and "--ca-bundle" in line
    assert not config.exists() and not token_file.exists()

    result = bind_cli(url, "ABCDE-FGHIJ", config, token_file, "--ca-bundle", str(cert))
    assert result.returncode == 0, result.stderr
    assert read_token(token_file) == "sdt_over-tls" and "sdt_over-tls" not in result.stdout + result.stderr
    assert load_config(config).verifier.ca_bundle == cert  # the kiosk trusts the same CA


# --- the pieces ------------------------------------------------------------------------------------


def test_write_secret_file_is_0600_whatever_the_umask_and_replaces_atomically(tmp_path):
    old_umask = os.umask(0)
    try:
        path = tmp_path / "a" / "b" / "token"
        write_secret_file(path, "first")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        path.chmod(0o644)
        write_secret_file(path, "second")
        assert path.read_text() == "second\n" and stat.S_IMODE(path.stat().st_mode) == 0o600
        assert [p.name for p in path.parent.iterdir()] == ["token"]
    finally:
        os.umask(old_umask)
    with pytest.raises(ValueError):
        write_secret_file(tmp_path / "x", "two\nlines")


def test_the_one_atomic_write_keeps_the_old_file_when_a_write_fails_and_leaves_no_temporary(tmp_path, monkeypatch):
    """sentinel.atomic.write_atomic, used by bind (token, config), the record key and wipe: a write
    that fails part-way (a full card) leaves the old content whole and no temporary file behind."""
    from sentinel import atomic
    from sentinel.records import load_or_create_key

    path = tmp_path / "device-token"
    atomic.write_atomic(path, b"old\n")
    real_write = os.write

    def full_disk(fd, data):
        if fd > 2 and bytes(data) == b"new\n":
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(atomic.os, "write", full_disk)
    with pytest.raises(OSError, match="No space"):
        atomic.write_atomic(path, b"new\n")
    with pytest.raises(OSError, match="No space"):
        atomic.write_atomic(path, b"new\n", tmp=tmp_path / "fixed.tmp")
    monkeypatch.undo()
    assert path.read_bytes() == b"old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["device-token"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = load_or_create_key(tmp_path / "state" / "record.key")  # written through the same helper, as 0600
    assert len(key) == 32 and stat.S_IMODE((tmp_path / "state" / "record.key").stat().st_mode) == 0o600
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == ["record.key"]


def test_update_config_adds_missing_keys_next_to_the_others_and_keeps_everything_else(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('# top\n[device]\nlanguage = "en"  # for the tourists\n\n# the camera\n[camera]\ntype = "replay"\n')
    path.chmod(0o640)
    created = update_config(path, device_id="d-1", site_id="s-1", site_name='Mall "East" 东门', url="https://h.example")
    assert not created
    text = path.read_text()
    assert text.startswith('# top\n[device]\nlanguage = "en"  # for the tourists\nid = "d-1"\nsite_id = "s-1"\n')
    assert '\n\n# the camera\n[camera]\ntype = "replay"\n' in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    loaded = load_config(path)
    assert loaded.device.site_name == 'Mall "East" 东门' and loaded.verifier.type == "http" and loaded.verifier.url == "https://h.example"


def test_update_config_handles_dotted_keys_and_inline_tables(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('device.id = "old"\nverifier = {type = "http", url = "https://old.example"}\n')
    update_config(path, device_id="new", site_id="s", site_name="S", url="https://new.example")
    data = tomllib.loads(path.read_text())
    assert data["device"] == {"id": "new", "site_id": "s", "site_name": "S"}
    assert data["verifier"] == {"type": "http", "url": "https://new.example"}


def test_update_config_validates_before_replacing(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(CONFIG)
    before = snapshot(path)
    with pytest.raises(BindError, match="would not be valid"):
        update_config(path, device_id="d", site_id="s", site_name="x" * 81, url="https://h.example")
    assert snapshot(path) == before and [p.name for p in tmp_path.iterdir()] == ["c.toml"]

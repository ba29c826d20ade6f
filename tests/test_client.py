"""The device's HTTP client (`sentinel.client`) against a real reference service on loopback.

Nothing here is mocked: the server is `ReferenceServer` on a real socket, faults are injected the
way docs/api.md describes, and two misbehaving servers that the reference service cannot imitate
(one that accepts a connection and never answers, and a closed port) are real sockets too. The
issue this answers: whatever the service or the network does, `verify` returns by its deadline
with a status a technician can read (`timeout` vs `verify_failed` vs `device_unauthorized`, and a
`detail` saying what happened), and the kiosk loop built on it keeps taking frames and records the
check as offline.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from hardware.gate import FakeGate
from sentinel.client import ClientError, ServiceClient, read_token
from sentinel.config import CredentialConfig, PolicyConfig
from sentinel.contract import Heartbeat
from sentinel.credentials import Credential, CredentialKind, CredentialRules
from sentinel.decoding import make_decoder
from sentinel.demo_data import DEMO_PEOPLE, demo_person
from sentinel.health import HealthStatus, Status
from sentinel.outbox import Outbox
from sentinel.pipeline import Pipeline, State
from sentinel.policy import Verdict, VerdictKind
from sentinel.records import RecordMaker
from sentinel.service.faults import DEFAULT_OVERSIZED_BYTES, Faults
from sentinel.service.seed import (
    DEMO_DEVICE_ID,
    DEMO_DEVICE_TOKEN,
    DEMO_EXPIRED_PERSON,
    DEMO_SITE,
)
from sentinel.service.server import ReferenceServer
from tests.helpers import device_client, json_answering, qr_frame
from ui.console import ConsoleDisplay

ADMIN = "sat_client-test-admin-token"
#: the per-check deadline used throughout: short, so that the fault tests stay fast
DEADLINE_S = 0.5
#: how late `verify` (or the pipeline's verdict) may be past the deadline: the deadline is held by a
#: watchdog thread, which a busy 2-core machine may wake late by tens of milliseconds; far below the
#: seconds a server without a deadline holds a check (13.9 s before the watchdog existed)
SLACK_S = 0.4
GREEN = demo_person("green")
RECORD_KEY = b"client-test-record-key-32-bytes!"

EXPECTED_MASKS = {
    "green": ("王*明", "1101**********002X"),
    "yellow": ("李*", "3101**********1234"),
    "red": ("张*", "4403**********0011"),
    "stale_nat": ("陈*", "3201**********0024"),
}


# --- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    """One real server for the module; each test starts and ends without faults."""
    with ReferenceServer(tmp_path_factory.mktemp("service") / "service.db", seed="demo", admin_token=ADMIN, fault_injection=True) as server:
        yield server


@pytest.fixture(autouse=True)
def no_faults(request):
    if "srv" not in request.fixturenames:
        yield
        return
    server = request.getfixturevalue("srv")
    server.fault_state.set(Faults())
    yield
    server.fault_state.set(Faults())


@pytest.fixture
def client(srv):
    with closing(device_client(srv.url)) as c:
        yield c


def health_code(token: str) -> Credential:
    return Credential(CredentialKind.HEALTH_CODE, token)


def timed_verify(client: ServiceClient, credential: Credential, timeout_s: float = DEADLINE_S) -> tuple[HealthStatus, float]:
    started = time.monotonic()
    status = client.verify(credential, timeout_s=timeout_s)
    return status, time.monotonic() - started


def admin(srv, method: str, path: str, body=None) -> requests.Response:
    return requests.request(method, srv.url + path, json=body, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10)


def bind_new_device(srv, device_id: str) -> str:
    """A device of its own (binding code from the admin API), so a test may revoke or fill it."""
    code = admin(srv, "POST", f"/admin/sites/{DEMO_SITE.id}/binding-codes", {"ttl_s": 600})
    assert code.status_code == 201, code.text
    bound = requests.post(f"{srv.url}/v1/devices/bind", json={"code": code.json()["code"], "device_id": device_id}, timeout=10)
    assert bound.status_code == 200, bound.text
    return bound.json()["token"]


def make_records(device_id: str, n: int, at: datetime | None = None) -> list[dict]:
    """Check records exactly as the kiosk makes them, as JSON the uploader sends."""
    maker = RecordMaker(device_id, DEMO_SITE.id, RECORD_KEY)
    at = at or datetime.now(UTC)
    status = HealthStatus(status=Status.TIMEOUT, detail="test")
    out = []
    for i in range(n):
        verdict = Verdict(VerdictKind.DENY, "offline_denied")
        record = maker.make(health_code(f"TESTTOKEN{i:07d}"), status, verdict, True, at + timedelta(seconds=i))
        out.append(record.model_dump(mode="json"))
    return out


# --- verify: answers -------------------------------------------------------------------------


@pytest.mark.parametrize("person", DEMO_PEOPLE, ids=lambda p: p.key)
def test_each_demo_person_gets_their_status(client, person):
    status, elapsed = timed_verify(client, health_code(person.token), timeout_s=5)
    assert isinstance(status, HealthStatus)
    assert status.status == person.colour, status.detail
    assert (status.person.name_masked, status.person.id_masked) == EXPECTED_MASKS[person.key]
    dumped = status.model_dump_json()
    assert person.name not in dumped and person.id_number not in dumped  # only the masked identity
    assert status.nat.result == person.nat_result
    assert status.vaccination.doses == person.doses
    assert status.checked_at.tzinfo is not None
    assert HealthStatus.model_validate_json(dumped) == status  # a valid contract answer, round trip
    assert elapsed < 1.0


def test_id_number_credential(client):
    by_id = client.verify(Credential(CredentialKind.ID_NUMBER, GREEN.id_number), timeout_s=5)
    assert by_id.status == Status.GREEN
    assert (by_id.person.name_masked, by_id.person.id_masked) == EXPECTED_MASKS["green"]
    # an expired health code is a stale screenshot; the ID card is the person, and still answers
    expired_by_id = client.verify(Credential(CredentialKind.ID_NUMBER, DEMO_EXPIRED_PERSON.id_number), timeout_s=5)
    assert expired_by_id.status == DEMO_EXPIRED_PERSON.colour


def test_unknown_token_is_not_found(client):
    status = client.verify(health_code("NOPE0000NOPE0000"), timeout_s=5)
    assert status.status == Status.NOT_FOUND and status.person is None
    assert not status.status.is_unreachable  # the service answered: not a case for the offline policy


def test_expired_person_is_expired(client):
    status = client.verify(health_code(DEMO_EXPIRED_PERSON.token), timeout_s=5)
    assert status.status == Status.EXPIRED and status.person is None


def test_answers_come_back_on_a_kept_alive_connection(client):
    for _ in range(20):
        assert client.verify(health_code(GREEN.token), timeout_s=5).status == Status.GREEN
    pools = client._session.get_adapter(client.base_url).poolmanager.pools
    assert [pools[key].num_connections for key in pools.keys()] == [1]  # twenty checks, one TCP connection


# --- verify: the service refuses this device ------------------------------------------------


def test_revoked_wrong_token_and_wrong_site_are_three_distinct_device_errors(srv, caplog):
    caplog.set_level(logging.DEBUG)
    token = bind_new_device(srv, "client-test-revoked")
    revoked = device_client(srv.url, token, device_id="client-test-revoked")
    assert revoked.verify(health_code(GREEN.token), timeout_s=5).status == Status.GREEN  # works before the revocation
    answer = admin(srv, "POST", "/admin/devices/client-test-revoked/revoke")
    assert answer.status_code == 200 and answer.json()["revoked"] is True

    wrong_token = device_client(srv.url, "sdt_not-a-token-this-service-issued")
    wrong_site = device_client(srv.url, site_id="someone-elses-site")
    wrong_device = device_client(srv.url, device_id="someone-elses-device")
    seen = {}
    for name, c in (("revoked", revoked), ("wrong_token", wrong_token), ("wrong_site", wrong_site), ("wrong_device", wrong_device)):
        status, elapsed = timed_verify(c, health_code(GREEN.token), timeout_s=5)
        assert status.status == Status.DEVICE_UNAUTHORIZED, (name, status)
        assert not status.status.is_unreachable  # never the offline policy (allow_and_flag would let everyone in)
        assert status.person is None
        assert elapsed < 1.0  # answered at once, no retry
        seen[name] = status.detail
        c.close()
    assert seen == {"revoked": "token_revoked", "wrong_token": "unauthorized", "wrong_site": "wrong_site", "wrong_device": "wrong_device"}
    for secret in (token, DEMO_DEVICE_TOKEN, "sdt_not-a-token-this-service-issued", GREEN.token):
        assert secret not in caplog.text


# --- TLS ---------------------------------------------------------------------------------------


def test_tls_verification_is_on_by_default_and_a_ca_bundle_pins_it(tmp_path):
    default = device_client("https://health.example")
    assert default._session.verify is True
    bundle = tmp_path / "private-ca.pem"
    pinned = device_client("https://health.example", ca_bundle=bundle)
    assert pinned._session.verify == str(bundle)


@dataclass
class TlsServer:
    url: str
    cert: Path


GREEN_ANSWER = {"status": "green", "person": {"name_masked": "王*明", "id_masked": "1101**********002X"}}


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """An HTTPS server with a self-signed certificate for 127.0.0.1: a private CA, as a city's
    service behind its own PKI would be."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    server = ThreadingHTTPServer(("127.0.0.1", 0), json_answering(GREEN_ANSWER, protocol="HTTP/1.1"))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield TlsServer(f"https://127.0.0.1:{server.server_address[1]}", cert)
    server.shutdown()
    server.server_close()


def test_tls_certificate_not_trusted_is_verify_failed(tls_server):
    status, elapsed = timed_verify(device_client(tls_server.url), health_code(GREEN.token))
    assert status.status == Status.VERIFY_FAILED
    assert status.detail.startswith("tls:")
    assert elapsed < DEADLINE_S + SLACK_S


def test_tls_with_the_private_ca_bundle_verifies(tls_server, monkeypatch):
    # The environment's CA bundle (set on this machine, and by many images) must not override the
    # bundle the device's config pins.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    status = device_client(tls_server.url, ca_bundle=tls_server.cert).verify(health_code(GREEN.token), timeout_s=2)
    assert status.status == Status.GREEN, status.detail


def test_missing_ca_bundle_is_a_status_not_an_exception(tls_server, tmp_path, monkeypatch):
    # requests raises a bare OSError for a bundle path that does not exist (not a RequestException)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    status, elapsed = timed_verify(device_client(tls_server.url, ca_bundle=tmp_path / "gone.pem"), health_code(GREEN.token))
    assert status.status == Status.VERIFY_FAILED
    assert "tls" in status.detail
    assert elapsed < DEADLINE_S + SLACK_S


# --- the token file -----------------------------------------------------------------------------

SECRET = "sdt_Qm9vZ3VzLXRva2VuLWV4YW1wbGUtb25seS0xMjM0NTY3ODk"


def test_read_token_strips_the_newline(tmp_path):
    path = tmp_path / "token"
    path.write_text(SECRET + "\n")
    assert read_token(path) == SECRET


@pytest.mark.parametrize(
    ("make", "words"),
    [
        pytest.param(lambda p: None, "does not exist", id="missing"),
        pytest.param(lambda p: p.write_text(""), "empty", id="empty"),
        pytest.param(lambda p: p.write_text("  \n\n"), "empty", id="blank"),
        pytest.param(lambda p: p.write_text(SECRET[:20] + " " + SECRET[20:] + "\n"), "malformed", id="space-inside"),
        pytest.param(lambda p: p.write_bytes(b"\xff\xfe" + SECRET.encode()), "malformed", id="not-utf8"),
        pytest.param(lambda p: p.mkdir(), "cannot read", id="a-directory"),
    ],
)
def test_unusable_token_file_is_a_client_error_without_the_token(tmp_path, make, words):
    path = tmp_path / "token"
    make(path)
    with pytest.raises(ClientError) as caught:
        read_token(path)
    assert caught.value.code == "no_token"
    message = str(caught.value)
    assert words in message and str(path) in message
    assert SECRET not in message and SECRET[:20] not in message and SECRET[20:] not in message


def _read_token_as_nobody(path: Path) -> tuple[str, str]:
    """read_token in a forked child that dropped root (root reads any file): (code, message)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(r)
            os.setgid(65534)
            os.setuid(65534)
            try:
                read_token(path)
                out = ("read", "")
            except ClientError as e:
                out = (e.code, str(e))
            except BaseException as e:  # noqa: BLE001 - reported to the parent
                out = ("raised", type(e).__name__)
            os.write(w, json.dumps(out).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    return tuple(json.loads(data))


def test_unreadable_token_file_is_a_client_error_without_the_token(tmp_path):
    path = tmp_path / "token"
    path.write_text(SECRET + "\n")
    path.chmod(0o000)
    if os.geteuid() == 0:
        code, message = _read_token_as_nobody(path)
    else:
        with pytest.raises(ClientError) as caught:
            read_token(path)
        code, message = caught.value.code, str(caught.value)
    assert code == "no_token"
    assert "permission denied" in message
    assert SECRET not in message


# --- records ---------------------------------------------------------------------------------


def test_upload_records_is_idempotent_through_the_client(srv):
    token = bind_new_device(srv, "client-test-uploader")
    c = device_client(srv.url, token, device_id="client-test-uploader")
    records = make_records("client-test-uploader", 3)
    ids = [r["id"] for r in records]
    assert c.upload_records(records) == ids
    assert c.upload_records(records) == ids  # sent again: acknowledged again, stored once
    # the lost acknowledgement: the service stored the batch, then the connection dropped
    more = make_records("client-test-uploader", 2, at=datetime.now(UTC) + timedelta(minutes=1))
    srv.fault_state.set(Faults(drop=True))
    with pytest.raises(ClientError) as caught:
        c.upload_records(more, timeout_s=5)
    assert caught.value.code == "connection"
    srv.fault_state.set(Faults())
    assert c.upload_records(more) == [r["id"] for r in more]  # the retry is acknowledged
    stored = c.list_records()
    assert [r["id"] for r in stored] == ids + [r["id"] for r in more]  # each once, in time order
    c.close()


def test_upload_faults_raise_client_errors(srv):
    c = device_client(srv.url)
    records = make_records(DEMO_DEVICE_ID, 1)
    for faults, code in ((Faults(status=503), "server_error"), (Faults(garbage=True), "malformed"), (Faults(latency_s=1.0), "timeout")):
        srv.fault_state.set(faults)
        with pytest.raises(ClientError) as caught:
            c.upload_records(records, timeout_s=0.5)
        assert caught.value.code == code
    c.close()


def test_list_records_follows_the_pages(srv):
    token = bind_new_device(srv, "client-test-pager")
    c = device_client(srv.url, token, device_id="client-test-pager")
    start = datetime(2030, 5, 1, 8, 0, tzinfo=UTC)
    records = make_records("client-test-pager", 7, at=start)
    assert c.upload_records(records) == [r["id"] for r in records]
    pages = []
    c._session.hooks["response"].append(lambda r, *a, **k: pages.append(r.url) if "/v1/records" in r.url else None)
    everything = c.list_records(limit=3)
    assert [r["id"] for r in everything] == [r["id"] for r in records]
    assert len(pages) == 3  # 3 + 3 + 1
    assert everything[0]["received_at"] and everything[0]["credential_hash"] == records[0]["credential_hash"]
    pages.clear()
    assert [r["id"] for r in c.list_records(limit=7)] == [r["id"] for r in records]
    assert len(pages) == 2  # a full last page is followed by an empty one
    # `since` with a zone offset: the '+' must reach the service encoded
    since = (start + timedelta(seconds=4)).astimezone(timezone(timedelta(hours=8))).isoformat()
    assert "+08:00" in since
    assert [r["id"] for r in c.list_records(since=since, limit=2)] == [r["id"] for r in records[4:]]
    c.close()


def test_heartbeat_reaches_the_service(srv, client):
    client.heartbeat(Heartbeat(version="0.1.0", queue_depth=3, oldest_record_age_s=42.5, camera="ok", gate="closed"))
    device = admin(srv, "GET", f"/admin/devices/{DEMO_DEVICE_ID}").json()
    assert device["last_heartbeat"]["queue_depth"] == 3 and device["last_heartbeat"]["camera"] == "ok"


# --- faults: verify returns by its deadline, with a status that says what happened ----------


@contextmanager
def tcp_server(handle: Callable[[socket.socket, threading.Event], None]) -> Iterator[str]:
    """A raw loopback TCP server, its http:// URL yielded: each connection goes to `handle(conn,
    stop)` on a thread of its own; `stop` is set when the server closes."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=handle, args=(conn, stop), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=2)
        listener.close()


@pytest.fixture(scope="module")
def silent_server():
    """Accepts TCP connections and never says a word: a hung backend or a black-holing middlebox."""
    held: list[socket.socket] = []
    with tcp_server(lambda conn, _stop: held.append(conn)) as url:  # keep it open, read nothing, answer nothing
        yield url
    for conn in held:
        conn.close()


@pytest.fixture(scope="module")
def closed_port():
    """A loopback port nobody listens on: connection refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _trickling_server(what: str):
    """Answers a valid 200, one byte every 0.1 s: `what` = "head" drips from the status line on,
    "body" sends the headers at once and drips the body. Every read returns well within any read
    timeout, so only an overall deadline ends the call (a slow link, or a slowloris middlebox)."""
    body = json.dumps(GREEN_ANSWER).encode()
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)

    def answer(conn: socket.socket, stop: threading.Event) -> None:
        with conn:
            try:
                conn.recv(65536)
                data = head + body
                if what == "body":
                    conn.sendall(head)
                    data = body
                for byte in data:
                    if stop.wait(0.1):
                        return
                    conn.sendall(bytes([byte]))
            except OSError:
                pass  # the client hung up: what a deadline does

    with tcp_server(answer) as url:
        yield url


@pytest.fixture(scope="module")
def trickling_head_server():
    yield from _trickling_server("head")


@pytest.fixture(scope="module")
def trickling_body_server():
    yield from _trickling_server("body")


@dataclass(frozen=True)
class Scenario:
    faults: Faults | None  # set on the reference server; None: `where` names another endpoint
    status: Status
    detail: tuple[str, ...]  # words the detail must contain
    where: str = "srv"  # srv, or the fixture giving another endpoint's URL
    min_s: float = 0.0  # the fault really happened: it cannot have been faster than this


SCENARIOS = {
    "latency-beyond-deadline": Scenario(Faults(latency_s=1.5), Status.TIMEOUT, ("no answer within 0.5 s",), min_s=DEADLINE_S - 0.05),
    "latency-within-deadline": Scenario(Faults(latency_s=0.1), Status.GREEN, (), min_s=0.1),
    "status-503": Scenario(Faults(status=503), Status.TIMEOUT, ("server_error", "HTTP 503")),  # unavailable: offline
    "error-rate-1": Scenario(Faults(error_rate=1.0), Status.VERIFY_FAILED, ("server_error", "HTTP 500")),
    "garbage": Scenario(Faults(garbage=True), Status.VERIFY_FAILED, ("malformed", "not JSON")),
    "oversized": Scenario(Faults(oversized_bytes=DEFAULT_OVERSIZED_BYTES), Status.VERIFY_FAILED, ("oversized", "limit")),
    "oversized-100k": Scenario(Faults(oversized_bytes=100_000), Status.VERIFY_FAILED, ("oversized", "limit")),
    "drop": Scenario(Faults(drop=True), Status.TIMEOUT, ("connection", "dropped")),  # a network fault: offline
    "never-answers": Scenario(None, Status.TIMEOUT, ("no answer within 0.5 s",), where="silent_server", min_s=DEADLINE_S - 0.05),
    "connection-refused": Scenario(None, Status.TIMEOUT, ("connection", "cannot reach"), where="closed_port"),  # offline
    "trickled-headers": Scenario(None, Status.TIMEOUT, ("no answer within 0.5 s",), where="trickling_head_server", min_s=DEADLINE_S - 0.05),
    "trickled-body": Scenario(None, Status.TIMEOUT, ("no answer within 0.5 s",), where="trickling_body_server", min_s=DEADLINE_S - 0.05),
}


@pytest.fixture(params=list(SCENARIOS), ids=list(SCENARIOS))
def scenario(request, srv):
    """(scenario, base URL) with the fault in place."""
    s = SCENARIOS[request.param]
    if s.faults is not None:
        srv.fault_state.set(s.faults)
    return s, srv.url if s.where == "srv" else request.getfixturevalue(s.where)


def test_verify_returns_by_its_deadline_under_every_fault(scenario, srv):
    s, url = scenario
    c = device_client(url)
    status, elapsed = timed_verify(c, health_code(GREEN.token))
    assert elapsed < DEADLINE_S + SLACK_S, f"verify took {elapsed:.3f} s"
    assert elapsed >= s.min_s
    assert status.status == s.status, status.detail
    for word in s.detail:
        assert word in status.detail
    if s.status.is_unreachable:
        assert status.person is None
    # the same client (same Session, same pool) is fine again once the fault is gone
    if s.where == "srv":
        srv.fault_state.set(Faults())
        again, _ = timed_verify(c, health_code(GREEN.token))
        assert again.status == Status.GREEN  # green only comes back within the deadline
    c.close()


@pytest.fixture(scope="module")
def decoder():
    d = make_decoder(["zxing-cpp", "pyzbar"])
    d.decode(qr_frame(GREEN.payload).grey)  # warm up: the first call loads the libraries
    return d


def test_pipeline_verdict_by_the_deadline_under_every_fault(scenario, decoder, tmp_path):
    """The kiosk loop on real QR frames, real threads and real time, with the real client."""
    s, url = scenario
    c = device_client(url)
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    gate = FakeGate(pulse_s=0.2)
    outcomes = []
    pipeline = Pipeline(
        decoder=decoder,
        rules=CredentialRules(CredentialConfig()),
        verifier=c,
        policy=PolicyConfig(offline="deny"),
        records=RecordMaker(DEMO_DEVICE_ID, DEMO_SITE.id, RECORD_KEY),
        outbox=outbox,
        gate=gate,
        display=ConsoleDisplay(),
        language="en",
        deadline_s=DEADLINE_S,
        result_s=1.0,
        executor=None,
        on_outcome=lambda outcome: outcomes.append((time.monotonic(), outcome)),
    )
    frames = [qr_frame(GREEN.payload, seq) for seq in range(1, 200)]  # the person holds the phone up
    try:
        shown_at = time.monotonic()
        pipeline.step(frames[0])
        frames_while_checking = 0
        i = 1
        while time.monotonic() - shown_at < DEADLINE_S + 1.0 and (not outcomes or i < 30):
            if pipeline.state == State.CHECKING:
                frames_while_checking += 1
            pipeline.step(frames[i])
            i += 1
            time.sleep(0.02)
        assert outcomes, "no verdict at all"
        assert len(outcomes) == 1  # the code held up is one check
        verdict_at, outcome = outcomes[0]
        assert verdict_at - shown_at < DEADLINE_S + SLACK_S, f"verdict after {verdict_at - shown_at:.3f} s"
        assert pipeline.frames_seen == i  # every frame was taken, during the check and after it
        if verdict_at - shown_at > 0.2:
            # a slow check: the loop kept consuming frames (about one per 20 ms) while it waited
            assert frames_while_checking >= (verdict_at - shown_at) / 0.15
        (row,) = outbox.pending()
        if s.status.is_unreachable:
            assert (outcome.status, outcome.offline) == (s.status.value, True)
            assert (outcome.verdict.kind, outcome.verdict.reason) == (VerdictKind.DENY, "offline_denied")
            assert (row["status"], row["mode"], row["verdict"]) == (s.status.value, "offline", "deny")
            assert gate.pulses == []
        elif s.status == Status.VERIFY_FAILED:  # an answer the device does not understand: staff check, never offline
            assert (outcome.status, outcome.offline, outcome.verdict.reason) == ("verify_failed", False, "verify_failed")
            assert (row["status"], row["mode"], row["verdict"]) == ("verify_failed", "online", "manual_check")
            assert gate.pulses == []
        else:
            assert (outcome.status, outcome.offline, outcome.verdict.kind) == ("green", False, VerdictKind.PASS)
            assert (row["status"], row["mode"], row["verdict"]) == ("green", "online", "pass")
            assert len(gate.pulses) == 1
    finally:
        pipeline.close()
        c.close()
        outbox.close()

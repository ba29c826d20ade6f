"""Fail closed: a gate opens only on an answer the device understands and trusts.

The audit found answers that let people in: a status the policy did not know passed; a 401 from a
gateway, a 5xx, a TLS failure or a redirect counted as "offline", so a site with
`offline = "allow_and_flag"` let everyone in; a redirect was followed (the raw token went out in
clear text, to another host); an environment variable replaced the trust store; a plain-http URL
to another machine was accepted; a naive timestamp crashed the policy. Each case here runs against
a real HTTP(S) server on loopback and the real client, policy, pipeline and outbox.

The rule they check: only "the service could not be reached in time" (no connection, the deadline,
HTTP 429/502/503/504) is `timeout`, for the offline policy. Everything else the device does not
understand is `verify_failed`: a staff check, with a `status_detail` code in the record and the log.
"""

from __future__ import annotations

import itertools
import json
import logging
import shutil
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from hardware.gate import FakeGate
from sentinel.binding import BindError, request_binding
from sentinel.client import MAX_ANSWER_BYTES, ClientError, ServiceClient
from sentinel.commands import check_config
from sentinel.config import ConfigError, CredentialConfig, HttpVerifierConfig, PolicyConfig, load_config, parse_config
from sentinel.contract import Heartbeat
from sentinel.credentials import Credential, CredentialKind, CredentialRules
from sentinel.demo_data import demo_person
from sentinel.health import HealthStatus, Nat, NatResult, Person, Status, Vaccination
from sentinel.outbox import Outbox
from sentinel.pipeline import Pipeline
from sentinel.policy import CachedStatus, VerdictKind, decide
from sentinel.records import RecordMaker
from sentinel.service.seed import DEMO_DEVICE_ID, DEMO_DEVICE_TOKEN, DEMO_SITE
from sentinel.service.server import ReferenceServer
from tests.helpers import T0, FakeClock, InlineExecutor
from ui.console import ConsoleDisplay

GREEN = demo_person("green")
CODE = Credential(CredentialKind.HEALTH_CODE, GREEN.token)
ALLOW_AND_FLAG = PolicyConfig(offline="allow_and_flag")
#: generous: these tests are about what the answer means, not about time
TIMEOUT_S = 5.0
ROOT = Path(__file__).resolve().parents[1]


# --- 1. the policy: nothing but an allowed colour passes online ---------------------------------


def _health(status: Status, nat: str | None, doses: int = 3) -> HealthStatus:
    person = Person(name_masked="王*明", id_masked="1101**********002X") if status.is_colour else None
    nat_model = None
    if nat == "fresh":
        nat_model = Nat(result=NatResult.NEGATIVE, sampled_at=T0 - timedelta(hours=2))
    elif nat == "old":
        nat_model = Nat(result=NatResult.NEGATIVE, sampled_at=T0 - timedelta(hours=100))
    elif nat == "positive":
        nat_model = Nat(result=NatResult.POSITIVE, sampled_at=T0 - timedelta(hours=2))
    return HealthStatus(status=status, person=person, nat=nat_model, antigen=NatResult.NEGATIVE, vaccination=Vaccination(doses=doses))


POLICIES = [
    PolicyConfig(
        allowed_colours=colours, yellow=yellow, offline=offline, nat_window_h=window, antigen_accepted=antigen, min_vaccination_doses=doses
    )
    for colours, yellow, offline, window, antigen, doses in itertools.product(
        (["green"], ["yellow"], ["green", "yellow"]),
        ("deny", "manual_check"),
        ("deny", "allow_and_flag", "cached"),
        ("none", 24, 48, 72),
        (False, True),
        (0, 2),
    )
]


@pytest.mark.parametrize("status", list(Status), ids=str)
def test_no_status_but_an_allowed_colour_ever_passes(status):
    """Every status × every policy variant × NAT fresh/old/missing/positive × with and without a
    cached status: a pass is an allowed colour online, or `timeout` under the offline policy."""
    cached_options = [None] + [CachedStatus(_health(s, "fresh"), seen_at=T0 - timedelta(minutes=5)) for s in Status]
    for policy, nat, cached in itertools.product(POLICIES, ("fresh", "old", None, "positive"), cached_options):
        verdict = decide(_health(status, nat), policy, T0, cached)
        if status is Status.VERIFY_FAILED:  # never the offline policy, whatever the site says
            assert (verdict.kind, verdict.reason) == (VerdictKind.MANUAL_CHECK, "verify_failed"), policy
        if status is not Status.TIMEOUT:
            assert not verdict.reason.startswith("offline"), (status, policy, verdict)
        if verdict.kind != VerdictKind.PASS:
            continue
        if status is Status.TIMEOUT:
            # the one designed exception: the offline policy, or a fresh cached allowed colour
            assert policy.offline in ("allow_and_flag", "cached"), (policy, verdict)
            if policy.offline == "cached":
                assert cached is not None and cached.status.status.value in policy.allowed_colours, (policy, cached)
        else:
            assert status.value in policy.allowed_colours, (status, policy, verdict)


@pytest.mark.parametrize("unknown", ["purple", "orange", "GREEN", "Green", " green", "ok", "pass", "", "timeout "])
@pytest.mark.parametrize("policy", [ALLOW_AND_FLAG, PolicyConfig(allowed_colours=["green", "yellow"], offline="cached")])
def test_a_status_the_policy_does_not_know_is_a_staff_check(unknown, policy):
    """A status that is not in the contract (a newer service, a bug, a model built without
    validation) is never a pass and never the offline policy."""
    status = HealthStatus.model_construct(status=unknown, person=None, nat=None, antigen=None, vaccination=None)
    verdict = decide(status, policy, T0)
    assert (verdict.kind, verdict.reason) == (VerdictKind.MANUAL_CHECK, "verify_failed")


# --- real servers on loopback ---------------------------------------------------------------------


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})


def json_answer(status: int, body, **headers) -> Answer:
    return Answer(status, json.dumps(body).encode() if not isinstance(body, bytes) else body, {"Content-Type": "application/json", **headers})


class CannedServer:
    """Answers every request with `answer` (settable per test) and notes what it was asked."""

    def __init__(self, tls: ssl.SSLContext | None = None):
        self.answer = Answer()
        self.seen: list[tuple[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _reply(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
                outer.seen.append((self.command, self.path))
                a = outer.answer
                self.send_response(a.status)
                for name, value in a.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(a.body)))
                self.end_headers()
                self.wfile.write(a.body)

            do_GET = do_POST = do_PUT = _reply  # noqa: N815 - http.server's naming

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def reset(self) -> None:
        self.answer = Answer()
        self.seen.clear()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass(frozen=True)
class Cert:
    cert: Path
    key: Path

    def context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context


def _make_cert(folder: Path, name: str, san: str) -> Cert:
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
         "-subj", f"/CN={name}", "-addext", f"subjectAltName={san}", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return Cert(cert, key)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """Self-signed certificates: one for 127.0.0.1, one for another host name."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make test certificates")
    d = tmp_path_factory.mktemp("certs")
    return {"loopback": _make_cert(d, "loopback", "IP:127.0.0.1"), "other_host": _make_cert(d, "other-host", "DNS:other.example")}


def _server_fixture(tls_name: str | None):
    @pytest.fixture(scope="module")
    def fixture(request):
        tls = request.getfixturevalue("certs")[tls_name].context() if tls_name else None
        server = CannedServer(tls)
        yield server
        server.close()

    return fixture


canned = _server_fixture(None)
target = _server_fixture(None)  # where redirects point: must never be asked anything
canned_tls = _server_fixture("loopback")
canned_other_host = _server_fixture("other_host")


@pytest.fixture(autouse=True)
def _fresh_servers(request):
    for name in ("canned", "target", "canned_tls", "canned_other_host"):
        if name in request.fixturenames:
            request.getfixturevalue(name).reset()


@pytest.fixture(autouse=True)
def _no_environment_ca_bundle(monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


def client_for(url: str, **kw) -> ServiceClient:
    return ServiceClient(url, DEMO_DEVICE_TOKEN, device_id=DEMO_DEVICE_ID, site_id=DEMO_SITE.id, **kw)


def verify(url: str, **kw) -> HealthStatus:
    c = client_for(url, **kw)
    try:
        return c.verify(CODE, timeout_s=TIMEOUT_S)
    finally:
        c.close()


GOOD = {"status": "green", "person": {"name_masked": "王*明", "id_masked": "1101**********002X"},
        "nat": {"result": "negative", "sampled_at": "2026-11-25T06:00:00Z"}, "checked_at": "2026-11-25T08:00:00Z"}  # fmt: skip


def test_the_canned_server_gives_a_pass_when_it_answers_green(canned):
    """The control for everything below: the same server and client, a contract answer."""
    canned.answer = json_answer(200, GOOD)
    status = verify(canned.url)
    assert status.status == Status.GREEN and status.status_detail == ""
    assert decide(status, ALLOW_AND_FLAG, T0).kind == VerdictKind.PASS


# --- 2. unexpected HTTP answers are staff checks, never "offline" ---------------------------------

HTML = b"<html><body><h1>401 Authorization Required</h1><hr>nginx</body></html>"

UNEXPECTED = {
    "401-gateway-json": (json_answer(401, {"message": "Unauthorized"}), "http_401"),
    "401-html": (Answer(401, HTML, {"Content-Type": "text/html"}), "http_401"),
    "403-html": (Answer(403, HTML, {"Content-Type": "text/html"}), "http_403"),
    "401-unknown-error-code": (json_answer(401, {"error": "session_expired", "message": "log in again"}), "http_401"),
    "403-contract-code-with-the-wrong-status": (json_answer(403, {"error": "token_revoked"}), "http_403"),
    "401-non-ascii-error-code": (json_answer(401, {"error": "unauthorızed"}), "http_401"),
    "400": (json_answer(400, {"error": "bad"}), "http_400"),
    "404": (Answer(404, b"not here", {"Content-Type": "text/plain"}), "http_404"),
    "500": (json_answer(500, {"error": "server_error"}), "http_500"),
    "501": (Answer(501, b""), "http_501"),
    "204": (Answer(204, b""), "http_204"),
    "202-good-body": (json_answer(202, GOOD), "http_202"),
    "200-html": (Answer(200, HTML, {"Content-Type": "text/html"}), "not_json"),
    "200-too-large": (json_answer(200, b" " * (MAX_ANSWER_BYTES + 1)), "too_large"),
    "200-not-its-content-encoding": (Answer(200, b'{"status": "green"}', {"Content-Type": "application/json", "Content-Encoding": "gzip"}), "protocol"),
    "200-status-timeout": (json_answer(200, {"status": "timeout"}), "unknown_status"),
    "200-status-verify_failed": (json_answer(200, {"status": "verify_failed"}), "unknown_status"),
    "200-status-device_unauthorized": (json_answer(200, {"status": "device_unauthorized"}), "unknown_status"),
    "200-status-unknown": (json_answer(200, {**GOOD, "status": "blue"}), "unknown_status"),
    "200-status-not-a-string": (json_answer(200, {**GOOD, "status": 1}), "unknown_status"),
    "200-no-status": (json_answer(200, {"person": None}), "schema"),
    "200-extra-field": (json_answer(200, {**GOOD, "admit": True}), "schema"),
    "200-sets-status_detail": (json_answer(200, {**GOOD, "status_detail": "deadline"}), "schema"),
    "200-a-list": (json_answer(200, [GOOD]), "schema"),
}


@pytest.mark.parametrize("case", list(UNEXPECTED), ids=list(UNEXPECTED))
def test_an_unexpected_answer_is_a_staff_check_not_offline(canned, case, caplog):
    answer, reason = UNEXPECTED[case]
    canned.answer = answer
    caplog.set_level(logging.INFO, logger="sentinel.client")
    status = verify(canned.url)
    assert (status.status, status.status_detail) == (Status.VERIFY_FAILED, reason), status.detail
    assert not status.status.is_unreachable and status.person is None
    for policy in (ALLOW_AND_FLAG, PolicyConfig(offline="cached"), PolicyConfig(allowed_colours=["green", "yellow"])):
        verdict = decide(status, policy, T0)
        assert (verdict.kind, verdict.reason) == (VerdictKind.MANUAL_CHECK, "verify_failed")
    assert len(canned.seen) == 1  # not retried: another try would not make it understandable
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "sentinel.client"]
    assert warnings and reason in warnings[-1].getMessage()


@pytest.mark.parametrize("code", [429, 502, 503, 504])
def test_only_an_unavailable_service_is_offline(canned, code):
    canned.answer = Answer(code, HTML, {"Content-Type": "text/html"})
    status = verify(canned.url)
    assert (status.status, status.status_detail) == (Status.TIMEOUT, f"http_{code}")
    assert decide(status, ALLOW_AND_FLAG, T0).reason == "offline_allowed"  # the site's choice for an outage
    assert decide(status, PolicyConfig(offline="deny"), T0).reason == "offline_denied"
    assert len(canned.seen) == (1 if code == 429 else 2)  # 502/503/504 retried once within the deadline


def test_a_closed_port_is_offline():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    status = verify(f"http://127.0.0.1:{port}")
    assert (status.status, status.status_detail) == (Status.TIMEOUT, "connection")


@pytest.mark.parametrize(("code", "error"), [(401, "unauthorized"), (401, "token_revoked"), (403, "wrong_site"), (403, "wrong_device")])
def test_the_contracts_device_errors_keep_their_meaning(canned, code, error):
    canned.answer = json_answer(code, {"error": error, "message": "m"})
    status = verify(canned.url)
    assert (status.status, status.status_detail) == (Status.DEVICE_UNAUTHORIZED, error)
    assert decide(status, ALLOW_AND_FLAG, T0).reason == "device_unauthorized"


# --- 3. redirects are never followed ---------------------------------------------------------------


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("origin", ["canned", "canned_tls"])
def test_a_redirect_is_never_followed_and_is_a_staff_check(request, certs, target, code, origin, caplog):
    """https → http to another port (another host, as far as a URL goes): the token and the
    credential must never reach it."""
    server = request.getfixturevalue(origin)
    server.reset()  # a module's server, asked for by name: not reset by _fresh_servers
    evil = "\x1b[31m\x9b2J\x7fé" + "x" * 200  # terminal escapes, not UTF-8, long: never raw in a log
    server.answer = Answer(code, b"", {"Location": f"{target.url}/v1/verify?{evil}"})
    caplog.set_level(logging.INFO, logger="sentinel.client")
    status = verify(server.url, ca_bundle=certs["loopback"].cert if origin == "canned_tls" else None)
    assert (status.status, status.status_detail) == (Status.VERIFY_FAILED, "redirect")
    assert decide(status, ALLOW_AND_FLAG, T0).kind == VerdictKind.MANUAL_CHECK
    assert len(server.seen) == 1 and target.seen == []
    (line,) = [r.getMessage() for r in caplog.records if "redirect" in r.getMessage()]
    assert line.isascii() and line.isprintable() and "\x1b" not in line and len(line) < 400


def test_no_client_call_follows_a_redirect(canned, target):
    canned.answer = Answer(307, b"", {"Location": f"{target.url}/elsewhere"})
    c = client_for(canned.url)
    try:
        calls = {
            "upload_records": lambda: c.upload_records([], timeout_s=TIMEOUT_S),
            "list_records": lambda: c.list_records(timeout_s=TIMEOUT_S),
            "heartbeat": lambda: c.heartbeat(Heartbeat(version="0", queue_depth=0), timeout_s=TIMEOUT_S),
            "faces": lambda: c.faces(timeout_s=TIMEOUT_S),
        }
        for name, call in calls.items():
            with pytest.raises(ClientError) as caught:
                call()
            assert caught.value.code == "redirect", name
    finally:
        c.close()
    assert len(canned.seen) == 4 and target.seen == []


# --- 4. TLS failures are loud staff checks --------------------------------------------------------


@pytest.mark.parametrize(
    ("server", "bundle", "words"),
    [("canned_tls", None, "certificate not trusted"), ("canned_other_host", "other_host", "another host name")],
    ids=["untrusted", "wrong-host-name"],
)
def test_a_tls_failure_is_a_staff_check_logged_as_an_error(request, certs, server, bundle, words, caplog):
    s = request.getfixturevalue(server)
    s.reset()  # a module's server, asked for by name: not reset by _fresh_servers
    s.answer = json_answer(200, GOOD)  # it would say green, if it were trusted
    caplog.set_level(logging.INFO, logger="sentinel.client")
    status = verify(s.url, ca_bundle=certs[bundle].cert if bundle else None)
    assert (status.status, status.status_detail) == (Status.VERIFY_FAILED, "tls")
    assert words in status.detail
    for policy in (ALLOW_AND_FLAG, PolicyConfig(offline="cached")):
        assert decide(status, policy, T0).kind == VerdictKind.MANUAL_CHECK
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "tls" in errors[0] and words in errors[0]
    assert s.seen == []  # nothing was sent over the untrusted connection


def test_the_trusted_case_passes(canned_tls, certs):
    canned_tls.answer = json_answer(200, GOOD)
    assert verify(canned_tls.url, ca_bundle=certs["loopback"].cert).status == Status.GREEN


# --- 5. the environment never changes what TLS trusts -------------------------------------------


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_an_environment_ca_bundle_does_not_replace_the_trust_store(canned_tls, certs, monkeypatch, variable):
    """An image or a login shell that sets REQUESTS_CA_BUNDLE to a bundle holding an attacker's
    (here: the test server's) certificate must not make the device trust it."""
    canned_tls.answer = json_answer(200, GOOD)
    monkeypatch.setenv(variable, str(certs["loopback"].cert))
    status = verify(canned_tls.url)
    assert (status.status, status.status_detail) == (Status.VERIFY_FAILED, "tls")
    assert canned_tls.seen == []
    with pytest.raises(BindError, match="TLS verification failed"):  # nor the bind call
        request_binding(canned_tls.url, "ABCDE-FGHIJ", "gate-1", timeout_s=TIMEOUT_S)
    # the configured bundle still decides, whatever the environment says
    monkeypatch.setenv(variable, str(certs["other_host"].cert))
    assert verify(canned_tls.url, ca_bundle=certs["loopback"].cert).status == Status.GREEN


# --- 6. plain http only to this machine ----------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://health.example", True),
        ("http://127.0.0.1:8000", True),
        ("http://127.1.2.3:8000", True),
        ("http://[::1]:8000", True),
        ("http://localhost:8000", True),
        ("http://10.0.0.5:8000", False),
        ("http://health.example", False),
        ("http://127.0.0.1.evil.example", False),
        ("http://localhost@evil.example", False),
        ("http://[::ffff:10.0.0.5]", False),
    ],
)
def test_plain_http_is_refused_except_to_this_machine(url, ok):
    data = {"verifier": {"type": "http", "url": url}}
    if ok:
        assert parse_config(data).verifier.url == url
    else:
        with pytest.raises(ConfigError) as caught:
            parse_config(data)
        (problem,) = caught.value.problems
        assert problem.startswith(f"verifier.url: bad value {url!r}")
        assert "https://" in problem and "allow_insecure_http" in problem
        insecure = parse_config({"verifier": {**data["verifier"], "allow_insecure_http": True}})
        assert insecure.verifier.url == url


def test_the_insecure_setting_is_named_and_off_by_default():
    f = HttpVerifierConfig.model_fields["allow_insecure_http"]
    assert f.default is False and "INSECURE" in f.title and "unencrypted" in f.description
    assert load_config(ROOT / "config" / "default.toml").verifier.allow_insecure_http is False
    for name in ("default.toml", "pillar.toml", "handheld.toml"):
        load_config(ROOT / "config" / name)  # the shipped configs still validate


def _write(tmp_path: Path, url: str, extra: str = "") -> Path:
    path = tmp_path / "sentinel.toml"
    path.write_text(f'[verifier]\ntype = "http"\nurl = "{url}"\n{extra}')
    return path


def test_check_config_reports_plain_http_as_an_error_line(tmp_path, capsys):
    import argparse

    path = _write(tmp_path, "http://192.168.1.20:8000")
    assert check_config.run(argparse.Namespace(file=str(path))) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"{path}: verifier.url: bad value 'http://192.168.1.20:8000'; ") and "expected https://" in err[0]

    path = _write(tmp_path, "http://192.168.1.20:8000", "allow_insecure_http = true\n")
    assert check_config.run(argparse.Namespace(file=str(path))) == 0
    out = capsys.readouterr()
    assert ": ok (" in out.out and "warning: verifier.allow_insecure_http = true" in out.err


def test_doctor_warns_while_the_insecure_setting_is_on(tmp_path):
    from sentinel.commands.doctor import PASS, WARN, Doctor

    token_file = tmp_path / "device-token"
    token_file.write_text(DEMO_DEVICE_TOKEN + "\n")
    with ReferenceServer(tmp_path / "svc.db", seed="demo") as srv:
        for extra, expected in (("", PASS), ("allow_insecure_http = true\n", WARN)):
            config = tmp_path / "sentinel.toml"
            config.write_text(
                f'[device]\nid = "{DEMO_DEVICE_ID}"\nsite_id = "{DEMO_SITE.id}"\nstate_dir = "{tmp_path / "state"}"\n'
                f'[verifier]\ntype = "http"\nurl = "{srv.url}"\ntoken_file = "{token_file}"\n{extra}'
            )
            d = Doctor(config, command=lambda argv: (127, "not here"), env={})
            assert d.check_config()[0] == PASS
            status, message, *hint = d.check_network()
            assert status == expected, message
            if expected == WARN:
                assert "allow_insecure_http" in message and "unencrypted" in message and hint


# --- 8. malformed time --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        {**GOOD, "nat": {"result": "negative", "sampled_at": "2026-11-25T06:00:00"}},
        {**GOOD, "checked_at": "2026-11-25T08:00:00"},
        {**GOOD, "nat": {"result": "negative", "sampled_at": "yesterday"}},
    ],
    ids=["naive-sampled_at", "naive-checked_at", "not-a-time"],
)
def test_a_time_without_a_zone_is_a_staff_check_not_a_crash(canned, answer, tmp_path):
    canned.answer = json_answer(200, answer)
    status = verify(canned.url)
    assert (status.status, status.status_detail) == (Status.VERIFY_FAILED, "schema")
    # and through the kiosk loop, with a NAT window that compares the time with the clock
    k = KioskLoop(tmp_path, canned.url, PolicyConfig(nat_window_h=48, offline="allow_and_flag"))
    try:
        row = k.check(GREEN.payload)
    finally:
        k.close()
    assert (row["status"], row["verdict"], row["reason"], row["mode"]) == ("verify_failed", "manual_check", "verify_failed", "online")
    assert k.gate.pulses == []


# --- 9. the record and the log say why ------------------------------------------------------------


class KioskLoop:
    """The pipeline with the real client, rules, records and outbox; inline, with a fake clock."""

    def __init__(self, tmp_path: Path, url: str, policy: PolicyConfig = ALLOW_AND_FLAG):
        self.client = client_for(url)
        self.outbox = Outbox(tmp_path / "outbox.sqlite3", wall=lambda: T0)
        self.clock = FakeClock()
        self.gate = FakeGate(pulse_s=1.0, clock=self.clock)
        self.outcomes = []
        self.pipeline = Pipeline(
            decoder=None,
            rules=CredentialRules(CredentialConfig()),
            verifier=self.client,
            policy=policy,
            records=RecordMaker(DEMO_DEVICE_ID, DEMO_SITE.id, b"fail-closed-test-record-key-32b!"),
            outbox=self.outbox,
            gate=self.gate,
            display=ConsoleDisplay(),
            language="en",
            deadline_s=TIMEOUT_S,
            clock=self.clock,
            wall=lambda: T0,
            executor=InlineExecutor(),
            on_outcome=self.outcomes.append,
        )

    def check(self, payload: str) -> dict:
        self.pipeline.offer_payload(payload)
        self.pipeline.step(None)
        (row,) = self.outbox.pending()
        return row

    def close(self) -> None:
        self.pipeline.close()
        self.client.close()
        self.outbox.close()


@pytest.mark.parametrize(
    ("answer", "status", "reason", "mode"),
    [
        (json_answer(401, {"message": "Unauthorized"}), "verify_failed", "http_401", "online"),
        (json_answer(200, {"status": "timeout"}), "verify_failed", "unknown_status", "online"),
        (Answer(200, HTML, {"Content-Type": "text/html"}), "verify_failed", "not_json", "online"),
        (Answer(503, b""), "timeout", "http_503", "offline"),
    ],
    ids=["401", "service-says-timeout", "not-json", "503"],
)
def test_the_record_and_the_log_carry_the_reason(canned, tmp_path, caplog, answer, status, reason, mode):
    canned.answer = answer
    caplog.set_level(logging.INFO)
    k = KioskLoop(tmp_path, canned.url)
    try:
        row = k.check(GREEN.payload)
    finally:
        k.close()
    assert (row["status"], row["mode"], row["extra"]["status_detail"]) == (status, mode, reason)
    if status == "verify_failed":
        assert (row["verdict"], row["reason"]) == ("manual_check", "verify_failed") and k.gate.pulses == []
        (line,) = [r for r in caplog.records if r.name == "sentinel.client" and r.levelno == logging.WARNING]
        assert reason in line.getMessage()
    else:
        assert (row["verdict"], row["reason"]) == ("pass", "offline_allowed")  # an outage, under allow_and_flag
    assert GREEN.token not in caplog.text and GREEN.token not in json.dumps(row)


def test_a_record_with_a_reason_is_accepted_by_the_reference_service(canned, tmp_path):
    canned.answer = json_answer(403, {"error": "geo_blocked"})
    k = KioskLoop(tmp_path, canned.url)
    try:
        row = k.check(GREEN.payload)
    finally:
        k.close()
    assert {k: v for k, v in row["extra"].items() if k != "latency_ms"} == {"status_detail": "http_403"}
    with ReferenceServer(tmp_path / "svc.db", seed="demo") as srv:
        c = client_for(srv.url)
        try:
            assert c.upload_records([row], timeout_s=TIMEOUT_S) == [row["id"]]
            (stored,) = c.list_records(timeout_s=TIMEOUT_S)
        finally:
            c.close()
    assert stored["extra"] == row["extra"] and stored["status"] == "verify_failed"  # the reason (and the latency) kept

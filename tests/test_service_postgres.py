"""Several service processes on one PostgreSQL database (issue 21): what must hold across them is
held by the database, not by a lock in one process. Two real `sentinel service` processes share a
throwaway PostgreSQL server (tests/postgres.py; skipped with the reason when it is not installed):
the same records uploaded to both at once are stored once, a binding code used on both at once
binds one device, and guessing binding codes is locked out by failures counted across both.
Two stores in one process race the same way, many threads at a time, without HTTP in between.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import requests

from sentinel.contract import RecordIn
from sentinel.demo_data import demo_person
from sentinel.service.limits import Buckets, Limits, LimitSettings, Rate
from sentinel.service.seed import DEMO_DEVICE_ID, DEMO_DEVICE_TOKEN, DEMO_SITE, SEEDS
from sentinel.service.server import ReferenceServer
from sentinel.service.store import BindError, PostgresStore, Store
from sentinel.service.store.schema import LATEST
from tests.postgres import free_port, stop_processes
from tests.test_service import bearer, record

ADMIN = "adm_postgres-test-token-000000000000000000"
TIMEOUT = 10


def _start(db: str, token_file, *extra: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sentinel", "service", "--port", str(port), "--db", db, "--admin-token-file", str(token_file), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60  # a busy machine (or an emulated arm64 one) starts it slowly
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"service exited {proc.returncode}: {proc.stdout.read()}")
        try:
            if requests.get(url + "/healthz", timeout=5).ok:
                return proc, url
        except (requests.ConnectionError, requests.Timeout):  # not listening yet, or too slow to answer yet
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("service did not answer within 60 s")


@pytest.fixture
def two_services(postgres_url, tmp_path):
    token_file = tmp_path / "admin-token"
    token_file.write_text(ADMIN + "\n")
    token_file.chmod(0o600)
    procs = []
    try:
        first, first_url = _start(postgres_url, token_file, "--seed", "demo")
        procs.append(first)
        second, second_url = _start(postgres_url, token_file)  # no seed: it would issue the demo code again
        procs.append(second)
        yield first_url, second_url
    finally:
        stop_processes(procs)


def test_a_batch_uploaded_to_two_processes_at_once_is_stored_once(two_services):
    urls = two_services
    batch = [record() for _ in range(50)]
    barrier = threading.Barrier(4)

    def upload(url):
        barrier.wait()
        return requests.post(f"{url}/v1/records", json={"records": batch}, headers=bearer(DEMO_DEVICE_TOKEN), timeout=TIMEOUT)

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(upload, [*urls, *urls]))
    ids = sorted(r["id"] for r in batch)
    for answer in answers:  # every attempt hears "accepted": a device retrying never sees an error
        assert answer.status_code == 200, answer.text
        assert sorted(answer.json()["accepted"]) == ids
    for url in urls:
        listed = requests.get(f"{url}/v1/records?limit=500", headers=bearer(ADMIN), timeout=TIMEOUT).json()["records"]
        assert sorted(r["id"] for r in listed) == ids  # once each, seen alike from both processes


def test_a_binding_code_used_on_two_processes_at_once_binds_one_device(two_services):
    first, second = two_services
    code = requests.post(f"{first}/admin/sites/{DEMO_SITE.id}/binding-codes", headers=bearer(ADMIN), timeout=TIMEOUT).json()["code"]
    barrier = threading.Barrier(2)

    def bind(url, device_id):
        barrier.wait()
        return requests.post(f"{url}/v1/devices/bind", json={"code": code, "device_id": device_id}, timeout=TIMEOUT)

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(bind, [first, second], ["gate-a", "gate-b"]))
    assert sorted(a.status_code for a in answers) == [200, 410]
    loser = next(a for a in answers if a.status_code == 410)
    assert loser.json()["error"] == "code_used"
    winner = next(a for a in answers if a.status_code == 200).json()
    for url in first, second:  # the winner's token works on both processes
        beat = requests.post(f"{url}/v1/devices/{winner['device_id']}/heartbeat", json={}, headers=bearer(winner["token"]), timeout=TIMEOUT)
        assert beat.status_code != 401


def test_guessing_codes_across_two_processes_is_locked_out_on_both(two_services):
    """Ten wrong codes, five on each process, lock the address out on both: per-process memory
    would have seen only five each and let guessing go on."""
    first, second = two_services
    for n in range(10):
        url = (first, second)[n % 2]
        answer = requests.post(f"{url}/v1/devices/bind", json={"code": f"WRONG-{n:05d}", "device_id": "guesser"}, timeout=TIMEOUT)
        assert answer.status_code == 400, answer.text
    for url in first, second:
        answer = requests.post(f"{url}/v1/devices/bind", json={"code": "WRONG-AGAIN", "device_id": "guesser"}, timeout=TIMEOUT)
        assert answer.status_code == 429
        assert int(answer.headers["Retry-After"]) > 0


# --- two stores in one process: many threads racing -----------------------------------------------


@pytest.fixture
def two_stores(postgres_url):
    first, second = Store(postgres_url), PostgresStore(postgres_url, pool_size=4)
    SEEDS["demo"](first, datetime.now(UTC))
    try:
        yield first, second
    finally:
        first.close()
        second.close()


def test_two_stores_opening_one_database_migrate_it_once(two_stores):
    first, second = two_stores
    assert isinstance(first, PostgresStore)
    assert first.schema_version() == second.schema_version() == LATEST


def test_racing_uploads_through_two_stores_store_each_record_once(two_stores):
    records = [RecordIn.model_validate(record()) for _ in range(20)]
    stores = [*two_stores] * 4
    barrier = threading.Barrier(len(stores))

    def add(store):
        barrier.wait()
        return store.add_records(records, datetime.now(UTC), binding_id=None)

    with ThreadPoolExecutor(len(stores)) as pool:
        results = list(pool.map(add, stores))
    assert all(set(r.owners) == {r.id for r in records} and not r.refused for r in results)
    assert len(two_stores[0].list_records(limit=1000)) == 20


def test_racing_redemptions_of_one_code_through_two_stores_have_one_winner(two_stores):
    now = datetime.now(UTC)
    two_stores[0].add_binding_code(DEMO_SITE.id, "RACE1-CODE1", now + timedelta(hours=1))
    stores = [*two_stores] * 4
    barrier = threading.Barrier(len(stores))

    def redeem(n):
        barrier.wait()
        try:
            return stores[n].redeem_binding_code("RACE1-CODE1", f"racer-{n}", f"sdt_token-{n}", now).id
        except BindError as exc:
            return exc.error

    with ThreadPoolExecutor(len(stores)) as pool:
        outcomes = list(pool.map(redeem, range(len(stores))))
    assert outcomes.count(DEMO_SITE.id) == 1
    assert outcomes.count("code_used") == len(stores) - 1
    assert sum(two_stores[1].get_device(f"racer-{n}") is not None for n in range(len(stores))) == 1


def test_rate_limits_kept_in_the_database_are_one_budget_for_every_process(two_stores):
    now = [1000.0]
    settings = LimitSettings()
    one, other = (Limits(settings, clock=lambda: now[0], shared=store) for store in two_stores)
    burst = int(settings.bind_per_address.burst)
    taken = [(one, other)[n % 2].bind.take("203.0.113.9") for n in range(burst)]
    assert taken == [0.0] * burst
    assert one.bind.take("203.0.113.9") > 0 and other.bind.take("203.0.113.9") > 0
    assert one.bind.take("203.0.113.10") == 0.0  # another address has its own bucket
    now[0] += 1 / settings.bind_per_address.per_s  # one token back, for whichever process asks first
    assert other.bind.take("203.0.113.9") == 0.0
    assert one.bind.take("203.0.113.9") > 0


def test_a_take_from_a_shared_bucket_answers_as_the_bucket_in_memory_does(two_stores):
    """PostgreSQL takes in one statement (store/postgres.py `_TAKE`), memory in Python
    (`limits.bucket_take`): the same answers over a random run of takes, debts and waits."""
    rng = random.Random(21)
    now = [5000.0]
    rate = Rate(per_s=2.0, burst=5.0)
    memory = Buckets(rate, lambda: now[0], "bind")
    shared = [Buckets(rate, lambda: now[0], "bind", shared=store) for store in two_stores]
    answers = []
    for n in range(300):
        now[0] += rng.choice([0.0, 0.0, 0.1, 0.37, 1.5])
        key, cost = rng.choice(["203.0.113.1", "203.0.113.2"]), rng.choice([1.0, 1.0, 2.0, 6.0])
        if rng.random() < 0.05:
            memory.charge(key, 3.0)
            shared[n % 2].charge(key, 3.0)
        expected = memory.take(key, cost)
        assert shared[n % 2].take(key, cost) == pytest.approx(expected, abs=1e-9)
        answers.append(expected == 0.0)
    assert 50 < sum(answers) < 250  # both taken and refused were compared


def test_takes_at_once_from_two_processes_never_overdraw_a_shared_bucket(two_stores):
    rate = Rate(per_s=0.001, burst=40.0)
    buckets = [Buckets(rate, lambda: 9000.0, "verify", shared=store) for store in two_stores]
    with ThreadPoolExecutor(8) as pool:
        waits = list(pool.map(lambda n: buckets[n % 2].take("sdt-hash"), range(100)))
    assert waits.count(0.0) == 40


# --- both stores: schema, migrations, the command line ---------------------------------------------


def test_both_stores_have_the_listing_and_purging_indexes(service_db):
    store = Store(str(service_db) if not isinstance(service_db, str) else service_db)
    try:
        if isinstance(store, PostgresStore):
            names = {row["indexname"] for row in store._all("SELECT indexname FROM pg_indexes WHERE tablename = ?", ("records",))}
        else:
            names = {row["name"] for row in store._all("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?", ("records",))}
        assert {"records_by_binding", "records_by_received", "records_by_device", "records_by_site"} <= names
        assert store.schema_version() == LATEST
    finally:
        store.close()


def test_reads_go_on_while_a_change_is_open_and_see_only_what_was_committed(service_db):
    """A verify's reads (its token, the person) do not queue behind a record batch's transaction
    and its fsync (SQLite: the writer's lock); they see what was committed, never a half-done
    change."""
    store = Store(str(service_db) if not isinstance(service_db, str) else service_db)
    opened, release = threading.Event(), threading.Event()

    def open_change():
        with store._tx() as conn:
            store._set_device(conn, "dev-in-flight", DEMO_SITE.id, "sdt_in-flight-token", datetime.now(UTC))
            opened.set()
            assert release.wait(60)

    try:
        SEEDS["demo"](store, datetime.now(UTC))
        with ThreadPoolExecutor(2) as pool:
            writer = pool.submit(open_change)
            assert opened.wait(60)
            try:
                read = pool.submit(lambda: (store.device_for_token(DEMO_DEVICE_TOKEN), store.device_for_token("sdt_in-flight-token")))
                known, in_flight = read.result(timeout=20)  # waits on the writer: TimeoutError
                assert known is not None and known.id == DEMO_DEVICE_ID
                assert in_flight is None
            finally:
                release.set()
            writer.result(timeout=60)
        assert store.device_for_token("sdt_in-flight-token").id == "dev-in-flight"
    finally:
        store.close()


def test_a_sqlite_file_from_before_migrations_is_brought_up_to_date(tmp_path):
    import sqlite3

    db = tmp_path / "old.db"
    old = sqlite3.connect(db)
    old.executescript(
        "CREATE TABLE sites (id TEXT PRIMARY KEY, name TEXT NOT NULL, address TEXT NOT NULL DEFAULT '');"
        "CREATE TABLE records (id TEXT PRIMARY KEY, device_id TEXT NOT NULL, site_id TEXT NOT NULL, created_at TEXT NOT NULL,"
        " received_at TEXT NOT NULL, body TEXT NOT NULL);"
        "INSERT INTO sites VALUES ('old-site', 'Old site', '');"
    )
    old.commit()
    old.close()
    store = Store(db)
    try:
        assert store.schema_version() == LATEST
        assert store.get_site("old-site").name == "Old site"
        batch = store.add_records([RecordIn.model_validate(record())], datetime.now(UTC), binding_id="b1")
        assert len(batch.owners) == 1  # the binding_id column the first release lacked is there
    finally:
        store.close()


def test_the_command_wants_an_admin_token_file_for_a_postgresql_url(tmp_path):
    result = subprocess.run([sys.executable, "-m", "sentinel", "service", "--port", "0", "--db", "postgresql://nobody@127.0.0.1:1/none"],
                            check=False, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2
    assert "--admin-token-file" in result.stderr


def test_the_command_says_when_the_database_cannot_be_reached(tmp_path):
    token_file = tmp_path / "admin-token"
    token_file.write_text(ADMIN + "\n")
    token_file.chmod(0o600)
    port = free_port()  # nothing listens there
    result = subprocess.run([sys.executable, "-m", "sentinel", "service", "--port", "0", "--db", f"postgresql://u:secretpw@127.0.0.1:{port}/none",
                             "--admin-token-file", str(token_file)], check=False, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 1
    assert "cannot use the database" in result.stderr
    assert "secretpw" not in result.stderr + result.stdout


def test_long_idle_rate_limit_state_is_forgotten_and_behaves_as_never_seen(two_stores):
    now = [1000.0]
    limits = Limits(LimitSettings(), clock=lambda: now[0], shared=two_stores[0])
    for _ in range(25):
        limits.bind.take("203.0.113.9")
    limits.bind_failures.fail("203.0.113.9")
    assert limits.bind.take("203.0.113.9") > 0
    assert limits.forget_idle() == 0  # fresh state stays
    now[0] += 2 * 86400
    assert limits.forget_idle() == 2
    assert limits.bind.take("203.0.113.9") == 0.0 and limits.bind_failures.wait_s("203.0.113.9") == 0.0


# --- PostgreSQL restarting under a running service -------------------------------------------------


def _verify_green(url: str) -> requests.Response:
    body = {"device_id": DEMO_DEVICE_ID, "site_id": DEMO_SITE.id, "scanned_at": datetime.now(UTC).isoformat(),
            "credential": {"kind": "health_code", "value": demo_person("green").token}}  # fmt: skip
    return requests.post(f"{url}/v1/verify", json=body, headers=bearer(DEMO_DEVICE_TOKEN), timeout=TIMEOUT)


def _honest(answer: requests.Response) -> str:
    """'ok' for the right answer, 'unavailable' for an honest 503; anything else fails the test."""
    if answer.status_code == 503:
        assert answer.json()["error"] == "unavailable" and int(answer.headers["Retry-After"]) > 0
        return "unavailable"
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "green", answer.text  # never a wrong answer
    return "ok"


@pytest.fixture
def pg_service(postgres_server, postgres_url):
    with ReferenceServer(postgres_url, seed="demo", admin_token=ADMIN) as srv:
        yield postgres_server, srv


def test_the_service_recovers_by_itself_when_postgresql_restarts(pg_service):
    """Verifies keep coming while an operator restarts PostgreSQL: each one is answered right or
    with an honest 503, and once the server is back the next ones succeed without restarting
    the service (the pool drops the cut connections and opens new ones)."""
    server, srv = pg_service
    assert _honest(_verify_green(srv.url)) == "ok"
    outcomes, done = [], threading.Event()

    def keep_verifying():
        while not done.is_set():
            outcomes.append(_honest(_verify_green(srv.url)))

    thread = threading.Thread(target=keep_verifying)
    thread.start()
    try:
        server.restart()
    finally:
        done.set()
        thread.join()
    assert outcomes and set(outcomes) <= {"ok", "unavailable"}
    assert [_honest(_verify_green(srv.url)) for _ in range(5)] == ["ok"] * 5


def test_after_a_restart_the_first_requests_are_answered_though_the_pool_held_cut_connections(pg_service):
    """The pool held several connections when PostgreSQL restarted, all cut now. No request was
    running during the restart, so none has met the outage: the next ones must be answered (the
    cut connections are found on first use and the work tried on the next), not 503s."""
    server, srv = pg_service
    with ThreadPoolExecutor(16) as pool:  # several at once: the pool opens more connections
        assert set(pool.map(lambda _: _honest(_verify_green(srv.url)), range(64))) == {"ok"}
    held = srv.store._pool.get_stats()["pool_size"]
    assert held > 1
    server.restart()
    assert [_honest(_verify_green(srv.url)) for _ in range(held + 2)] == ["ok"] * (held + 2)


def test_while_postgresql_is_down_requests_are_503_and_a_retried_upload_is_stored_once(pg_service):
    server, srv = pg_service
    batch = [record() for _ in range(3)]
    server.halt()
    try:
        assert _honest(_verify_green(srv.url)) == "unavailable"
        answer = requests.post(f"{srv.url}/v1/records", json={"records": batch}, headers=bearer(DEMO_DEVICE_TOKEN), timeout=TIMEOUT)
        assert answer.status_code == 503 and answer.json()["error"] == "unavailable"
    finally:
        server.resume()
    assert _honest(_verify_green(srv.url)) == "ok"
    answer = requests.post(f"{srv.url}/v1/records", json={"records": batch}, headers=bearer(DEMO_DEVICE_TOKEN), timeout=TIMEOUT)
    assert answer.status_code == 200 and sorted(answer.json()["accepted"]) == sorted(r["id"] for r in batch)
    listed = requests.get(f"{srv.url}/v1/records?limit=500", headers=bearer(ADMIN), timeout=TIMEOUT).json()["records"]
    assert sorted(r["id"] for r in listed) == sorted(r["id"] for r in batch)

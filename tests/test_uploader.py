"""The uploader against a scripted transport: batches, acknowledgement, rejection, back-off, status.

Time and randomness are injected, so back-off waits are exact; the thread itself is exercised
against the real reference service in test_offline.py and test_kill9.py.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from sentinel.client import ClientError
from sentinel.contract import RecordRejected, RecordsAccepted
from sentinel.outbox import Outbox
from sentinel.uploader import Backoff, Uploader
from tests.helpers import FakeClock
from tests.test_outbox import T0, Wall, record


class Transport:
    """Answers like the service would, or as scripted: a list of exceptions / callables per call."""

    def __init__(self):
        self.stored: dict[str, dict] = {}
        self.calls: list[list[str]] = []
        self.script: list = []
        self.reject: dict[str, str] = {}
        self.bad: set[str] = set()  # ids whose presence makes the whole batch a 422

    def upload_records_detailed(self, records, timeout_s):
        ids = [r["id"] for r in records]
        self.calls.append(ids)
        if self.script:
            step = self.script.pop(0)
            if isinstance(step, Exception):
                raise step
            if step is not None:
                return step(records)
        if self.bad & set(ids):
            raise ClientError("bad_request", "HTTP 422 from /v1/records", 422)
        accepted, rejected = [], []
        for r in records:
            if r["id"] in self.reject:
                rejected.append(RecordRejected(id=r["id"], error=self.reject[r["id"]], message="no"))
            else:
                self.stored.setdefault(r["id"], r)
                accepted.append(r["id"])
        return RecordsAccepted(accepted=accepted, rejected=rejected)

    def close(self):
        pass


@pytest.fixture
def setup(tmp_path):
    wall = Wall()
    outbox = Outbox(tmp_path / "o.sqlite3", wall=wall)
    transport = Transport()
    clock = FakeClock()
    uploader = Uploader(
        outbox, transport, batch_size=3, backoff=Backoff(1.0, 60.0), clock=clock, wall=wall, rng=random.Random(7), idle_s=30
    )
    return outbox, transport, uploader, wall


def test_drains_in_batches_oldest_first_and_deletes_only_what_was_acknowledged(setup):
    outbox, transport, uploader, _ = setup
    recs = [record(i) for i in range(7)]
    for r in reversed(recs):
        outbox.add(r)
    assert uploader.step() == 0
    assert transport.calls == [[r.id for r in recs[:3]]]
    # the service stores the next batch but acknowledges only one id of it
    def store_all_acknowledge_one(rs):
        transport.stored.update({r["id"]: r for r in rs})
        return RecordsAccepted(accepted=[rs[1]["id"]])

    transport.script.append(store_all_acknowledge_one)
    assert uploader.step() == 0
    assert outbox.health().depth == 3
    while outbox.health().depth:
        assert uploader.step() == 0
    assert uploader.step() == 30  # empty: the idle wait
    assert set(transport.stored) == {r.id for r in recs}
    sent = [i for call in transport.calls for i in call]
    assert sent[:6] == [r.id for r in recs[:6]]  # batches went out in id order
    assert [sent.count(r.id) for r in recs] == [1, 1, 1, 2, 1, 2, 1]  # the unacknowledged two went again
    assert uploader.status().state == "idle" and uploader.delivered == 7


def test_failures_back_off_exponentially_with_jitter_and_keep_the_records(setup):
    outbox, transport, uploader, wall = setup
    outbox.add(record(1))
    transport.script = [ClientError("connection", "cannot reach")] * 8
    waits = [uploader.step() for _ in range(8)]
    for n, wait in enumerate(waits, start=1):
        ceiling = min(60.0, 1.0 * 2 ** (n - 1))
        assert ceiling / 2 <= wait <= ceiling, (n, wait)
    assert waits[-1] >= 30  # reached the cap's range
    assert len(set(waits)) == len(waits)  # jittered, not lock-step
    st = uploader.status()
    assert st.state == "retrying" and st.consecutive_failures == 8 and st.queue_depth == 1
    assert st.last_error.startswith("connection") and st.last_success_at is None
    assert st.next_attempt_in_s == pytest.approx(waits[-1])
    wall.t = T0 + timedelta(minutes=5)
    assert uploader.step() == 0  # the network is back
    st = uploader.status()
    assert st.consecutive_failures == 0 and st.last_success_at == wall.t and st.queue_depth == 0
    assert uploader.backoff.delay(1, random.Random(1)) <= 1.0  # and the next failure starts small again


def test_same_seed_same_waits_different_seed_different_waits():
    a = [Backoff(1, 100).delay(n, random.Random(3)) for n in range(1, 6)]
    b = [Backoff(1, 100).delay(n, random.Random(3)) for n in range(1, 6)]
    c = [Backoff(1, 100).delay(n, random.Random(4)) for n in range(1, 6)]
    assert a == b != c


def test_rejected_records_are_set_aside_and_never_sent_again(setup):
    outbox, transport, uploader, _ = setup
    good, bad = record(1), record(2)
    outbox.add(good)
    outbox.add(bad)
    transport.reject[bad.id] = "wrong_site"
    uploader.step()
    assert outbox.health().depth == 0 and outbox.health().rejected == 1
    assert outbox.rejected()[0]["error"] == "wrong_site"
    uploader.step()
    uploader.step()
    assert sum(call.count(bad.id) for call in transport.calls) == 1
    assert uploader.status().set_aside == 1


def test_a_batch_refused_for_one_bad_record_is_split_until_the_record_is_alone(setup):
    outbox, transport, uploader, _ = setup
    recs = [record(i) for i in range(6)]
    for r in recs:
        outbox.add(r)
    transport.bad = {recs[1].id}
    for _ in range(20):
        if not outbox.health().depth:
            break
        assert uploader.step() == 0  # splitting is not a failure: no back-off
    assert set(transport.stored) == {r.id for r in recs} - {recs[1].id}
    (aside,) = outbox.rejected()
    assert aside["record"]["id"] == recs[1].id and aside["error"] == "bad_request"


def test_an_unauthorized_device_keeps_its_records_and_waits_long(setup):
    outbox, transport, uploader, _ = setup
    outbox.add(record(1))
    transport.script = [ClientError("token_revoked", "HTTP 401 from /v1/records", 401)]
    assert uploader.step() == uploader.backoff.max_s
    assert uploader.status().state == "unauthorized" and outbox.health().depth == 1


def test_an_answer_that_acknowledges_nothing_is_a_failure_not_a_loop(setup):
    outbox, transport, uploader, _ = setup
    outbox.add(record(1))
    transport.script = [lambda rs: RecordsAccepted(accepted=["01900000-0000-7000-8000-000000000000"])]
    assert uploader.step() > 0
    assert uploader.status().last_error.startswith("no_progress") and outbox.health().depth == 1


def test_last_success_and_error_survive_a_restart(setup, tmp_path):
    outbox, transport, uploader, wall = setup
    outbox.add(record(1))
    uploader.step()
    wall.t = T0 + timedelta(hours=1)
    outbox.add(record(2))
    transport.script = [ClientError("server_error", "HTTP 503 from /v1/records", 503)]
    uploader.step()
    outbox.close()
    again = Uploader(Outbox(tmp_path / "o.sqlite3"), Transport())
    st = again.status()
    assert st.last_success_at == T0 and st.last_error.startswith("server_error") and st.last_error_at == wall.t
    assert st.queue_depth == 1


def test_drain_reports_progress_and_stops_after_repeated_failures(setup):
    outbox, transport, uploader, _ = setup
    for i in range(7):
        outbox.add(record(i))
    seen = []
    result = uploader.drain(progress=lambda done, total: seen.append((done, total)), sleep=lambda s: None)
    assert result.complete and result.delivered == 7
    assert seen[0] == (0, 7) and seen[-1] == (7, 7)
    outbox.add(record(99))
    transport.script = [ClientError("connection", "down")] * 10
    slept = []
    result = uploader.drain(max_failures=3, sleep=slept.append)
    assert not result.complete and result.remaining == 1 and result.last_error.startswith("connection")
    assert len(slept) == 2  # the waits between the three attempts


def test_records_added_by_another_process_meanwhile_do_not_confuse_the_count(setup, tmp_path):
    outbox, transport, uploader, _ = setup
    for i in range(4):
        outbox.add(record(i))
    other = Outbox(tmp_path / "o.sqlite3")  # `sentinel outbox flush` next to the kiosk
    other.acknowledge([p["id"] for p in other.pending(10)])
    other.close()
    uploader.step()  # finds nothing
    assert outbox.health().depth == 0


def test_the_thread_wakes_for_a_new_record_and_stops_cleanly(tmp_path):
    import threading

    outbox = Outbox(tmp_path / "o.sqlite3")
    delivered = threading.Event()

    class Signal(Transport):
        def upload_records_detailed(self, records, timeout_s):
            result = super().upload_records_detailed(records, timeout_s)
            delivered.set()
            return result

    transport = Signal()
    uploader = Uploader(outbox, transport, idle_s=60)  # without the wake-up it would sleep a minute
    assert not uploader.is_alive()
    uploader.start()
    try:
        assert uploader.is_alive()
        outbox.add(record(1))
        assert delivered.wait(5), "the new record was not picked up promptly"
    finally:
        uploader.stop()
    assert uploader.status().state == "stopped" and not uploader.is_alive()
    assert outbox.health().depth == 0
    assert datetime.now(UTC) - uploader.status().last_success_at < timedelta(seconds=10)

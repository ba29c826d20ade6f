"""A piece of a check handed to another thread, and the frame loop's wait for it (sentinel/handover.py)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from sentinel.handover import Handover
from tests.helpers import PATIENCE_S


def test_the_result_of_a_function_run_on_a_worker():
    with ThreadPoolExecutor(1) as workers:
        handover = Handover(lambda a, b: a + b, 2, 3)
        workers.submit(handover.run)
        assert handover.wait(PATIENCE_S) and handover.done()
        assert handover.result() == 5


def test_what_the_function_raised_is_raised_again_on_the_waiter():
    def broken():
        raise KeyError("no such column")

    handover = Handover(broken)
    handover.run()  # never raises itself
    assert handover.done()
    with pytest.raises(KeyError, match="no such column"):
        handover.result()


def test_a_wait_that_times_out_says_so_and_the_result_is_not_there_yet():
    release = threading.Event()
    with ThreadPoolExecutor(1) as workers:
        handover = Handover(release.wait, PATIENCE_S)
        workers.submit(handover.run)
        assert handover.wait(0.05) is False and not handover.done()
        with pytest.raises(RuntimeError, match="not finished"):
            handover.result()
        release.set()
        assert handover.wait(PATIENCE_S) and handover.result() is True


def test_every_waiter_is_woken_not_only_the_first():
    release = threading.Event()
    handover = Handover(release.wait, PATIENCE_S)
    woken = []
    waiters = [threading.Thread(target=lambda: woken.append(handover.wait(PATIENCE_S))) for _ in range(3)]
    for w in waiters:
        w.start()
    release.set()
    handover.run()
    for w in waiters:
        w.join(PATIENCE_S)
    assert woken == [True, True, True]
    assert handover.wait(0) is True  # and whoever asks later


def test_a_handover_no_executor_would_take_is_failed_not_left_waiting():
    workers = ThreadPoolExecutor(1)
    workers.shutdown()
    handover = Handover(lambda: "never")
    with pytest.raises(RuntimeError) as refused:
        workers.submit(handover.run)
    handover.fail(refused.value)
    assert handover.wait(0) and handover.done()
    with pytest.raises(RuntimeError, match="shutdown"):
        handover.result()

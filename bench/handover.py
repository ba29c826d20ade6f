"""A check's hand-over to a worker thread and back, as the frame loop makes it (issue 18).

    .venv/bin/python bench/handover.py [--n 1500] [--idle-ms 4]

Three ways, side by side, taking turns (one of each, then again), each after `--idle-ms` of sleep
as between two people, so that none of them runs warm: the worker's part is one call of
`time.perf_counter` (nothing), so what is measured is the hand-over itself, there and back.

- `concurrent.futures`: `ThreadPoolExecutor.submit`, then `concurrent.futures.wait([future])` and
  `future.result()` (the pipeline before `sentinel/handover.py`);
- `Handover` on that pool: `submit(handover.run)`, then `handover.wait()` (the pipeline now);
- `Handover` on a bare thread reading a `queue.SimpleQueue`: the floor a hand-written pool would
  reach (not taken: the pipeline keeps any `Executor`, the tests' inline one included).

Prints the median and p90 round trip in µs of each.
"""

from __future__ import annotations

import argparse
import queue
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sentinel.handover import Handover  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1500)
    parser.add_argument("--idle-ms", type=float, default=4.0)
    args = parser.parse_args()

    pool = ThreadPoolExecutor(max_workers=4)
    pool.submit(lambda: None).result()
    jobs: queue.SimpleQueue = queue.SimpleQueue()

    def bare_worker() -> None:
        while (job := jobs.get()) is not None:
            job.run()

    bare = threading.Thread(target=bare_worker, daemon=True)
    bare.start()

    def with_futures() -> float:
        started = time.perf_counter()
        future = pool.submit(time.perf_counter)
        futures_wait([future], timeout=1.0)
        future.result()
        return time.perf_counter() - started

    def with_handover() -> float:
        started = time.perf_counter()
        handover = Handover(time.perf_counter)
        pool.submit(handover.run)
        handover.wait(1.0)
        handover.result()
        return time.perf_counter() - started

    def with_handover_on_a_queue() -> float:
        started = time.perf_counter()
        handover = Handover(time.perf_counter)
        jobs.put(handover)
        handover.wait(1.0)
        handover.result()
        return time.perf_counter() - started

    ways = [("concurrent.futures: submit, wait([future])", with_futures),
            ("Handover on the ThreadPoolExecutor (the pipeline)", with_handover),
            ("Handover on a SimpleQueue thread (floor, not taken)", with_handover_on_a_queue)]
    times: dict[str, list[float]] = {label: [] for label, _ in ways}
    for _ in range(args.n):
        for label, way in ways:
            time.sleep(args.idle_ms / 1000)
            times[label].append(way() * 1e6)
    jobs.put(None)
    pool.shutdown()
    print(f"hand-over there and back, {args.n} each, {args.idle_ms:g} ms idle before each, taking turns:\n")
    print("| way | median µs | p90 µs |\n|---|---:|---:|")
    for label, values in times.items():
        values.sort()
        print(f"| {label} | {statistics.median(values):.1f} | {values[int(0.9 * len(values))]:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

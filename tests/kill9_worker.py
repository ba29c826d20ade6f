"""A kiosk that checks people as fast as it can and uploads, to be killed with SIGKILL (test_kill9.py).

It is the kiosk minus camera and screen hardware: the real pipeline on generated QR frames (the
four demo people in turn, a blank frame between them), the real decoder, the real HTTP client
against a reference service in another process, the real outbox and the real uploader thread.
After each check whose record was committed it prints `COMMITTED <id>` and flushes: a line on
stdout is a promise that the record is durable, which is what the test holds it to.

    python -m tests.kill9_worker --state-dir DIR --url URL            # check people until killed
    python -m tests.kill9_worker --state-dir DIR --url URL --drain    # only upload, exit when empty
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from pathlib import Path

from hardware.gate import FakeGate
from sentinel.client import ServiceClient
from sentinel.config import CredentialConfig, PolicyConfig
from sentinel.credentials import CredentialRules
from sentinel.decoding import make_decoder
from sentinel.demo_data import DEMO_PEOPLE
from sentinel.outbox import Outbox
from sentinel.pipeline import CheckOutcome, Pipeline
from sentinel.records import RecordMaker, load_or_create_key
from sentinel.service.seed import DEMO_DEVICE_ID, DEMO_DEVICE_TOKEN, DEMO_SITE
from sentinel.uploader import Backoff, Uploader
from sentinel.state_lock import StateLock
from tests.helpers import qr_frame
from ui.console import ConsoleDisplay


class PeopleInTurn:
    """A frame source: each demo person's code for one frame, then an empty scene, for ever."""

    def __init__(self):
        self.frames = []
        for person in DEMO_PEOPLE:
            self.frames += [qr_frame(person.payload), qr_frame(None)]
        self.i = 0

    def read(self, timeout: float):
        frame = self.frames[self.i % len(self.frames)]
        self.i += 1
        return frame


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--drain", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")

    lock = StateLock(args.state_dir).acquire()  # a killed holder's lock is released by the kernel
    outbox = Outbox(args.state_dir / "outbox.sqlite3")
    transport = ServiceClient(args.url, DEMO_DEVICE_TOKEN, device_id=DEMO_DEVICE_ID, site_id=DEMO_SITE.id)
    uploader = Uploader(outbox, transport, batch_size=40, timeout_s=5, backoff=Backoff(0.02, 0.3), idle_s=0.2)

    if args.drain:
        result = uploader.drain(max_failures=50, sleep=time.sleep)
        outbox.close()
        lock.release()
        print(f"DRAINED delivered={result.delivered} remaining={result.remaining} error={result.last_error}", flush=True)
        return 0 if result.complete else 1

    verifier = ServiceClient(args.url, DEMO_DEVICE_TOKEN, device_id=DEMO_DEVICE_ID, site_id=DEMO_SITE.id)
    out = sys.stdout

    def committed(outcome: CheckOutcome) -> None:
        if outcome.record_id and outcome.durable:
            out.write(f"COMMITTED {outcome.record_id}\n")
            out.flush()

    pipeline = Pipeline(
        decoder=make_decoder(["zxing-cpp", "pyzbar"]),
        rules=CredentialRules(CredentialConfig()),
        verifier=verifier,
        policy=PolicyConfig(offline="allow_and_flag", nat_window_h=72),
        records=RecordMaker(DEMO_DEVICE_ID, DEMO_SITE.id, load_or_create_key(args.state_dir / "record.key")),
        outbox=outbox,
        gate=FakeGate(pulse_s=0.05),
        display=ConsoleDisplay(),
        language="en",
        debounce_s=0.0,  # the same four people come round again and again
        deadline_s=1.0,
        result_s=0.01,
        on_outcome=committed,
    )
    uploader.start()
    print("READY", flush=True)
    pipeline.run(PeopleInTurn(), stop=threading.Event())  # until SIGKILL
    return 0


if __name__ == "__main__":
    sys.exit(main())

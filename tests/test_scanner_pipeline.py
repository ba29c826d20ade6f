"""An external scanner as the kiosk's second credential source: a scanned payload goes through the
same rules, debounce, verifier, record and gate as a code seen by the camera, even while the
camera is dead."""

from __future__ import annotations

import threading
import time


from hardware.gate import FakeGate
from hardware.scanner.hid import HidScanner
from sentinel.config import CredentialConfig, PolicyConfig
from sentinel.credentials import CredentialRules
from sentinel.decoding import make_decoder
from sentinel.demo_data import demo_person
from sentinel.outbox import Outbox
from sentinel.pipeline import Pipeline
from sentinel.records import RecordMaker
from sentinel.verifier import TableVerifier
from tests.test_pipeline import ANSWERS
from tests.test_scanner import PATH, Bus, ScriptedInputDevice, typed
from ui.console import ConsoleDisplay



class DeadCamera:
    def read(self, timeout):
        time.sleep(timeout)
        return None


def test_a_scanned_code_is_checked_and_opens_the_gate_with_the_camera_dead(tmp_path):
    bus = Bus()
    bus.plugged[PATH] = device = ScriptedInputDevice()
    scanner = HidScanner(PATH, opener=bus.open, poll_s=0.02)
    gate = FakeGate(pulse_s=0.2)
    outcomes = []
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    pipeline = Pipeline(
        decoder=make_decoder(["zxing-cpp"]),
        rules=CredentialRules(CredentialConfig()),
        verifier=TableVerifier(ANSWERS),
        policy=PolicyConfig(),
        records=RecordMaker("dev-1", "site-1", b"k" * 32),
        outbox=outbox,
        gate=gate,
        display=ConsoleDisplay(),
        language="en",
        on_outcome=outcomes.append,
        camera_timeout_s=0.2,
        scanner=scanner,
    )
    stop = threading.Event()
    scanner.start()
    loop = threading.Thread(target=pipeline.run, args=(DeadCamera(),), kwargs={"stop": stop})
    loop.start()
    try:
        time.sleep(0.5)  # the camera is in fault by now
        device.push(typed(demo_person("green").payload))
        device.push(typed(demo_person("green").payload))  # the same code again: debounced
        deadline = time.monotonic() + 5
        while not outcomes and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)
    finally:
        stop.set()
        loop.join(5)
        scanner.close()
        pipeline.close()
        outbox.close()
    assert [(o.credential_kind, o.verdict.kind.value) for o in outcomes] == [("health_code", "pass")]
    assert len(gate.pulses) == 1

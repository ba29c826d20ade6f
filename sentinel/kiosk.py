"""The composition root: builds a running kiosk from a config.

It is the one core module that names hardware and UI backends, and it imports them only inside
`build_kiosk`, so `import sentinel.kiosk` stays free of device libraries (the import-isolation
test covers it). The demo and `sentinel run` both go through here: the demo is the kiosk.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sentinel.client import ServiceClient, read_token
from sentinel.config import SentinelConfig
from sentinel.credentials import CredentialRules
from sentinel.outbox import Outbox
from sentinel.pipeline import CheckOutcome, Pipeline
from sentinel.records import RecordMaker, load_or_create_key
from sentinel.verifier import Verifier

log = logging.getLogger("sentinel.kiosk")


@dataclass
class Kiosk:
    config: SentinelConfig
    pipeline: Pipeline
    source: Any
    outbox: Outbox
    verifier: Verifier
    gate: Any

    def run(self, stop: threading.Event | None = None, duration_s: float | None = None, until_finished: bool = False) -> None:
        self.source.start()
        try:
            self.pipeline.run(self.source, stop=stop, duration_s=duration_s, until_finished=until_finished)
        finally:
            self.close()

    def close(self) -> None:
        """Gate first: whatever else fails on the way out, the gate ends closed."""
        for step in (self.pipeline.close, self.source.close, self.verifier.close, self.outbox.close):
            try:
                step()
            except Exception:
                log.exception("error while shutting down")


def make_verifier(config: SentinelConfig) -> ServiceClient:
    v = config.verifier
    return ServiceClient(
        v.url,
        read_token(v.token_file),
        device_id=config.device.id,
        site_id=config.device.site_id,
        ca_bundle=v.ca_bundle,
        connect_timeout_s=v.connect_timeout_s,
    )


def build_kiosk(config: SentinelConfig, *, on_outcome: Callable[[CheckOutcome], None] | None = None) -> Kiosk:
    # Deferred: the edges depend on the core, and only the kiosk needs them loaded.
    from hardware.camera import open_camera
    from hardware.gate import open_gate
    from sentinel.decoding import make_decoder
    from ui.console import open_display

    verifier = make_verifier(config)
    config.device.state_dir.mkdir(parents=True, exist_ok=True)
    key = load_or_create_key(config.device.state_dir / "record.key")
    outbox = Outbox(config.outbox_path)
    gate = open_gate(config.gate)
    pipeline = Pipeline(
        decoder=make_decoder(config.decoder.order),
        rules=CredentialRules(config.credentials),
        verifier=verifier,
        policy=config.policy,
        records=RecordMaker(config.device.id, config.device.site_id, key),
        outbox=outbox,
        gate=gate,
        display=open_display(config.display.type),
        language=config.device.language,
        debounce_s=config.credentials.debounce_s,
        deadline_s=config.verifier.deadline_s,
        result_s=config.display.result_s,
        on_outcome=on_outcome,
    )
    return Kiosk(config, pipeline, open_camera(config.camera), outbox, verifier, gate)

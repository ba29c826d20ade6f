"""The composition root: builds a running kiosk from a config.

It is the one core module that names hardware and UI backends, and it imports them only inside
`build_kiosk`, so `import sentinel.kiosk` stays free of device libraries (the import-isolation
test covers it). The demo and `sentinel run` both go through here: the demo is the kiosk.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sentinel.client import ServiceClient, read_token
from sentinel.config import SentinelConfig
from sentinel.credentials import CredentialRules
from sentinel.credentials_dir import resolve_token_file
from sentinel.outbox import Outbox, OutboxLimits
from sentinel.pipeline import CheckOutcome, Pipeline
from sentinel.records import RecordMaker, load_or_create_key
from sentinel.screens import StatusBar
from sentinel.status_cache import StatusCache
from sentinel.uploader import Backoff, Uploader
from sentinel.verifier import Verifier
from sentinel.wipe import STATUS_CACHE_NAME, StateLock, shred

log = logging.getLogger("sentinel.kiosk")


@dataclass
class Kiosk:
    config: SentinelConfig
    pipeline: Pipeline
    source: Any
    outbox: Outbox
    verifier: Verifier
    gate: Any
    uploader: Uploader | None = None
    status_cache: StatusCache | None = None
    lock: StateLock | None = None
    _uploads: ServiceClient | None = None
    display: Any = None
    handheld: Any = None  # sentinel.handheld.HandheldController when [handheld] is enabled
    faces: Any = None  # sentinel.faces.kiosk.FaceMatching when [faces] is on
    scanner: Any = None  # an external 2D scanner beside the camera, when configured

    def run(
        self,
        stop: threading.Event | None = None,
        duration_s: float | None = None,
        until_finished: bool = False,
        drain_s: float = 0.0,
    ) -> None:
        """Check people until stopped. With `drain_s`, give the uploader up to that long at the end
        to deliver what is waiting (the demo; a systemd stop within TimeoutStopSec)."""
        stop = stop or threading.Event()
        if self.display is not None:
            self.display.connect(on_quit=stop.set)  # closing the desktop window stops the kiosk
        try:
            self.source.start()
            if self.uploader is not None:
                self.uploader.start()
            if self.scanner is not None:
                self.scanner.start()
            if self.faces is not None:
                self.faces.start()  # a full gallery sync at once, then every sync_every_s; never blocks the loop
            self.pipeline.run(self.source, stop=stop, duration_s=duration_s, until_finished=until_finished)
        finally:
            for step in (self.pipeline.close, lambda: self.drain(drain_s)):  # the gate closes first
                try:
                    step()
                except Exception:
                    log.exception("error while shutting down")
            self.close()

    def drain(self, timeout_s: float) -> bool:
        """Wait up to `timeout_s` for the running uploader to empty the outbox; True if it did."""
        if self.uploader is None or timeout_s <= 0:
            return self.outbox.health().depth == 0
        self.uploader.wake()
        deadline = time.monotonic() + timeout_s
        while self.outbox.health().depth and time.monotonic() < deadline:
            if self.uploader.status().state in ("retrying", "unauthorized", "stopped"):
                break  # the service is not taking records now: they wait for the next start
            time.sleep(0.05)
        return self.outbox.health().depth == 0

    def health(self) -> dict[str, Any]:
        """For the screen's status bar and the heartbeat: outbox alarms and the uploader's state."""
        out: dict[str, Any] = {"outbox": self.outbox.health().as_dict()}
        if self.uploader is not None:
            out["uploader"] = self.uploader.status().as_dict()
        return out

    def status_fields(self, language: str | None = None) -> dict[str, Any]:
        """The status bar's values (`sentinel.screens.StatusBar(**kiosk.status_fields())`): the
        outbox depth and its most serious alarm, in the screen's language."""
        language = language or self.config.device.language
        health = self.outbox.health()
        messages = health.messages(language)
        fields = {
            "site_name": self.config.device.site_name,
            "online": None if self.uploader is None else self.uploader.online,
            "outbox_depth": health.depth,
            "alarm": messages[0] if messages else "",
        }
        if self.handheld is not None:  # the battery, where the hardware reports one
            fields.update(self.handheld.status_fields())
        return fields

    def outbox_status_lines(self, language: str | None = None) -> list[tuple[str, str]]:
        """Rows for the technician menu's outbox panel."""
        language = language or self.config.device.language
        zh = language == "zh-CN"
        h = self.outbox.health()
        rows = [
            ("待传记录" if zh else "Waiting", f"{h.depth:,} / {h.max_records:,}"),
            ("最早" if zh else "Oldest", "-" if h.oldest_age_s is None else f"{h.oldest_age_s / 3600:.1f} h"),
        ]
        if self.uploader is not None:
            st = self.uploader.status()
            rows.append(("上次上传" if zh else "Last upload", st.last_success_at.isoformat(timespec="seconds") if st.last_success_at else "-"))
            if st.last_error:
                rows.append(("上次错误" if zh else "Last error", st.last_error))
        rows += [("告警" if zh else "Alarm", text) for text in h.messages(language)]
        return rows

    def close(self) -> None:
        """Gate first: whatever else fails on the way out, the gate ends closed. The uploader stops
        before the outbox closes; what it had in flight stays in the outbox and is sent next time."""
        steps = [self.pipeline.close, self.source.close]
        if self.handheld is not None:
            steps.append(self.handheld.close)
        if self.uploader is not None:
            steps.append(self.uploader.stop)
        if self._uploads is not None:
            steps.append(self._uploads.close)
        if self.faces is not None:
            steps.append(self.faces.close)
        if self.scanner is not None:
            steps.append(self.scanner.close)
        steps.append(self.verifier.close)
        if self.display is not None:
            steps.append(self.display.close)
        if self.status_cache is not None:
            steps.append(self.status_cache.close)
        steps.append(self.outbox.close)
        if self.lock is not None:
            steps.append(self.lock.release)
        for step in steps:
            try:
                step()
            except Exception:
                log.exception("error while shutting down")


def make_client(config: SentinelConfig) -> ServiceClient:
    """One client per user: the verify path and the uploader each get their own Session."""
    v = config.verifier
    return ServiceClient(
        v.url,
        read_token(resolve_token_file(v.token_file)),  # systemd LoadCredential= first
        device_id=config.device.id,
        site_id=config.device.site_id,
        ca_bundle=v.ca_bundle,
        connect_timeout_s=v.connect_timeout_s,
    )


def build_kiosk(config: SentinelConfig, *, on_outcome: Callable[[CheckOutcome], None] | None = None) -> Kiosk:
    # Deferred: the edges depend on the core, and only the kiosk needs them loaded.
    from hardware.camera import open_camera
    from hardware.gate import open_gate
    from hardware.scanner import open_scanner
    from sentinel.decoding import make_decoder
    from sentinel.notify import Watchdog, WatchedSource
    from sentinel.faces.kiosk import open_faces
    from ui.console import open_display

    verifier = make_client(config)
    state_dir = config.device.state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    opened: list[Callable[[], None]] = [verifier.close]
    try:
        lock = StateLock(state_dir).acquire()  # one kiosk per state directory; `sentinel wipe` waits for it
        opened.append(lock.release)
        key = load_or_create_key(state_dir / "record.key")
        outbox = open_outbox(config)
        opened.insert(0, outbox.close)
        status_cache = open_status_cache(config)
        opened.insert(0, status_cache.close)
        uploads = make_client(config)  # its own Session: never shared with verify
        opened.insert(0, uploads.close)
        uploader = make_uploader(config, outbox, uploads)
        gate = open_gate(config.gate)
        opened.insert(0, gate.close)
        faces = open_faces(config, make_client)  # None when [faces] is off or its engine is missing
        if faces is not None:
            opened.insert(0, faces.close)
        display = open_display(config.display, language=config.device.language, site_name=config.device.site_name)
        opened.insert(1, display.close)
        handheld = None
        pipeline_display = display
        if config.handheld.enabled:
            # Vehicle checks: the pipeline's screens go through the controller, which shows the vehicle
            # screens; its outcomes reach the controller first; the camera runs only while scanning.
            from sentinel.handheld import HandheldController

            handheld = HandheldController.from_config(config, outbox=outbox, display=display, trigger=None)
            opened.insert(0, handheld.close)
            pipeline_display = handheld.display
            on_outcome = handheld.chain(on_outcome)
        scanner = open_scanner(config.scanner)
        opened.insert(0, scanner.close)
        pipeline = Pipeline(
            decoder=make_decoder(config.decoder.order, fallback_every=config.decoder.fallback_every),
            rules=CredentialRules(config.credentials),
            verifier=verifier,
            policy=config.policy,
            records=RecordMaker(config.device.id, config.device.site_id, key),
            outbox=outbox,
            gate=gate,
            display=pipeline_display,
            language=config.device.language,
            debounce_s=config.credentials.debounce_s,
            deadline_s=config.verifier.deadline_s,
            result_s=config.display.result_s,
            status_cache=status_cache,
            on_outcome=on_outcome,
            faces=faces.matcher if faces is not None else None,
            scanner=scanner,
        )
        opened.insert(0, pipeline.close)
        source = open_camera(config.camera)
        if handheld is not None:
            source = handheld.gate_camera(source)
        watchdog = Watchdog.from_environment()
        if watchdog.notifier.enabled:  # under systemd: READY=1 on the first frame, WATCHDOG=1 only while healthy
            source = WatchedSource(source, watchdog, uploader_ok=lambda: uploader.status().state != "stopped")
    except BaseException:
        for undo in opened:  # whatever was opened is closed again, the gate first
            try:
                undo()
            except Exception:
                log.exception("error while cleaning up a failed start")
        raise
    kiosk = Kiosk(config, pipeline, source, outbox, verifier, gate, uploader, status_cache, lock, uploads, display, handheld, faces, scanner)
    display.connect(status=lambda: StatusBar(**kiosk.status_fields()), actions=technician_actions(kiosk))
    return kiosk


def technician_actions(kiosk: Kiosk):
    """What the touchscreen's technician menu can do on this kiosk (each runs on a UI worker)."""
    from sentinel import __version__
    from ui.technician import TechnicianActions

    config = kiosk.config
    zh = config.device.language == "zh-CN"

    def device_status() -> list[tuple[str, str]]:
        source = kiosk.source
        camera = "ok" if getattr(source, "healthy", True) else f"fault: {getattr(source, 'last_error', '') or '?'}"
        return [
            ("设备" if zh else "Device", config.device.id),
            ("场所" if zh else "Site", f"{config.device.site_name} ({config.device.site_id})"),
            ("版本" if zh else "Version", __version__),
            ("摄像头" if zh else "Camera", camera),
        ]

    def network_status() -> list[tuple[str, str]]:
        rows = [("服务" if zh else "Service", config.verifier.url)]
        if kiosk.uploader is not None:
            st = kiosk.uploader.status()
            rows.append(("上传" if zh else "Uploads", st.state))
            if st.last_error:
                rows.append(("上次错误" if zh else "Last error", st.last_error))
        return rows

    def gate_test() -> list[tuple[str, str]]:
        kiosk.gate.pulse()
        return [("闸机" if zh else "Gate", "已开启一次" if zh else "pulsed once")]

    return TechnicianActions(
        device_status=device_status,
        network_status=network_status,
        gate_test=gate_test,
        outbox_status=kiosk.outbox_status_lines,
    )


def open_outbox(config: SentinelConfig, *, recover: bool = True) -> Outbox:
    o = config.outbox
    limits = OutboxLimits(
        max_records=o.max_records, max_age_s=o.max_age_h * 3600, alarm_fraction=o.alarm_fraction, spill_max=o.memory_spill_max
    )
    return Outbox(config.outbox_path, limits=limits, recover=recover)


def open_status_cache(config: SentinelConfig) -> StatusCache:
    """On disk for the `cached` offline policy; otherwise nothing is remembered, and a cache file
    left from when the site was `cached` is destroyed (statuses are personal data)."""
    path = config.device.state_dir / STATUS_CACHE_NAME
    ttl_s = config.policy.cached_ttl_min * 60
    if config.policy.offline == "cached":
        return StatusCache(path, ttl_s=ttl_s)
    for p in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm"))):
        if p.exists():
            log.info("offline policy is %s: removing the status cache %s", config.policy.offline, p.name)
            shred(p)
    return StatusCache(None, ttl_s=ttl_s)


def make_uploader(config: SentinelConfig, outbox: Outbox, transport: ServiceClient) -> Uploader:
    o = config.outbox
    return Uploader(
        outbox,
        transport,
        batch_size=o.batch_size,
        timeout_s=o.upload_timeout_s,
        backoff=Backoff(o.retry_initial_s, o.retry_max_s),
    )

"""The composition root: builds a running kiosk from a config.

Outside the CLI (`sentinel/commands/`) it is the one place that opens hardware and UI backends
(`kiosk_technician.py` only builds the menu's `ui.technician.TechnicianActions`), and it imports
them inside `build_kiosk`, so `import sentinel.kiosk` loads no device library
(tests/test_import_isolation.py imports it and checks). The parts it opens are made in
`sentinel/kiosk_parts.py`. The demo and `sentinel run` both go through here: the demo is the kiosk.

Keep running. No missing device, damaged file or full disk stops the kiosk from starting: it
starts, sends READY=1 (sentinel/notify.py), shows what is wrong with the relay closed, and
recovers by itself once the fault clears. How each part fails:

- camera missing or broken (no /dev/video0, no replay path, an image that does not decode):
  the source is wrapped in `hardware.camera.retry.RetryingSource`, which retries every 4 s at
  most; the pipeline shows the camera fault screen meanwhile and idles again on the first frame.
- state directory read-only or full: the state lock falls back to a read-only flock of the lock
  file an earlier start left (or runs unlocked, logged, when there is none: nothing could be
  written there by a second kiosk either); the outbox keeps records in memory with its alarm
  (sentinel/outbox/); the status cache runs in memory with the alarm `status_cache_memory`.
- record key (`state_dir/record.key`) missing and not writable: no check is done, because a
  record hashed under a key that is not on disk could never be linked to the same credential
  after a restart, which is what contact tracing asks of records; an invented key would be
  silent data loss. The kiosk runs, shows the "storage" fault screen with the alarm
  `record_key_unwritable`, keeps the relay closed, keeps the watchdog fed (the loop is alive),
  and tries to write the key every `KEY_RETRY_S`; once it can, the pipeline starts.
- any part failing to open in `build_kiosk` (display, gate, inputs, faces, scanner…): what was
  opened before is released again from the `ExitStack`, the gate closed first, and the error goes
  to the caller (`sentinel run` prints one line and exits 1; systemd starts it again).
- not bound (no device token file, or the placeholder device id): `NotBound`
  (`sentinel/kiosk_parts.py`), before anything is opened; `sentinel run` says to run
  `sentinel bind` and exits 2 (every record would be refused as `wrong_device`).

Everything the config turns on is wired here (tests/test_kiosk_wiring.py builds each shipped
config and lists which part reads every config key):

- `[inputs]` through `hardware.inputs.open_inputs`: the trigger goes to the handheld controller
  (vehicle checks) and to the pipeline (a press makes a code seen just before count again, a code
  read disarms it); without vehicle checks it also gates the camera (scan only after a press). The
  LEDs and buzzer follow every screen shown (`IndicatorDisplay` around the display).
- `[gate]` sensor: after each pass the pipeline watches the sensor; no turn in `pass_window_s` puts
  an amendment (`gate_not_turned`) into the outbox. A gate fault (`gate.fault`) and a network
  fault (`sentinel.heartbeat.ServiceContact`) show their fault screens while idle.
- the heartbeat (`sentinel.heartbeat.HeartbeatSender`): started by `Kiosk.run`, every 60 s, on its
  own thread and HTTP session, built from `Kiosk.health()`.
- `[fleet]` through `sentinel.fleet.kiosk.open_fleet`: counts every outcome, reports `Kiosk.health()`
  to the district's MQTT broker, and applies the site's signed policy (`Kiosk.apply_remote_policy`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sentinel.client import ServiceClient
from sentinel.config import PolicyConfig, SentinelConfig
from sentinel.heartbeat import HeartbeatSender, ServiceContact, build_heartbeat
from sentinel.locale import message, pairs
from sentinel.kiosk_parts import (  # noqa: F401 (NotBound, check_bound, make_client, open_*: imported from here by the CLI)
    UNBOUND_DEVICE_ID,
    NotBound,
    chain_outcomes,
    check_bound,
    fault_probe,
    load_key,
    lock_state_dir,
    make_client,
    make_pipeline,
    make_state_dir,
    make_uploader,
    open_outbox,
    open_status_cache,
)
from sentinel.kiosk_technician import technician_actions
from sentinel.outbox import Outbox
from sentinel.pipeline import CheckOutcome, Pipeline
from sentinel.ports import CameraLike, WiredDisplay
from sentinel.records import load_or_create_key
from sentinel.screens import Screen, StatusBar
from sentinel.state_files import (
    PIN_LOCKOUT_NAME,
    RECORD_KEY_NAME,
)
from sentinel.status_cache import StatusCache
from sentinel.uploader import Uploader
from sentinel.verifier import Verifier
from sentinel.state_lock import StateLock

if TYPE_CHECKING:  # the kiosk imports hardware only where it builds it (build_kiosk)
    from hardware.gate import AnyGate
    from hardware.inputs import Inputs
    from hardware.scanner import NoScanner, ScannerSource
    from sentinel.faces.kiosk import FaceMatching
    from sentinel.handheld import HandheldController

log = logging.getLogger("sentinel.kiosk")

#: seconds between attempts to write a missing record key (module docstring)
KEY_RETRY_S = 2.0
#: device clock this far (seconds) from the service's: the heartbeat's alarm `clock_skew`
CLOCK_SKEW_S = 60.0


#: the kiosk's own alarm codes, in order of importance (texts: `kiosk.alarm.<code>` in the message
#: catalogue, sentinel/locale/); the status bar shows the most serious of these and the outbox's
ALARM_TEXT: dict[str, tuple[str, str]] = pairs("kiosk.alarm", ("record_key_unwritable", "status_cache_memory"))


@dataclass(kw_only=True)
class Kiosk:
    """Everything `build_kiosk` opened, running together; built with keyword arguments only."""

    config: SentinelConfig
    pipeline: Pipeline | None  # None while the record key cannot be written (module docstring)
    source: CameraLike  # the camera, retried, gated on a handheld, watched under systemd
    outbox: Outbox
    verifier: Verifier
    gate: AnyGate
    uploader: Uploader | None = None
    status_cache: StatusCache | None = None
    lock: StateLock | None = None
    uploads: ServiceClient | None = None  # the uploader's client (closed with the kiosk)
    display: WiredDisplay | None = None  # ui.display.open_display's: console, pygame or headless
    handheld: HandheldController | None = None  # when [handheld] is enabled
    faces: FaceMatching | None = None  # when [faces] is on
    scanner: ScannerSource | NoScanner | None = None  # an external 2D scanner beside the camera, when configured
    #: everything build_kiosk opened, closed in reverse order by `close` (the gate first)
    resources: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    #: builds the pipeline once the record key exists (`pipeline` is None until then)
    make_pipeline: Callable[[bytes], Pipeline] | None = None
    key_path: Path | None = None
    clock: Callable[[], float] = time.monotonic
    #: the kiosk's own alarm codes (ALARM_TEXT)
    alarms: set[str] = field(default_factory=set)
    #: the file this kiosk was built from; "Reload config" re-reads it (None: built in code, the demo)
    config_path: Path | None = None
    #: the trigger and the LEDs/buzzer ([inputs]), None when nothing is configured
    inputs: Inputs | None = None
    heartbeat: HeartbeatSender | None = None
    contact: ServiceContact | None = None  # is the service reachable (the network fault)
    started_at: float | None = None  # the clock when the kiosk was built, then when it started running
    #: the district's MQTT broker ([fleet]; sentinel/fleet/link.py FleetLink), None when type = "none"
    fleet: Any = None
    #: the site policy signed by the fleet and applied over [policy] (None: the config file's)
    remote_policy: PolicyConfig | None = None

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
        started = self.started_at = self.clock()
        try:
            self.source.start()  # never raises: a missing camera is retried (RetryingSource)
            if self.uploader is not None:
                self.uploader.start()
            if self.heartbeat is not None:
                self.heartbeat.start()  # the first one now, then every minute; never blocks the loop
            if self.fleet is not None:
                self.fleet.start()  # the kept site policy applied now; connects in the background, never blocks the loop
            if self.scanner is not None:
                self.scanner.start()
            if self.faces is not None:
                self.faces.start()  # a full gallery sync at once, then every sync_every_s; never blocks the loop
            if self.pipeline is None and not self._wait_for_record_key(stop, duration_s, started):
                return
            if duration_s is not None:
                duration_s = max(0.0, duration_s - (self.clock() - started))
            self.pipeline.run(self.source, stop=stop, duration_s=duration_s, until_finished=until_finished)
        finally:
            for step in (self.gate.close, lambda: self.drain(drain_s)):  # the gate closes first
                try:
                    step()
                except Exception:
                    log.exception("error while shutting down")
            self.close()

    def _wait_for_record_key(self, stop: threading.Event, duration_s: float | None, started: float) -> bool:
        """No record key on disk and none can be written: check nobody, show the storage fault
        with the relay closed, keep reading the camera (which sends READY=1 and feeds the
        watchdog: this loop is alive), and try to write the key every KEY_RETRY_S. True once the
        pipeline runs; False when stopped first."""
        assert self.make_pipeline is not None and self.key_path is not None
        language = self.config.device.language
        self.gate.close()
        self._show(Screen.fault("storage", language))
        next_try = self.clock() + KEY_RETRY_S
        while not stop.is_set():
            now = self.clock()
            if duration_s is not None and now - started >= duration_s:
                return False
            if now >= next_try:
                try:
                    key = load_or_create_key(self.key_path)
                except OSError as e:
                    log.debug("record key still not writable: %s", e)
                    next_try = now + KEY_RETRY_S
                else:
                    log.warning("record key %s written: checks start", self.key_path)
                    self.alarms.discard("record_key_unwritable")
                    self.pipeline = self.make_pipeline(key)
                    if self.remote_policy is not None:  # the fleet's site policy, applied while there was no pipeline
                        self.pipeline.reconfigure(policy=self.remote_policy)
                    self.resources.callback(_quietly, self.pipeline.close)
                    return True
            try:
                self.source.read(0.25)
            except Exception:
                stop.wait(0.25)
        return False

    def _show(self, screen: Screen) -> None:
        try:
            if self.display is not None:
                (self.handheld.display if self.handheld is not None else self.display).show(screen)
        except Exception:
            log.exception("display failed")

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
        """For the heartbeat (`sentinel.heartbeat.build_heartbeat`) and technicians: the outbox and
        the uploader, alarm codes (the outbox's, the kiosk's, the fault on screen, clock skew),
        camera, gate and door states, uptime and the last check."""
        outbox = self.outbox.health()
        pipeline = self.pipeline
        fault = pipeline.fault if pipeline is not None and pipeline.state == "fault" else None
        codes = set(self.alarms)
        if self.status_cache is not None and self.status_cache.problem:
            codes.add("status_cache_memory")
        alarms = list(outbox.alarms) + [c for c in ALARM_TEXT if c in codes]
        if fault:
            alarms.append(f"{fault}_fault")
        offset = self.heartbeat.clock_offset_s if self.heartbeat is not None else None
        if offset is not None and abs(offset) >= CLOCK_SKEW_S:
            alarms.append("clock_skew")
        out: dict[str, Any] = {
            "outbox": outbox.as_dict(),
            "uptime_s": 0.0 if self.started_at is None else self.clock() - self.started_at,
            "alarms": alarms,
            "camera": self._camera_state(fault),
            "gate": self._gate_state(),
            "door": self._door_state(),
            "last_check_at": pipeline.last_check_at if pipeline is not None else None,
            "fault": fault,
            "clock_offset_s": offset,  # the fleet state carries it (sentinel/fleet/telemetry.py)
        }
        if self.uploader is not None:
            out["uploader"] = self.uploader.status().as_dict()
        return out

    def apply_remote_policy(self, policy: PolicyConfig) -> None:
        """The fleet's signed site policy (sentinel/fleet/link.py): in force from the next check,
        over [policy], also after a config reload and for a pipeline started later."""
        self.remote_policy = policy
        pipeline = self.pipeline
        if pipeline is not None:
            pipeline.reconfigure(policy=policy)

    def _camera_state(self, fault: str | None) -> str:
        if fault == "camera":
            return "fault"
        if self.source.paused:
            return "paused"  # a handheld's camera off between vehicles
        return "ok" if self.source.healthy else "fault"

    def _gate_state(self) -> str:
        from hardware.gate import NoGate

        if isinstance(self.gate, NoGate):
            return "none"
        if self.gate.fault:
            return "fault"
        return "open" if self.gate.is_open else "closed"

    def _door_state(self) -> str | None:
        try:
            active = self.gate.sensor_active
        except Exception:  # noqa: BLE001 - an unreadable sensor
            return "fault"
        if active is None:
            return None
        return "open" if active else "closed"

    def heartbeat_body(self, clock_offset_s: float | None = None):
        """The `contract.Heartbeat` to send now."""
        return build_heartbeat(self.health(), clock_offset_s)

    def fault_probe(self) -> str | None:
        """The pipeline's `faults` (sentinel/pipeline.py)."""
        return fault_probe(self.gate, self.uploader, self.contact)

    def status_fields(self, language: str | None = None) -> dict[str, Any]:
        """The status bar's values (`sentinel.screens.StatusBar(**kiosk.status_fields())`): the
        outbox depth and its most serious alarm, in the screen's language."""
        language = language or self.config.device.language
        health = self.outbox.health()
        kiosk = self.alarm_messages(language)
        # no checks at all (no record key) outranks the outbox's alarms; a memory-only cache does not
        messages = kiosk[:1] + health.messages(language) + kiosk[1:] if "record_key_unwritable" in self.alarms else (
            health.messages(language) + kiosk)
        fields = {
            "site_name": self.config.device.site_name,
            "online": None if self.uploader is None else self.uploader.online,
            "outbox_depth": health.depth,
            "alarm": messages[0] if messages else "",
        }
        if self.handheld is not None:  # the battery, where the hardware reports one
            fields.update(self.handheld.status_fields())
        return fields

    def alarm_messages(self, language: str | None = None) -> list[str]:
        language = language or self.config.device.language
        codes = set(self.alarms)
        if self.status_cache is not None and self.status_cache.problem:
            codes.add("status_cache_memory")
        return [message(f"kiosk.alarm.{c}", language) for c in ALARM_TEXT if c in codes]

    def close(self) -> None:
        """Gate first: whatever else fails on the way out, the gate ends closed. Then everything
        build_kiosk opened, in reverse order: the uploader stops before the outbox closes; what it
        had in flight stays in the outbox and is sent next time. Safe to call twice."""
        _quietly(self.gate.close)
        self.resources.close()


def _quietly(step: Callable[[], Any]) -> None:
    """Run a closing step; log, never raise, so that the steps after it run too."""
    try:
        step()
    except Exception:
        log.exception("error while shutting down")


def build_kiosk(
    config: SentinelConfig,
    *,
    on_outcome: Callable[[CheckOutcome], None] | None = None,
    config_path: Path | None = None,
) -> Kiosk:
    """Open every part the config names and wire them into a Kiosk. What is opened goes on an
    ExitStack (the Kiosk's `resources`, closed by `Kiosk.close`): should a later part fail to
    open, the gate is closed and the earlier parts released in reverse order before the error
    goes to the caller. Faults the kiosk can run with (camera,
    full or read-only state directory, no record key yet) do not raise: see the module docstring."""
    # Deferred: the edges depend on the core, and only the kiosk needs them loaded.
    from hardware.camera import open_camera
    from hardware.camera.retry import RetryingSource
    from hardware.gate import open_gate
    from hardware.inputs import IndicatorDisplay, NoIndicators, open_inputs
    from hardware.scanner import open_scanner
    from sentinel.decoding import make_decoder
    from sentinel.faces.kiosk import open_faces
    from sentinel.fleet.kiosk import open_fleet
    from sentinel.notify import Watchdog, WatchedSource
    from ui.display import open_display

    check_bound(config)  # before anything is opened: an unbound kiosk makes records nobody takes
    state_dir = config.device.state_dir
    contact = ServiceContact()
    # Checks answered online (or not) tell whether the service is reachable; the caller's listener after.
    on_outcome = chain_outcomes(contact.observe_outcome, on_outcome)
    # The fleet link ([fleet]): made now for the outcome chain, started with the loop. Its health and
    # policy go to the kiosk made below (the link calls neither before Kiosk.run starts it).
    fleet = open_fleet(config, health=lambda: kiosk.health(), apply_policy=lambda policy: kiosk.apply_remote_policy(policy))
    if fleet is not None:
        on_outcome = chain_outcomes(fleet.observe_outcome, on_outcome)  # counts only: O(1), never blocks
    with contextlib.ExitStack() as stack:

        def opened(close: Callable[[], Any]) -> None:
            stack.callback(_quietly, close)

        gate = None
        try:
            verifier = make_client(config)
            opened(verifier.close)
            make_state_dir(state_dir)
            lock = lock_state_dir(state_dir)  # one kiosk per state directory; `sentinel wipe` waits for it
            if lock is not None:
                opened(lock.release)
            key_path = state_dir / RECORD_KEY_NAME
            key, key_error = load_key(key_path)
            outbox = open_outbox(config)
            opened(outbox.close)
            status_cache = open_status_cache(config)
            opened(status_cache.close)
            uploads = make_client(config)  # its own Session: never shared with verify
            opened(uploads.close)
            uploader = make_uploader(config, outbox, uploads)
            opened(uploader.stop)
            gate = open_gate(config.gate)
            opened(gate.release)  # closes the relay, then gives its pins back
            inputs = open_inputs(config)  # the trigger, LEDs and buzzer; nothing (no gpiozero) when none is set
            opened(inputs.close)
            trigger = inputs.trigger
            beats = make_client(config)  # the heartbeat's own Session, on its own thread
            opened(beats.close)
            faces = open_faces(config, make_client)  # None when [faces] is off or its engine is missing
            if faces is not None:
                opened(faces.close)
            display = open_display(
                config.display, language=config.device.language, site_name=config.device.site_name,
                pin_state_file=config.device.state_dir / PIN_LOCKOUT_NAME,
            )
            opened(display.close)
            if not isinstance(inputs.indicators, NoIndicators):  # the LEDs and buzzer follow every screen shown
                display = IndicatorDisplay(display, inputs.indicators)
            handheld = None
            pipeline_display = display
            if config.handheld.enabled:
                # Vehicle checks: the pipeline's screens go through the controller, which shows the vehicle
                # screens; its outcomes reach the controller first; the camera runs only while scanning.
                from hardware.battery import Battery
                from sentinel.handheld import HandheldController

                handheld = HandheldController.from_config(config, outbox=outbox, display=display, trigger=trigger,
                                                          battery=Battery(config.handheld.battery))
                opened(handheld.close)
                pipeline_display = handheld.display
                on_outcome = handheld.chain(on_outcome)
            scanner = open_scanner(config.scanner)
            opened(scanner.close)
            pipeline_for = partial(
                make_pipeline, config, make_decoder, verifier, outbox, gate, pipeline_display, status_cache, on_outcome,
                faces.matcher if faces is not None else None, scanner, trigger,
                faults=partial(fault_probe, gate, uploader, contact),
            )
            pipeline = pipeline_for(key) if key is not None else None
            if pipeline is not None:
                opened(pipeline.close)
            # a touchscreen shows the camera's view: in colour, as a person expects to see themselves
            camera = open_camera(config.camera, colour=config.display.type == "pygame")
            opened(camera.close)  # closing a camera that never started is a no-op; twice is fine
            source = RetryingSource(camera)  # a camera missing at start is retried, not fatal
            opened(source.close)
            if handheld is not None:
                from hardware.camera.gated import GatedSource

                source = handheld.gate_camera(source, GatedSource)
                opened(source.close)
            elif trigger is not None:  # a trigger without vehicle checks: scan only after a press
                from hardware.camera.gated import GatedSource

                source = GatedSource(source, trigger.armed, linger_s=config.handheld.camera_linger_s)
                opened(source.close)
            watchdog = Watchdog.from_environment()
            if watchdog.notifier.enabled:  # under systemd: READY=1 on the first read, WATCHDOG=1 only while healthy
                source = WatchedSource(source, watchdog, uploader_ok=lambda: uploader.status().state != "stopped")
                opened(source.close)  # STOPPING=1, then the camera
            kiosk = Kiosk(
                config=config, pipeline=pipeline, source=source, outbox=outbox, verifier=verifier, gate=gate,
                uploader=uploader, status_cache=status_cache, lock=lock, uploads=uploads, display=display,
                handheld=handheld, faces=faces, scanner=scanner, resources=stack.pop_all(), make_pipeline=pipeline_for, key_path=key_path,
                inputs=inputs, contact=contact, started_at=time.monotonic(), config_path=config_path,
            )
            kiosk.heartbeat = HeartbeatSender(beats, kiosk.heartbeat_body, contact=contact)
            kiosk.resources.callback(_quietly, kiosk.heartbeat.stop)  # closed first: before its client
            if fleet is not None:
                kiosk.fleet = fleet
                kiosk.resources.callback(_quietly, fleet.stop)  # online=false and a clean disconnect, first of all
        except BaseException:
            if gate is not None:  # the relay first, then the rest in reverse order of opening
                _quietly(gate.close)
            raise

    if key_error:
        log.critical("cannot write the record key %s (%s): no checks until it can be written; retrying", key_path, key_error)
        kiosk.alarms.add("record_key_unwritable")
    display.connect(status=lambda: StatusBar(**kiosk.status_fields()), actions=technician_actions(kiosk))
    return kiosk

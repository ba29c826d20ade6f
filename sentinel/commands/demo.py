"""`sentinel demo`: the kiosk on embedded defaults, on any laptop.

It starts the reference health-status service on a free loopback port with the demo people,
binds the kiosk to the demo site, and replays the bundled camera scenes (phones showing green,
yellow and red codes, a promotion QR, a stale test) through the same pipeline a kiosk runs.

`--profile handheld` is a handheld at a drive-through checkpoint instead (config/handheld.toml's
policy, no gate, vehicle checks): a scripted staff member starts a vehicle, types its plate on the
keypad (no touch needed), and the replay shows the driver's and two passengers' phones at the
window; one passenger's code has expired, staff tap her row and she shows the refreshed code;
the driver's phone is shown again at the end. One line per check, one for the vehicle's verdict.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import signal
import sys
import tempfile
import threading
from datetime import datetime
from pathlib import Path

from sentinel.config import (
    ASSETS,
    CredentialConfig,
    DeviceConfig,
    DisplayConfig,
    FakeGateConfig,
    HandheldConfig,
    HttpVerifierConfig,
    NoGateConfig,
    PolicyConfig,
    ReplayCameraConfig,
    SentinelConfig,
)
from sentinel.demo_data import DemoPerson
from sentinel.pipeline import CheckOutcome
from sentinel.screens import verdict_line

NAME = "demo"
HELP = "run the kiosk on embedded defaults"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this many seconds")
    parser.add_argument("--once", action="store_true", help="stop at the end of the replay instead of looping")
    parser.add_argument("--json", action="store_true", help="print JSON lines instead of text")
    parser.add_argument("--language", choices=["zh-CN", "en"], default="zh-CN", help="screen language (default zh-CN)")
    parser.add_argument("--fps", type=float, default=10.0, help="replay frame rate (default 10)")
    parser.add_argument("--scenes", type=Path, help="folder of camera scenes to replay (default: the profile's bundled scenes)")
    parser.add_argument(
        "--profile", choices=["kiosk", "handheld"], default="kiosk",
        help="kiosk (a gate, one person at a time) or handheld (a drive-through checkpoint: a scripted vehicle with three occupants)",
    )
    parser.add_argument(
        "--display", choices=["console", "pygame"], default="console", help="console (log lines) or pygame (a window, as on the kiosk)"
    )
    parser.add_argument(
        "--size", default="800x480",
        help="window size for --display pygame: 800x480 (landscape), 1080x1920 (pillar), any WIDTHxHEIGHT, or landscape/portrait",
    )
    parser.add_argument(
        "--fleet", type=int, metavar="N",
        help="instead of one kiosk: N simulated sentinels reporting to one MQTT broker, and the fleet dashboard (docs/fleet.md)",
    )
    parser.add_argument("--broker", metavar="HOST:PORT", help="with --fleet: a running MQTT broker (default: mosquitto on a free loopback port)")
    parser.add_argument("--listen", default="127.0.0.1:8090", metavar="HOST:PORT", help="with --fleet: where the dashboard is served")


def parse_size(text: str) -> tuple[int, int] | None:
    """'800x480' or a layout name → (width, height); None for anything else (a one-line error)."""
    from ui.layout import LAYOUTS

    if text in LAYOUTS:
        return LAYOUTS[text]
    match = re.fullmatch(r"(\d{3,4})[xX×](\d{3,4})", text.strip())
    return (int(match[1]), int(match[2])) if match else None


def _bad_size(args: argparse.Namespace) -> int:
    """2 (and one line on stderr) when --size is not a size, else 0."""
    if parse_size(getattr(args, "size", "800x480")) is None:
        print(f"sentinel demo: --size {args.size!r} is not a size: use WIDTHxHEIGHT, e.g. 800x480 (landscape) "
              "or 1080x1920 (pillar)", file=sys.stderr)
        return 2
    return 0


def demo_config(args: argparse.Namespace, state_dir: Path, service_url: str, token_file: Path) -> SentinelConfig:
    from sentinel.faces.demo import demo_faces_config, demo_scene_folder
    from sentinel.service.seed import DEMO_DEVICE_ID, DEMO_SITE

    return SentinelConfig(
        device=DeviceConfig(id=DEMO_DEVICE_ID, site_id=DEMO_SITE.id, site_name=DEMO_SITE.name, language=args.language, state_dir=state_dir),
        camera=ReplayCameraConfig(
            path=args.scenes or demo_scene_folder(state_dir), fps=args.fps, frames_per_image=max(1, round(args.fps * 1.2)), loop=not args.once
        ),
        verifier=HttpVerifierConfig(url=service_url, token_file=token_file),
        # The demo site: green passes, yellow goes to staff, NAT within 48 h.
        policy=PolicyConfig(allowed_colours=["green"], yellow="manual_check", nat_window_h=48, offline="deny"),
        gate=FakeGateConfig(pulse_s=1.0),
        display=_display(args),
        faces=demo_faces_config(),  # the resident without a phone (the NASA portrait) is let in by face
    )


#: the technician menu's PIN in the demo (hold the top-left corner for 3 s, or press F2)
DEMO_PIN = "123456"


def _display(args: argparse.Namespace) -> DisplayConfig:
    if args.display == "console":
        return DisplayConfig(type="console", result_s=1.0)
    from ui.pin import hash_pin

    width, height = parse_size(args.size) or (800, 480)
    return DisplayConfig(type="pygame", width=width, height=height, result_s=1.0, technician_pin_hash=hash_pin(DEMO_PIN))


def _printer(as_json: bool, language: str):
    def show(outcome: CheckOutcome) -> None:
        now = datetime.now().astimezone()
        if as_json:
            line = json.dumps(
                {
                    "time": now.isoformat(timespec="milliseconds"),
                    "credential_kind": outcome.credential_kind,
                    "status": outcome.status,
                    "verdict": outcome.verdict.kind.value,
                    "reason": outcome.verdict.reason,
                    "offline": outcome.offline,
                    "latency_ms": round(outcome.latency_s * 1000, 1),
                    "person": outcome.person,
                    "record_id": outcome.record_id,
                },
                ensure_ascii=False,
            )
        else:
            line = (
                f"{now:%H:%M:%S}  {outcome.credential_kind or 'rejected':<11}  {outcome.status or '-':<9}  "
                f"{outcome.verdict.kind.value:<12}  {outcome.person or '-':<4}  {outcome.latency_s * 1000:6.1f} ms  "
                f"{verdict_line(outcome.verdict, language)}{'  (offline)' if outcome.offline else ''}"
            )
        print(line, flush=True)

    return show


@contextlib.contextmanager
def _demo_service(args: argparse.Namespace, stop: threading.Event, seed: str):
    """What both demo profiles stand on: a quiet log, SIGTERM → stop, a throw-away state folder
    with the demo device's token (0600), and the reference service on a free loopback port."""
    from sentinel.service.seed import DEMO_DEVICE_TOKEN
    from sentinel.service.server import ReferenceServer

    if not args.verbose:
        # The check lines on stdout are the demo; -v shows every screen and call on stderr.
        logging.getLogger().setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with tempfile.TemporaryDirectory(prefix="sentinel-demo-") as tmp:
        state_dir = Path(tmp)
        token_file = state_dir / "device-token"
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(DEMO_DEVICE_TOKEN)
        with ReferenceServer(state_dir / "service.sqlite3", seed=seed) as server:
            yield state_dir, token_file, server


def run(args: argparse.Namespace) -> int:
    if args.fleet is not None:
        from sentinel.dashboard.simulate import run_demo

        return run_demo(args.fleet, broker=args.broker, listen=args.listen, duration=args.duration)
    if _bad_size(args):
        return 2
    if getattr(args, "profile", "kiosk") == "handheld":
        return run_handheld(args)
    from sentinel.kiosk import build_kiosk
    from ui.display import DisplayError

    stop = threading.Event()
    with _demo_service(args, stop, seed="demo-faces") as (state_dir, token_file, server):
        config = demo_config(args, state_dir, server.url, token_file)
        try:
            kiosk = build_kiosk(config, on_outcome=_printer(args.json, args.language))
        except DisplayError as e:
            print(f"sentinel demo: {e}", file=sys.stderr)
            return 1
        if not args.json:
            print(f"demo: {config.device.site_name}, service {server.url}, scenes {config.camera.path}", file=sys.stderr)
            if args.display == "pygame":
                print(f"demo: technician menu PIN {DEMO_PIN} (hold the top-left corner 3 s, or F2)", file=sys.stderr)
        try:
            # a few seconds at the end for the uploader to deliver the last records
            kiosk.run(stop=stop, duration_s=args.duration, until_finished=args.once, drain_s=5.0)
        except KeyboardInterrupt:
            pass
        if not args.json:
            _report_delivery(server.url, config)
    return 0


def _report_delivery(url: str, config: SentinelConfig) -> None:
    """The other half of the demo: the check records, as the service now holds them."""
    from sentinel.client import ClientError, ServiceClient, read_token
    from sentinel.outbox import inspect

    client = ServiceClient(url, read_token(config.verifier.token_file), device_id=config.device.id, site_id=config.device.site_id)
    try:
        stored = client.list_records()
    except ClientError as e:
        print(f"demo: cannot read the service's records: {e}", file=sys.stderr)
        return
    finally:
        client.close()
    health = inspect(config.outbox_path).health
    waiting = health.depth if health else "?"
    print(f"demo: {len(stored)} check records delivered to the service, {waiting} waiting in the outbox", file=sys.stderr)


# --- `--profile handheld`: a drive-through checkpoint ----------------------------------------------

#: passenger 1's code refreshed in the app (what she first showed was an expired screenshot). The
#: reference service keeps one token per person row, so the demo adds the new token as a row of its
#: own without an ID number (ID numbers are unique there); a real service gives the person a new token.
DEMO_VEHICLE_REFRESHED = DemoPerson("expired_refreshed", "V8cX3zL5nB1mK7qT", "赵敏", "", "green", "negative", 12.0, None, 3)
DEMO_PLATE = "沪A12345"
DEMO_CHECKPOINT = {"zh-CN": "演示检查站 3号道", "en": "Demo checkpoint, lane 3"}


def seed_vehicle_demo(store, now: datetime) -> None:
    """The demo world plus passenger 1's refreshed code (call after `--seed demo`)."""
    from datetime import timedelta

    from sentinel.service.store import PersonRow

    p = DEMO_VEHICLE_REFRESHED
    row = PersonRow(
        person_id=f"demo-{p.key}", name=p.name, colour=p.colour, token=p.token, nat_result=p.nat_result,
        nat_sampled_at=now - timedelta(hours=p.nat_hours_ago or 0), antigen=p.antigen, doses=p.doses,
    )
    store.add_person(row, now, replace=True)


def handheld_config(args: argparse.Namespace, state_dir: Path, service_url: str, token_file: Path) -> SentinelConfig:
    """The handheld profile (config/handheld.toml's policy: yellow is refused at a checkpoint, and
    offline checks pass flagged) bound to the demo site, replaying the vehicle scenes."""
    from sentinel.service.seed import DEMO_DEVICE_ID, DEMO_SITE

    fps = args.fps
    display = _display(args)
    return SentinelConfig(
        device=DeviceConfig(
            id=DEMO_DEVICE_ID, site_id=DEMO_SITE.id, site_name=DEMO_CHECKPOINT[args.language], language=args.language, state_dir=state_dir
        ),
        camera=ReplayCameraConfig(path=args.scenes or ASSETS / "vehicle_scenes", fps=fps, frames_per_image=max(1, round(fps * 1.2)),
                                  loop=not args.once),
        # A phone is held at the window for about a second; 2 s of debounce lets the replay's next
        # vehicle (the same driver, looping) be checked again, and the vehicle flags repeats itself.
        credentials=CredentialConfig(debounce_s=2.0),
        verifier=HttpVerifierConfig(url=service_url, token_file=token_file),
        policy=PolicyConfig(allowed_colours=["green"], yellow="deny", nat_window_h=48, offline="allow_and_flag"),
        gate=NoGateConfig(type="none"),
        display=display.model_copy(update={"result_s": 1.0}),
        handheld=HandheldConfig(enabled=True, plate="optional", summary_s=1.5, camera_linger_s=3.0, battery="none"),
    )


def _manifest_codes(scenes: Path) -> int:
    """How many phones the scenes show (the script finishes the vehicle after the last)."""
    try:
        manifest = json.loads((scenes / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0
    return sum(1 for payload in manifest.values() if payload)


class VehicleScript:
    """The demo's staff member, driven by the controller's events: starts the vehicle and types the
    plate on the keypad (no touch), taps the row of a person whose code had expired so that her
    refreshed code counts for her, and finishes after the last phone; in a loop, the next vehicle
    starts when the verdict has been on screen for its time."""

    def __init__(self, controller, *, plate: str, codes: int, loop: bool, language: str, as_json: bool, stop: threading.Event):
        self.controller = controller
        self.plate = plate
        self.codes = codes
        self.loop = loop
        self.language = language
        self.as_json = as_json
        self.stop = stop
        self.checks_seen = 0
        self.vehicles = 0
        self.device_s = 0.0
        self.finished: list = []

    def begin(self) -> None:
        c = self.controller
        c.press("start")
        c.press("plate")
        for ch in self.plate:  # on the keypad, as staff would type it
            c.press(f"key:{ch}")
        c.press("key:ok")
        self.checks_seen = 0
        self.device_s = 0.0

    def on_event(self, event) -> None:
        from sentinel.vehicle import AddKind

        if event.kind == "check":
            self.checks_seen += 1
            self.device_s += event.check.latency_s
            self._print_check(event)
            add = event.add
            if add.kind == AddKind.NEW and add.occupant is not None and event.check.verdict.reason == "expired_code":
                self.controller.press(f"rescan:{add.occupant.seat}")  # "refresh your code, please", and a tap on her row
            if self.codes and self.checks_seen >= self.codes:
                self.controller.finish()
        elif event.kind == "finished":
            self.vehicles += 1
            self.finished.append(event)
            self._print_vehicle(event)
            delay = self.controller.settings.summary_s
            if self.loop:
                threading.Timer(delay, self.begin).start()
            else:
                threading.Timer(delay, self.stop.set).start()  # the verdict stays up for its time, then the demo ends

    def _print_check(self, event) -> None:
        from sentinel.vehicle import seat_label

        now = datetime.now().astimezone()
        check, add = event.check, event.add
        seat = add.occupant.seat if add.occupant else None
        who = seat_label(seat, self.language) if seat else "-"
        words = check.verdict.text(self.language)
        if add.kind.value == "duplicate":
            words = ("与{0}为同一凭证，不重复计数" if self.language == "zh-CN" else "same as {0}: not counted twice").format(who)
        if self.as_json:
            line = json.dumps({
                "event": "check", "time": now.isoformat(timespec="milliseconds"), "seat": seat, "add": add.kind.value,
                "credential_kind": check.credential_kind, "status": check.status, "verdict": check.verdict.kind.value,
                "reason": check.verdict.reason, "offline": check.offline, "person": check.name_masked,
                "latency_ms": round(check.latency_s * 1000, 1), "record_id": check.record_id,
            }, ensure_ascii=False)
        else:
            line = (f"{now:%H:%M:%S}  {_pad(who, 11)}  {add.kind.value:<9}  {check.status or '-':<8}  {check.verdict.kind.value:<12}  "
                    f"{_pad(check.name_masked or '-', 6)}  {check.latency_s * 1000:6.1f} ms  {words}{'  (offline)' if check.offline else ''}")
        print(line, flush=True)

    def _print_vehicle(self, event) -> None:
        from sentinel.vehicle import vehicle_reason_text

        session, verdict = event.session, event.verdict
        counts = session.counts()
        device_ms = (self.device_s + event.finish_s) * 1000
        if self.as_json:
            line = json.dumps({
                "event": "vehicle", "plate": session.plate, "verdict": verdict.kind.value, "reason": verdict.reason,
                "seats": list(verdict.seats), "occupants": counts["occupants"], "rescans": counts["rescans"],
                "duplicates": counts["duplicates"], "offline": session.offline, "device_ms": round(device_ms, 1),
                "record_id": event.record_id, "durable": event.durable,
            }, ensure_ascii=False)
        else:
            zh = self.language == "zh-CN"
            line = (f"vehicle {session.plate or '-'}: {verdict.kind.value} ({vehicle_reason_text(verdict, self.language)}); "
                    + (f"{counts['occupants']}人，重扫{counts['rescans']}次，重复出示{counts['duplicates']}次；" if zh else
                       f"{counts['occupants']} people, {counts['rescans']} re-scan, {counts['duplicates']} shown twice; ")
                    + f"device {device_ms:.1f} ms; record {event.record_id}")
        print(line, flush=True)


def _pad(text: str, width: int) -> str:
    """`text` padded to `width` terminal columns (a Chinese character takes two)."""
    import unicodedata

    columns = sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)
    return text + " " * max(0, width - columns)


def run_handheld(args: argparse.Namespace) -> int:
    from datetime import UTC

    from sentinel.kiosk import build_kiosk
    from ui.display import DisplayError

    stop = threading.Event()
    with _demo_service(args, stop, seed="demo") as (state_dir, token_file, server):
        seed_vehicle_demo(server.store, datetime.now(UTC))
        config = handheld_config(args, state_dir, server.url, token_file)
        try:
            kiosk = build_kiosk(config)
        except DisplayError as e:
            print(f"sentinel demo: {e}", file=sys.stderr)
            return 1
        controller = kiosk.handheld
        script = VehicleScript(controller, plate=DEMO_PLATE, codes=_manifest_codes(config.camera.path), loop=not args.once,
                               language=args.language, as_json=args.json, stop=stop)
        controller.subscribe(script.on_event)
        if not args.json:
            print(f"demo: {config.device.site_name}, service {server.url}, scenes {config.camera.path}", file=sys.stderr)
            if args.display == "pygame":
                print(f"demo: technician menu PIN {DEMO_PIN} (hold the top-left corner 3 s, or F2)", file=sys.stderr)
        script.begin()
        try:
            kiosk.run(stop=stop, duration_s=args.duration, until_finished=args.once, drain_s=5.0)
        except KeyboardInterrupt:
            pass
        if args.once and not script.vehicles:
            print(f"demo: the vehicle was not finished: {script.checks_seen} of {script.codes} codes were read", file=sys.stderr)
        if not args.json:
            _report_delivery(server.url, config)
            _report_vehicles(server.url, config)
    return 0 if (script.vehicles or not args.once) else 1


def _report_vehicles(url: str, config: SentinelConfig) -> None:
    import requests

    from sentinel.client import read_token

    try:
        answer = requests.get(
            f"{url}/v1/vehicle-sessions", params={"device_id": config.device.id},
            headers={"Authorization": f"Bearer {read_token(config.verifier.token_file)}"}, timeout=5,
        )
        sessions = answer.json().get("sessions", []) if answer.ok else []
    except (requests.RequestException, ValueError) as e:
        print(f"demo: cannot read the service's vehicle sessions: {e}", file=sys.stderr)
        return
    print(f"demo: {len(sessions)} vehicle record{'' if len(sessions) == 1 else 's'} delivered to the service", file=sys.stderr)

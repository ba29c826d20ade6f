"""`sentinel demo`: the kiosk on embedded defaults, on any laptop.

It starts the reference health-status service on a free loopback port with the demo people,
binds the kiosk to the demo site, and replays the bundled camera scenes (phones showing green,
yellow and red codes, a promotion QR, a stale test) through the same pipeline a kiosk runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import tempfile
import threading
from datetime import datetime
from pathlib import Path

from sentinel.config import (
    ASSETS,
    DeviceConfig,
    DisplayConfig,
    FakeGateConfig,
    HttpVerifierConfig,
    PolicyConfig,
    ReplayCameraConfig,
    SentinelConfig,
)
from sentinel.pipeline import CheckOutcome

NAME = "demo"
HELP = "run the kiosk on embedded defaults"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this many seconds")
    parser.add_argument("--once", action="store_true", help="stop at the end of the replay instead of looping")
    parser.add_argument("--json", action="store_true", help="print JSON lines instead of text")
    parser.add_argument("--language", choices=["zh-CN", "en"], default="zh-CN", help="screen language (default zh-CN)")
    parser.add_argument("--fps", type=float, default=10.0, help="replay frame rate (default 10)")
    parser.add_argument("--scenes", type=Path, default=ASSETS / "scenes", help="folder of camera scenes to replay")
    parser.add_argument(
        "--display", choices=["console", "pygame"], default="console", help="console (log lines) or pygame (a window, as on the kiosk)"
    )
    parser.add_argument("--size", default="800x480", help="window size for --display pygame: 800x480 (landscape) or 1080x1920 (pillar)")


def demo_config(args: argparse.Namespace, state_dir: Path, service_url: str, token_file: Path) -> SentinelConfig:
    from sentinel.service.seed import DEMO_DEVICE_ID, DEMO_SITE

    return SentinelConfig(
        device=DeviceConfig(id=DEMO_DEVICE_ID, site_id=DEMO_SITE.id, site_name=DEMO_SITE.name, language=args.language, state_dir=state_dir),
        camera=ReplayCameraConfig(path=args.scenes, fps=args.fps, frames_per_image=max(1, round(args.fps * 1.2)), loop=not args.once),
        verifier=HttpVerifierConfig(url=service_url, token_file=token_file),
        # The demo site: green passes, yellow goes to staff, NAT within 48 h.
        policy=PolicyConfig(allowed_colours=["green"], yellow="manual_check", nat_window_h=48, offline="deny"),
        gate=FakeGateConfig(pulse_s=1.0),
        display=_display(args),
    )


#: the technician menu's PIN in the demo (hold the top-left corner for 3 s, or press F2)
DEMO_PIN = "1234"


def _display(args: argparse.Namespace) -> DisplayConfig:
    if args.display == "console":
        return DisplayConfig(type="console", result_s=1.0)
    from ui.pin import hash_pin

    width, _, height = args.size.partition("x")
    return DisplayConfig(type="pygame", width=int(width), height=int(height), result_s=1.0, technician_pin_hash=hash_pin(DEMO_PIN))


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
                f"{outcome.verdict.text(language)}{'  (offline)' if outcome.offline else ''}"
            )
        print(line, flush=True)

    return show


def run(args: argparse.Namespace) -> int:
    from sentinel.kiosk import build_kiosk
    from sentinel.service.seed import DEMO_DEVICE_TOKEN
    from sentinel.service.server import ReferenceServer
    from ui.console import DisplayError

    if not args.verbose:
        # The check lines on stdout are the demo; -v shows every screen and call on stderr.
        logging.getLogger().setLevel(logging.WARNING)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with tempfile.TemporaryDirectory(prefix="sentinel-demo-") as tmp:
        state_dir = Path(tmp)
        token_file = state_dir / "device-token"
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(DEMO_DEVICE_TOKEN)
        with ReferenceServer(state_dir / "service.sqlite3", seed="demo") as server:
            config = demo_config(args, state_dir, server.url, token_file)
            try:
                kiosk = build_kiosk(config, on_outcome=_printer(args.json, args.language))
            except DisplayError as e:
                print(f"sentinel demo: {e}", file=sys.stderr)
                return 1
            if not args.json:
                print(f"demo: {config.device.site_name}, service {server.url}, scenes {args.scenes}", file=sys.stderr)
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

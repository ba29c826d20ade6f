"""`sentinel doctor`: the checklist a technician runs on site, one line per check.

    PASS  camera     picamera2:0 delivers 29.7 frames/s (640x480)
    FAIL  clock      not synchronised (NTP) -- hint: the Pi has no battery clock: …
    SKIP  relay      gate.type = none: no relay on this unit

A WARN line works but is unsafe (the network check with verifier.allow_insecure_http on) and does
not count as a failure. Exit status 0 when nothing failed, 1 when anything did, 2 when the command
line is wrong. The relay
is clicked only after the technician confirms (or with --yes). While the kiosk service runs it
holds the camera, the relay, the scanner and the screen: those checks are skipped with a hint to
stop it first (`sudo systemctl stop sentinel`); the others read without disturbing it.

Run it as root (`sudo sentinel doctor`): the device token is root's. Nothing here writes to the
state directory, so files there never end up owned by root.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from sentinel.commands.doctor_devices import FAIL, PASS, SKIP, WARN, DeviceChecks, Result, _one_line

NAME = "doctor"
HELP = "on-site checklist: camera, decoder, relay, display, font, clock, disk, service and token, outbox, fleet broker"

SERVICE = "sentinel.service"
BOOT_CONFIGS = ("/boot/firmware/config.txt", "/boot/config.txt")
MIN_FREE_BYTES = 200 * 1024 * 1024
MIN_FREE_FRACTION = 0.05


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="/etc/sentinel/sentinel.toml", help="config file (default /etc/sentinel/sentinel.toml)")
    parser.add_argument("--yes", action="store_true", help="click the relay without asking (the way must be clear)")
    parser.add_argument("--no-relay", action="store_true", help="never click the relay")
    parser.add_argument("--camera-seconds", type=float, default=3.0, metavar="S", help="how long to count camera frames (default 3)")
    parser.add_argument("--json", action="store_true", help="one JSON object per check instead of text")


class Doctor(DeviceChecks):
    """The checks, in the order a technician wants them. Every check is guarded: an exception
    becomes a FAIL line naming it, never a traceback, and the next check still runs."""

    def __init__(
        self,
        config_path: str | Path,
        *,
        yes: bool = False,
        relay: bool = True,
        camera_seconds: float = 3.0,
        ask: Callable[[str], bool] | None = None,
        command: Callable[[list[str]], tuple[int, str]] | None = None,
        boot_configs: tuple[str, ...] = BOOT_CONFIGS,
        env: dict[str, str] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.config_path = Path(config_path)
        self.yes = yes
        self.relay = relay
        self.camera_seconds = camera_seconds
        self.ask = ask or _ask_on_terminal
        self.command = command or _command
        self.boot_configs = boot_configs
        self.env = os.environ if env is None else env
        self.now = now
        self.config: Any = None
        self.service_active = False
        self.camera_ok: bool | None = None

    # --- the list ------------------------------------------------------------------------------

    def checks(self) -> list[tuple[str, Callable[[], Result | tuple[str, str, str] | tuple[str, str]]]]:
        return [
            ("config", self.check_config),
            ("service", self.check_service),
            ("camera", self.check_camera),
            ("decoder", self.check_decoder),
            ("scanner", self.check_scanner),
            ("relay", self.check_relay),
            ("gpio-boot", self.check_boot_gpio),
            ("inputs", self.check_inputs),
            ("display", self.check_display),
            ("font", self.check_font),
            ("clock", self.check_clock),
            ("disk", self.check_disk),
            ("network", self.check_network),
            ("fleet", self.check_fleet),
            ("outbox", self.check_outbox),
        ]

    def run(self) -> Iterator[Result]:
        for name, check in self.checks():
            try:
                outcome = check()
            except Exception as e:  # noqa: BLE001 - a broken check is a failed check, not a crash
                outcome = (FAIL, f"the check itself failed: {type(e).__name__}: {_one_line(str(e))}", "report this with `journalctl -u sentinel`")
            yield outcome if isinstance(outcome, Result) else Result(name, *outcome)

    # --- config and service --------------------------------------------------------------------

    def check_config(self):
        from sentinel.config import ConfigError, load_config

        try:
            self.config = load_config(self.config_path)
        except ConfigError as e:
            return FAIL, f"{e.path}: {'; '.join(e.problems)}", "fix it (sentinel check-config FILE names each problem), or `sudo ./install.sh` to create it"
        c = self.config
        try:
            from hardware.inputs import used_pins

            used_pins(c)
        except ValueError as e:
            return FAIL, f"{self.config_path}: {e}", "give every device a pin of its own"
        return PASS, (
            f"{self.config_path}: device {c.device.id} at site {c.device.site_id}, camera {c.camera.type}, "
            f"gate {c.gate.type}, scanner {c.scanner.type}, display {c.display.type}"
        )

    def check_service(self):
        rc, out = self.command(["systemctl", "show", SERVICE, "--property=LoadState,ActiveState,SubState,NRestarts,WatchdogUSec"])
        if rc != 0 or "LoadState=" not in out:
            return SKIP, "systemd is not running here (a laptop or container): the unit is not checked"
        props = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        if props.get("LoadState") != "loaded":
            return FAIL, f"{SERVICE} is not installed", "sudo ./install.sh installs and enables it"
        self.service_active = props.get("ActiveState") == "active"
        restarts = props.get("NRestarts", "0")
        state = f"{props.get('ActiveState')} ({props.get('SubState')}), restarted {restarts} time{'' if restarts == '1' else 's'}"
        if not self.service_active:
            rc, enabled = self.command(["systemctl", "is-enabled", SERVICE])
            if enabled.strip() != "enabled":
                return FAIL, f"{SERVICE} {state}, not enabled: it will not start at boot", "sudo systemctl enable --now sentinel"
            return PASS, f"{SERVICE} {state}; enabled (the device checks below may use the hardware)"
        note = "; the kiosk holds the camera, relay, scanner and screen: their checks are skipped"
        if restarts not in ("0", ""):
            return PASS, f"{SERVICE} {state}{note} (see why: journalctl -u sentinel -b)"
        return PASS, f"{SERVICE} {state}{note}"

    def check_clock(self):
        now = self.now()
        local = now.astimezone()
        shown = local.strftime("%Y-%m-%d %H:%M:%S %Z")
        if now.year < 2024:
            return FAIL, f"the clock says {shown}: it is wrong", "connect the network so NTP can set it; NAT windows and records depend on it"
        rc, out = self.command(["timedatectl", "show", "--property=NTPSynchronized", "--value"])
        synced = out.strip() if rc == 0 else ""
        if synced == "yes":
            return PASS, f"synchronised (NTP); {shown}"
        if synced == "no":
            return FAIL, f"not synchronised (NTP); the clock says {shown}", (
                "the Pi has no battery clock: it needs NTP over the network (timedatectl timesync-status); "
                "until then NAT windows and record times may be off"
            )
        if Path("/run/systemd/timesync/synchronized").exists():
            return PASS, f"synchronised (systemd-timesyncd); {shown}"
        return SKIP, f"cannot tell whether the clock is synchronised here (no timedatectl); it says {shown}"

    def check_disk(self):
        state_dir = self.config.device.state_dir if self.config is not None else Path("/var/lib/sentinel")
        where = state_dir
        while not where.exists() and where != where.parent:
            where = where.parent
        usage = shutil.disk_usage(where)
        free_mb = usage.free / 1024 / 1024
        fraction = usage.free / usage.total if usage.total else 0.0
        message = f"{free_mb:,.0f} MB free ({fraction:.0%}) for {state_dir}"
        if usage.free < MIN_FREE_BYTES or fraction < MIN_FREE_FRACTION:
            return FAIL, message, "free space: sudo journalctl --vacuum-size=50M; sudo apt clean; deliver the outbox (sentinel outbox flush)"
        return PASS, message

    # --- service and outbox --------------------------------------------------------------------

    def check_network(self):
        outcome = self._check_network()
        v = self.config.verifier if self.config is not None else None
        if v is None or not getattr(v, "allow_insecure_http", False):
            return outcome
        status, message, *hint = outcome
        insecure = "verifier.allow_insecure_http = true: the token and every scanned code may cross the network unencrypted"
        if status == PASS:
            return WARN, f"{message}; but {insecure}", "bench LAN only: use https and set verifier.allow_insecure_http = false"
        return status, f"{message}; also {insecure}", *hint

    def check_fleet(self):
        if self.config is None:
            return SKIP, "no usable config: the fleet broker is not checked", "fix the config first"
        from sentinel.fleet.doctor import check_fleet

        return check_fleet(self.config)

    def _check_network(self):
        if self.config is None:
            return SKIP, "no usable config: the service is not checked", "fix the config first"
        from sentinel.client import ClientError, ServiceClient, read_token
        from sentinel.systemd_credentials import resolve_token_file

        v = self.config.verifier
        token_file = resolve_token_file(v.token_file, self.env)
        try:
            token = read_token(token_file)
        except ClientError as e:
            hint = "sudo sentinel bind --server URL --site SITE --code CODE"
            if "permission denied" in str(e):
                hint = "run as root: sudo sentinel doctor"
            return FAIL, str(e), hint
        client = ServiceClient(
            v.url, token, device_id=self.config.device.id, site_id=self.config.device.site_id,
            ca_bundle=v.ca_bundle, connect_timeout_s=max(v.connect_timeout_s, 2.0),
        )
        from sentinel import __version__
        from sentinel.contract import Heartbeat

        depth, oldest = _outbox_depth(self.config)
        camera = {True: "ok", False: "fault"}.get(self.camera_ok, "unknown")
        beat = Heartbeat(version=__version__, queue_depth=depth, oldest_record_age_s=oldest, camera=camera)
        started = time.monotonic()
        try:
            client.heartbeat(beat, timeout_s=10.0)
        except ClientError as e:
            if e.http_status in (401, 403) or "unauthorized" in e.code or "revoked" in e.code:
                return FAIL, f"{v.url} refused the token ({e.code})", "the device was revoked or bound elsewhere: bind it again (sudo sentinel bind …)"
            if e.code == "tls":
                return FAIL, f"{v.url}: {e}", "is the clock right (see clock)? is verifier.ca_bundle the service's CA?"
            if e.code in ("connection", "timeout"):
                return FAIL, f"{v.url}: {e}", "check the network, DNS and firewall; meanwhile the kiosk decides offline (policy.offline)"
            return FAIL, f"{v.url}: {e} ({e.code})", "check verifier.url"
        finally:
            client.close()
        took = (time.monotonic() - started) * 1000
        source = " (systemd credential)" if token_file != Path(v.token_file) else ""
        return PASS, f"{v.url} answered in {took:.0f} ms; token{source} accepted for device {self.config.device.id}"

    def check_outbox(self):
        if self.config is None:
            return SKIP, "no usable config"
        from sentinel.outbox import inspect

        seen = inspect(self.config.outbox_path, _limits(self.config), self.now())
        if seen.health is None:
            return FAIL, f"{seen.path} cannot be read: {seen.error}", "sentinel outbox status; sentinel outbox export --from FILE OUT to rescue the records"
        h = seen.health
        oldest = "" if h.oldest_age_s is None else f", oldest {h.oldest_age_s / 3600:.1f} h old"
        last = seen.meta.get("last_success_at")
        message = f"{h.depth:,} records waiting{oldest}; last upload {last or 'never'}"
        if not seen.exists:
            message = f"no outbox yet at {seen.path} (made by the first check)"
        if h.level == "critical":
            return FAIL, message + "; " + "; ".join(h.messages("en")), "sentinel outbox status; sentinel outbox flush (or export) to deliver the backlog"
        if h.alarms:
            return PASS, message + "; alarm: " + "; ".join(h.messages("en"))
        return PASS, message


# --- helpers ----------------------------------------------------------------------------------


def _limits(config: Any):
    from sentinel.outbox import OutboxLimits

    return OutboxLimits.from_config(config.outbox)


def _outbox_depth(config: Any) -> tuple[int, float | None]:
    try:
        from sentinel.outbox import inspect

        h = inspect(config.outbox_path, _limits(config)).health
        return (h.depth, h.oldest_age_s) if h is not None else (0, None)
    except Exception:  # noqa: BLE001 - the heartbeat's numbers are best effort
        return 0, None


def _command(argv: list[str]) -> tuple[int, str]:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return 127, str(e)
    return result.returncode, result.stdout


def _ask_on_terminal(question: str) -> bool | None:
    """True/False from the technician; None when there is no terminal to ask on."""
    if not sys.stdin.isatty():
        return None
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return None
    return answer.strip().lower() in ("y", "yes", "是", "好")


def _close_gates_on_signals() -> None:
    """The relay test must end closed even when the technician presses Ctrl-C or the SSH session drops."""
    from hardware.gate import install_signal_guard

    if threading.current_thread() is threading.main_thread():
        install_signal_guard()


def run(args: argparse.Namespace) -> int:
    import logging

    if not getattr(args, "verbose", 0):
        logging.getLogger().setLevel(logging.ERROR)  # each check says what matters; -v shows the log too
    _close_gates_on_signals()
    doctor = Doctor(args.config, yes=args.yes, relay=not args.no_relay, camera_seconds=args.camera_seconds)
    return report(doctor, sys.stdout, as_json=args.json)


def report(doctor: Doctor, out: TextIO, *, as_json: bool = False) -> int:
    failed = 0
    for result in doctor.run():
        failed += result.status == FAIL
        print(json.dumps(result.as_dict(), ensure_ascii=False) if as_json else result.line(), file=out, flush=True)
    if not as_json:
        print("all checks passed" if not failed else f"{failed} check{'s' if failed > 1 else ''} failed", file=out)
    return 1 if failed else 0

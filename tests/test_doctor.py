"""`sentinel doctor` on a machine without a camera, GPIO or systemd: the replay camera, the mock pin
factory, a real reference service on loopback, and scripted answers from systemctl/timedatectl."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from collections import namedtuple
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sentinel.commands.doctor import FAIL, PASS, SKIP, Doctor, report
from sentinel.service.seed import DEMO_DEVICE_ID, DEMO_DEVICE_TOKEN
from sentinel.service.seed import DEMO_SITE as _DEMO_SITE

pytestmark = pytest.mark.slow  # runs whole programs: left out of the quick loop (README)

DEMO_SITE = getattr(_DEMO_SITE, "id", _DEMO_SITE)
from sentinel.service.server import ReferenceServer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    with ReferenceServer(tmp_path_factory.mktemp("svc") / "svc.db", seed="demo") as server:
        yield server


def write_config(tmp_path: Path, url: str, *, token: str = DEMO_DEVICE_TOKEN, extra: str = "", camera: str | None = None) -> Path:
    token_file = tmp_path / "device-token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    camera = camera or f'[camera]\ntype = "replay"\npath = "{ROOT / "sentinel/assets/scenes"}"\nfps = 20\nframes_per_image = 1\nloop = true\n'
    config = tmp_path / "sentinel.toml"
    config.write_text(
        f'[device]\nid = "{DEMO_DEVICE_ID}"\nsite_id = "{DEMO_SITE}"\nstate_dir = "{tmp_path / "state"}"\n'
        f'[verifier]\ntype = "http"\nurl = "{url}"\ntoken_file = "{token_file}"\n'
        f"{camera}{extra}"
    )
    return config


def no_systemd(argv):
    return 127, "not here"


def doctor(config: Path, **kw) -> Doctor:
    kw.setdefault("command", no_systemd)
    kw.setdefault("camera_seconds", 0.6)
    kw.setdefault("ask", lambda question: None)
    kw.setdefault("env", {})
    return Doctor(config, **kw)


def results(d: Doctor) -> dict[str, tuple[str, str, str]]:
    return {r.check: (r.status, r.message, r.hint) for r in d.run()}


# --- the whole command --------------------------------------------------------------------------


def test_a_healthy_dev_machine_passes(tmp_path, service):
    config = write_config(tmp_path, service.url)
    result = subprocess.run(
        [sys.executable, "-m", "sentinel", "doctor", "--config", str(config), "--camera-seconds", "1.5"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    lines = result.stdout.splitlines()
    by_check = {line.split()[1]: line for line in lines[:-1]}
    assert result.returncode == 0, result.stdout + result.stderr
    assert lines[-1] == "all checks passed"
    for check in ("config", "camera", "decoder", "font", "disk", "network", "outbox"):
        assert by_check[check].startswith("PASS"), by_check[check]
    assert "frames/s (640x480)" in by_check["camera"]
    assert "token accepted for device" in by_check["network"]
    assert all(line[:4] in (PASS, FAIL, SKIP) for line in lines[:-1])
    assert "Traceback" not in result.stderr and not (tmp_path / "state").exists()  # nothing written


def test_json_lines(tmp_path, service):
    out = io.StringIO()
    code = report(doctor(write_config(tmp_path, service.url)), out, as_json=True)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert code == 0 and {r["status"] for r in rows} <= {PASS, SKIP}
    assert [r["check"] for r in rows][:3] == ["config", "service", "camera"]


def test_a_missing_config_fails_and_the_rest_still_runs(tmp_path):
    out = io.StringIO()
    code = report(doctor(tmp_path / "nope.toml"), out)
    text = out.getvalue()
    assert code == 1
    assert "FAIL  config" in text and "file not found" in text and "sudo ./install.sh" in text
    assert "SKIP  camera" in text and "fix the config first" in text
    assert "PASS  decoder" in text and "PASS  disk" in text  # checks that need no config still run
    assert text.strip().endswith("1 check failed")


# --- service and token --------------------------------------------------------------------------


def test_a_refused_token(tmp_path, service):
    r = results(doctor(write_config(tmp_path, service.url, token="not-the-token")))
    status, message, hint = r["network"]
    assert status == FAIL and "refused the token" in message and "bind it again" in hint


def test_an_unreachable_service(tmp_path):
    import socket

    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    status, message, hint = results(doctor(write_config(tmp_path, f"http://127.0.0.1:{port}")))["network"]
    assert status == FAIL and "cannot reach" in message and "offline" in hint


def test_no_token_file(tmp_path, service):
    config = write_config(tmp_path, service.url)
    (tmp_path / "device-token").unlink()
    status, message, hint = results(doctor(config))["network"]
    assert status == FAIL and "does not exist" in message and "sentinel bind" in hint


def test_the_systemd_credential_copy_is_used(tmp_path, service):
    config = write_config(tmp_path, service.url, token="stale")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "device-token").write_text(DEMO_DEVICE_TOKEN)
    status, message, _ = results(doctor(config, env={"CREDENTIALS_DIRECTORY": str(creds)}))["network"]
    assert status == PASS and "token (systemd credential) accepted" in message


# --- camera, decoder, scanner ---------------------------------------------------------------------


def test_a_camera_that_cannot_open(tmp_path, service):
    config = write_config(tmp_path, service.url, camera='[camera]\ntype = "opencv"\ndevice = "/dev/video99"\n')
    status, message, hint = results(doctor(config))["camera"]
    assert status == FAIL and "/dev/video99" in message and "video group" in hint


def test_decoder_order_from_the_config(tmp_path, service):
    config = write_config(tmp_path, service.url, extra='[decoder]\norder = ["pyzbar"]\n')
    status, message, _ = results(doctor(config))["decoder"]
    assert status == PASS and message.startswith("test code read by pyzbar") and "zxing" not in message


def test_a_scanner_that_is_not_there(tmp_path, service):
    pytest.importorskip("evdev")
    extra = '[scanner]\ntype = "hid"\ndevice = "/dev/input/by-id/none-such-event-kbd"\n'
    status, message, hint = results(doctor(write_config(tmp_path, service.url, extra=extra)))["scanner"]
    assert status == FAIL and "none-such" in message and "input group" in hint


# --- relay and inputs -------------------------------------------------------------------------------

GATE = '[gate]\ntype = "gpio"\npin = 17\npulse_s = 0.2\npin_factory = "mock"\n'


@pytest.fixture
def mock_pins():
    from gpiozero import Device

    from hardware import pins

    yield
    for factory in pins._factories.values():
        factory.reset()
    pins._factories.clear()
    Device.pin_factory = None


def test_the_relay_clicks_only_after_confirmation(tmp_path, service, mock_pins):
    config = write_config(tmp_path, service.url, extra=GATE)
    asked = []
    status, message, _ = results(doctor(config, ask=lambda q: asked.append(q) or True))["relay"]
    assert status == PASS and "relay on GPIO 17 (mock, active high) clicked: open" in message and "closed again" in message
    assert asked and "GPIO 17" in asked[0] and "way clear" in asked[0]


def test_a_refusal_or_no_terminal_leaves_the_relay_alone(tmp_path, service, mock_pins):
    config = write_config(tmp_path, service.url, extra=GATE)
    assert results(doctor(config, ask=lambda q: False))["relay"][:2] == (SKIP, "not clicked: not confirmed")
    status, message, hint = results(doctor(config))["relay"]
    assert status == SKIP and "no terminal" in message and "--yes" in hint
    assert results(doctor(config, relay=False))["relay"][0] == SKIP


def test_yes_clicks_without_asking(tmp_path, service, mock_pins):
    config = write_config(tmp_path, service.url, extra=GATE)

    def never(question):
        raise AssertionError("asked despite --yes")

    assert results(doctor(config, yes=True, ask=never))["relay"][0] == PASS


def test_the_sensor_is_reported(tmp_path, service, mock_pins):
    gate = GATE + "sensor_pin = 27\npass_window_s = 0.3\n"
    status, message, _ = results(doctor(write_config(tmp_path, service.url, extra=gate), yes=True))["relay"]
    assert status == PASS and "the sensor on GPIO 27 saw no turn" in message


def test_no_pin_factory_is_a_clear_failure(tmp_path, service, monkeypatch):
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "none-such")
    gate = GATE.replace('pin_factory = "mock"', 'pin_factory = "auto"')
    status, message, hint = results(doctor(write_config(tmp_path, service.url, extra=gate), yes=True))["relay"]
    assert status == FAIL and "cannot drive GPIO 17" in message and "python3-lgpio" in hint


def test_leds_and_buzzer(tmp_path, service, mock_pins):
    extra = '[inputs]\npin_factory = "mock"\nled_green_pin = 5\nled_red_pin = 6\nbuzzer_pin = 12\ntrigger_pin = 22\n'
    status, message, _ = results(doctor(write_config(tmp_path, service.url, extra=extra)))["inputs"]
    assert status == PASS and "lit green, red, buzzer beeped" in message and "trigger on GPIO 22 reads released" in message


def test_boot_gpio_lines_in_config_txt(tmp_path, service):
    config = write_config(tmp_path, service.url, extra=GATE)
    txt = tmp_path / "config.txt"
    txt.write_text("[all]\n")
    status, message, hint = results(doctor(config, boot_configs=(str(txt),)))["gpio-boot"]
    assert status == FAIL and "gpio=17=op,dl" in message and "sudo ./install.sh" in hint
    txt.write_text("[all]\n# gate relay: closed\ngpio=17=op,dl\n")
    assert results(doctor(config, boot_configs=(str(txt),)))["gpio-boot"][0] == PASS


# --- while the kiosk runs -----------------------------------------------------------------------


def systemd_with(active: str, restarts: str = "0", enabled: str = "enabled"):
    def command(argv):
        if argv[:2] == ["systemctl", "show"]:
            return 0, f"LoadState=loaded\nActiveState={active}\nSubState=running\nNRestarts={restarts}\nWatchdogUSec=30s\n"
        if argv[:2] == ["systemctl", "is-enabled"]:
            return 0, enabled + "\n"
        if argv[:2] == ["systemctl", "is-active"]:
            return 3, "inactive\n"
        if argv[0] == "timedatectl":
            return 0, "yes\n"
        return 127, ""

    return command


def test_a_running_kiosk_keeps_its_devices(tmp_path, service, mock_pins):
    r = results(doctor(write_config(tmp_path, service.url, extra=GATE), command=systemd_with("active", "3"), yes=True))
    assert r["service"][0] == PASS and "restarted 3 times" in r["service"][1]
    for check in ("camera", "relay"):
        status, message, hint = r[check]
        assert status == SKIP and "the kiosk is running" in message and "systemctl stop sentinel" in hint
    assert r["network"][0] == PASS and r["outbox"][0] == PASS and r["clock"][0] == PASS


def test_a_service_that_will_not_start_at_boot(tmp_path, service):
    r = results(doctor(write_config(tmp_path, service.url), command=systemd_with("inactive", enabled="disabled")))
    assert r["service"][0] == FAIL and "enable --now" in r["service"][2]


def test_service_not_installed(tmp_path, service):
    def command(argv):
        return 0, "LoadState=not-found\nActiveState=inactive\n"

    assert results(doctor(write_config(tmp_path, service.url), command=command))["service"][:2] == (FAIL, "sentinel.service is not installed")


# --- clock, disk, display, outbox -----------------------------------------------------------------


def test_clock(tmp_path, service):
    config = write_config(tmp_path, service.url)

    def timedatectl(answer):
        return lambda argv: (0, answer) if argv[0] == "timedatectl" else (127, "")

    assert results(doctor(config, command=timedatectl("no\n")))["clock"][0] == FAIL
    assert results(doctor(config, command=timedatectl("yes\n")))["clock"][0] == PASS
    wrong = doctor(config, now=lambda: datetime(1970, 1, 1, tzinfo=UTC))
    status, message, _ = results(wrong)["clock"]
    assert status == FAIL and "1970" in message


def test_low_disk(tmp_path, service, monkeypatch):
    Usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(16 * 2**30, 16 * 2**30 - 100 * 2**20, 100 * 2**20))
    status, message, hint = results(doctor(write_config(tmp_path, service.url)))["disk"]
    assert status == FAIL and "100 MB free" in message and "journalctl --vacuum" in hint


def test_display_under_sdl_dummy(tmp_path, service):
    pytest.importorskip("pygame")
    config = write_config(tmp_path, service.url, extra='[display]\ntype = "pygame"\n')
    status, message, _ = results(doctor(config, env={"SDL_VIDEODRIVER": "dummy"}))["display"]
    assert status == PASS and message.startswith("dummy display")


def test_display_without_kms(tmp_path, service):
    if Path("/dev/dri").is_dir() and list(Path("/dev/dri").glob("card*")):
        pytest.skip("this machine has a DRM card")
    config = write_config(tmp_path, service.url, extra='[display]\ntype = "pygame"\n')
    status, message, hint = results(doctor(config))["display"]
    assert status == FAIL and "/dev/dri" in message and "vc4-kms-v3d" in hint


def test_an_outbox_with_waiting_records(tmp_path, service):
    from sentinel.config import load_config
    from sentinel.kiosk import open_outbox

    config_path = write_config(tmp_path, service.url)
    config = load_config(config_path)
    config.device.state_dir.mkdir()
    open_outbox(config).close()  # an empty, real outbox file
    status, message, _ = results(doctor(config_path))["outbox"]
    assert status == PASS and message.startswith("0 records waiting")


def test_a_broken_check_is_a_fail_line_not_a_traceback(tmp_path, service, monkeypatch):
    monkeypatch.setattr(Doctor, "check_font", lambda self: 1 / 0)
    status, message, _ = results(doctor(write_config(tmp_path, service.url)))["font"]
    assert status == FAIL and "ZeroDivisionError" in message

"""The systemd files: `systemd-analyze verify` is clean (where the tool exists), the hardening
leaves the devices alone, sysusers and tmpfiles do what the unit relies on, and the unit, the
config defaults and install.sh agree on paths."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sentinel.config import HttpVerifierConfig

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "systemd" / "sentinel.service"
SYSUSERS = ROOT / "systemd" / "sentinel.sysusers.conf"
TMPFILES = ROOT / "systemd" / "sentinel.tmpfiles.conf"
SYSTEM_UNITS = [Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")]


def parse_unit(path: Path) -> list[tuple[str, str, str]]:
    """(section, key, value) in file order; a unit may repeat keys, so no configparser."""
    entries, section = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        entries.append((section, key.strip(), value.strip()))
    return entries


def values(key: str, section: str = "Service") -> list[str]:
    return [v for s, k, v in parse_unit(UNIT) if s == section and k == key]


def value(key: str, section: str = "Service") -> str:
    found = values(key, section)
    assert len(found) == 1, f"{section}.{key}: {found}"
    return found[0]


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed here (Debian: apt-get install systemd)")
    return path


@pytest.fixture
def fake_root(tmp_path):
    """A root with the distribution's units, the unit installed as install.sh installs it, and
    stand-ins for the venv's executables (verify checks that ExecStart= programs exist)."""
    system = next((p for p in SYSTEM_UNITS if (p / "sysinit.target").exists()), None)
    if system is None:
        pytest.skip("no systemd unit directory with sysinit.target here")
    root = tmp_path / "root"
    shutil.copytree(system, root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(UNIT, root / "etc/systemd/system/sentinel.service")
    for command in {v.lstrip("-@:+!").split()[0] for v in values("ExecStart") + values("ExecStopPost")}:
        target = root / command.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("#!/bin/sh\n")
        target.chmod(0o755)
    return root


# --- systemd's own checks ---------------------------------------------------------------------


def test_systemd_analyze_verify_is_clean(fake_root):
    tool = _tool("systemd-analyze")
    result = subprocess.run(
        [tool, "verify", f"--root={fake_root}", "sentinel.service"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == "", result.stdout + result.stderr


def test_systemd_analyze_security_exposure_is_low(fake_root):
    tool = _tool("systemd-analyze")
    result = subprocess.run(
        [tool, "security", "--offline=yes", f"--root={fake_root}", "sentinel.service"],
        capture_output=True, text=True, timeout=120, env=dict(os.environ, SYSTEMD_COLORS="0", LC_ALL="C.UTF-8"),
    )
    if "--offline" in result.stderr and "unrecognized" in result.stderr:
        pytest.skip("this systemd-analyze has no offline security analysis (systemd < 250)")
    match = re.search(r"Overall exposure level for sentinel\.service: ([0-9.]+)", result.stdout)
    assert match, result.stdout[-2000:] + result.stderr
    assert float(match.group(1)) <= 3.0, result.stdout[-3000:]


def test_sysusers_makes_the_user_in_the_device_groups(tmp_path):
    tool = _tool("systemd-sysusers")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    # Raspberry Pi OS already has these groups; sysusers must add the user to them, not recreate them
    (root / "etc/group").write_text("video:x:44:pi\ngpio:x:986:pi\n")
    result = subprocess.run([tool, f"--root={root}", str(SYSUSERS)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    passwd = (root / "etc/passwd").read_text()
    assert re.search(r"^sentinel:x:\d+:\d+:[^:]*:/var/lib/sentinel:/usr/sbin/nologin$", passwd, re.M), passwd
    groups = {line.split(":")[0]: line.strip().split(":") for line in (root / "etc/group").read_text().splitlines()}
    for name in ("gpio", "video", "render", "input", "dialout", "audio"):
        assert "sentinel" in groups[name][3].split(","), (name, groups[name])
    assert groups["video"][2] == "44" and groups["video"][3] == "pi,sentinel"  # kept as it was


def test_tmpfiles_keep_the_token_roots_and_the_config_readable_by_the_kiosk(tmp_path):
    sysusers, tmpfiles = _tool("systemd-sysusers"), _tool("systemd-tmpfiles")
    root = tmp_path / "root"
    (root / "etc/sentinel").mkdir(parents=True)
    for name in ("sentinel.toml", "device-token"):
        (root / "etc/sentinel" / name).write_text("x")
        (root / "etc/sentinel" / name).chmod(0o666)
    subprocess.run([sysusers, f"--root={root}", str(SYSUSERS)], capture_output=True, check=True, timeout=60)
    result = subprocess.run([tmpfiles, f"--root={root}", "--create", str(TMPFILES)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    gid = next(int(line.split(":")[2]) for line in (root / "etc/group").read_text().splitlines() if line.startswith("sentinel:"))
    directory, config, token = (os.stat(root / p) for p in ("etc/sentinel", "etc/sentinel/sentinel.toml", "etc/sentinel/device-token"))
    assert (directory.st_mode & 0o777, directory.st_uid, directory.st_gid) == (0o750, 0, gid)
    assert (config.st_mode & 0o777, config.st_uid, config.st_gid) == (0o640, 0, gid)
    assert (token.st_mode & 0o777, token.st_uid, token.st_gid) == (0o600, 0, 0)


# --- what the unit must say -------------------------------------------------------------------


def test_notify_with_a_watchdog_and_restart_always():
    assert value("Type") == "notify"
    assert value("NotifyAccess") == "main"
    assert 10 <= int(value("WatchdogSec")) <= 120
    assert value("Restart") == "always"
    assert value("StartLimitIntervalSec", "Unit") == "0"


def test_a_dedicated_user_with_state_and_credential():
    assert value("User") == "sentinel"
    assert value("StateDirectory") == "sentinel"
    assert value("LoadCredential") == f"device-token:{HttpVerifierConfig().token_file}"
    assert value("WorkingDirectory") == "/var/lib/sentinel"
    assert re.match(r"^u sentinel ", next(line for line in SYSUSERS.read_text().splitlines() if line.startswith("u ")))


def test_kmsdrm_on_tty1():
    assert value("PAMName") == "login"
    assert value("TTYPath") == "/dev/tty1"
    assert value("StandardInput") == "tty-fail"
    assert "getty@tty1.service" in values("Conflicts", "Unit")
    assert "SDL_VIDEODRIVER=kmsdrm" in value("Environment").split()


def test_hardening_does_not_hide_the_devices():
    keys = {k for s, k, _ in parse_unit(UNIT) if s == "Service"}
    for hides_devices in ("PrivateDevices", "DevicePolicy", "DeviceAllow", "ProtectClock", "ProcSubset", "PrivateUsers"):
        assert hides_devices not in keys, f"{hides_devices}= hides or fences off /dev/video*, /dev/gpiochip*, /dev/dri"
    assert "MemoryDenyWriteExecute" not in keys
    for key in ("NoNewPrivileges", "ProtectSystem", "ProtectHome", "ProtectKernelTunables", "RestrictNamespaces"):
        assert key in keys
    assert value("ProtectSystem") == "strict"


def test_the_gate_is_forced_closed_after_any_exit():
    start = value("ExecStart").split()
    stop_post = value("ExecStopPost")
    assert stop_post.startswith("-"), "a failing close must not mark the unit failed"
    argv = stop_post[1:].split()
    assert argv[1:4] == ["-m", "hardware.gate", "close"]
    assert Path(argv[0]).parent == Path(start[0]).parent  # the same venv
    assert argv[argv.index("--config") + 1] == start[start.index("--config") + 1]  # the same config


def test_lgpio_gets_a_writable_directory():
    env = dict(item.split("=", 1) for item in value("Environment").split())
    assert env["LG_WD"] == "/run/sentinel" and value("RuntimeDirectory") == "sentinel"
    assert env["PYTHONFAULTHANDLER"] == "1"  # a watchdog abort prints every thread's stack


def test_install_sh_and_the_unit_agree_on_paths():
    script = (ROOT / "install.sh").read_text()
    start = value("ExecStart").split()
    assert str(Path(start[0]).parent.parent) == "/opt/sentinel/venv"
    assert "\nprefix=/opt/sentinel\n" in script and '\nvenv_dir="$prefix/venv"\n' in script
    assert 'unit_file=/etc/systemd/system/sentinel.service' in script
    assert start[start.index("--config") + 1] == "/etc/sentinel/sentinel.toml"
    assert "\netc_dir=/etc/sentinel\n" in script and '\nconfig_file="$etc_dir/sentinel.toml"\n' in script
    assert "systemd/sentinel.service" in script and "systemd/sentinel.sysusers.conf" in script


def test_the_units_commands_exist_in_the_project():
    """`sentinel run --config` and `python -m hardware.gate close --config` parse as the unit writes them."""
    from sentinel.cli import build_parser

    args = build_parser("run").parse_args(value("ExecStart").split()[1:])
    assert args.command == "run" and args.config == "/etc/sentinel/sentinel.toml"
    result = subprocess.run([sys.executable, "-m", "hardware.gate", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "close" in result.stdout

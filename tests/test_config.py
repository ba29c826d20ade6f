"""Config: the shipped profiles validate, and every kind of mistake is named precisely."""

import subprocess
import sys
from pathlib import Path

import pytest

from sentinel.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["default.toml", "pillar.toml", "handheld.toml"])
def test_shipped_profiles_are_valid(name):
    config = load_config(ROOT / "config" / name)
    assert config.device.language == "zh-CN"


def test_default_file_equals_embedded_defaults():
    """config/default.toml documents the defaults; it must not drift from them."""
    assert load_config(ROOT / "config" / "default.toml") == load_config(None)


def test_profiles_choose_their_hardware():
    assert load_config(ROOT / "config" / "pillar.toml").gate.type == "gpio"
    assert load_config(ROOT / "config" / "handheld.toml").gate.type == "none"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"device": {"langauge": "en"}}, "device.langauge: unknown key"),
        ({"camera": {"type": "opencv", "width": 20}}, "camera.width: bad value 20; expected greater than or equal to 160"),
        ({"camera": {"type": "webcam"}}, "camera.type: bad value 'webcam'; expected one of"),
        ({"policy": {"nat_window_h": 36}}, "policy.nat_window_h: bad value 36; expected 'none', 24, 48 or 72"),
        ({"policy": {"offline": "maybe"}}, "policy.offline: bad value 'maybe'"),
        ({"credentials": {"health_code_patterns": ["(open"]}}, "not a valid regular expression"),
        ({"credentials": {"health_code_patterns": ["https://x/.*"]}}, "has no named group (?P<token>...)"),
        ({"gate": {"type": "gpio", "pin": 40}}, "gate.pin: bad value 40"),
        ({"verifier": {"type": "http", "url": "ftp://x"}}, "verifier.url: bad value 'ftp://x'"),
        ({"nonsense": 1}, "nonsense: unknown key"),
        ({"gate": {"pulse_s": 2}}, "gate.type: required key is missing"),
    ],
)
def test_each_mistake_names_key_value_and_expectation(data, expected):
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert len(err.value.problems) == 1
    assert expected in err.value.problems[0]


def test_several_mistakes_one_line_each():
    with pytest.raises(ConfigError) as err:
        parse_config({"device": {"language": "fr"}, "policy": {"yellow": "maybe"}, "gate": {"type": "fake", "pulse_s": -1}})
    assert [p.split(":")[0] for p in err.value.problems] == ["device.language", "policy.yellow", "gate.pulse_s"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"[device\nid = 1", "not valid TOML"),
        (b"\xff\xfe garbage", "not UTF-8"),
    ],
)
def test_broken_files(tmp_path, content, expected):
    path = tmp_path / "s.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert expected in err.value.problems[0]


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml")


def _check_config(*args):
    return subprocess.run([sys.executable, "-m", "sentinel", "check-config", *args], capture_output=True, text=True, timeout=60)


def test_cli_good_file_exits_0():
    result = _check_config(str(ROOT / "config" / "pillar.toml"))
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


def test_cli_bad_file_exits_2_with_one_line_per_problem(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[device]\nlangauge = "en"\n[policy]\nnat_window_h = 36\n')
    result = _check_config(str(bad))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{bad}: device.langauge: unknown key")
    assert "policy.nat_window_h: bad value 36" in lines[1]
    assert "Traceback" not in result.stderr

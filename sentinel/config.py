"""Device configuration: one TOML file validated into typed models.

Every model forbids unknown keys, because a misspelt key that is silently ignored is how a site
ends up with the default offline policy. Hardware backends are chosen by a `type` key, as
Frigate chooses detectors, so that a technician switches camera or gate by editing one line.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sentinel.demo_data import DEMO_HEALTH_CODE_PREFIX

#: device and site ids: short, printable, safe in a URL path and a log line
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
ASSETS = Path(__file__).resolve().parent / "assets"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _field(default: Any, title: str, description: str, **kw: Any) -> Any:
    return Field(default, title=title, description=description, **kw)


# --- device -------------------------------------------------------------------------------------


class DeviceConfig(_Section):
    id: str = _field("unbound-device", "Device id", "This device's id at the health-status service", pattern=ID_PATTERN)
    site_id: str = _field("unbound-site", "Site id", "The site (venue) this device belongs to", pattern=ID_PATTERN)
    site_name: str = _field("", "Site name", "Shown in the status bar", max_length=80)
    language: Literal["zh-CN", "en"] = _field("zh-CN", "Language", "Screen and voice language")
    state_dir: Path = _field(Path("/var/lib/sentinel"), "State directory", "Where the outbox, caches and the record key live")


# --- camera -------------------------------------------------------------------------------------


class ReplayCameraConfig(_Section):
    type: Literal["replay"] = "replay"
    path: Path = _field(ASSETS / "scenes", "Path", "An image file, a folder of images or a video file")
    fps: float = _field(10.0, "Frames per second", "Replay rate", gt=0, le=120)
    frames_per_image: int = _field(10, "Frames per image", "How many frames each image is held for", ge=1, le=10_000)
    loop: bool = _field(False, "Loop", "Start over at the end")


class OpenCVCameraConfig(_Section):
    type: Literal["opencv"]
    device: int | str = _field(0, "Device", "V4L2 index (0) or path (/dev/video0) or stream URL")
    width: int = _field(640, "Width", "Requested frame width", ge=160, le=4096)
    height: int = _field(480, "Height", "Requested frame height", ge=120, le=4096)
    fps: float = _field(30.0, "Frames per second", "Requested frame rate", gt=0, le=120)


class Picamera2CameraConfig(_Section):
    type: Literal["picamera2"]
    main_width: int = _field(1280, "Main width", "Main stream width (preview)", ge=160, le=4608)
    main_height: int = _field(960, "Main height", "Main stream height", ge=120, le=3456)
    lores_width: int = _field(640, "Lores width", "Lores YUV420 stream width; its Y plane is what the decoder reads", ge=160, le=2048)
    lores_height: int = _field(480, "Lores height", "Lores stream height", ge=120, le=1536)
    frame_timeout_s: float = _field(2.0, "Frame timeout", "Seconds to wait for a frame before counting a hang", gt=0, le=30)


CameraConfig = Annotated[
    ReplayCameraConfig | OpenCVCameraConfig | Picamera2CameraConfig, Field(discriminator="type")
]


# --- decoding and credentials ------------------------------------------------------------------


class DecoderConfig(_Section):
    order: list[Literal["zxing-cpp", "pyzbar"]] = _field(
        ["zxing-cpp", "pyzbar"], "Decoder order", "Decoders tried in turn; zxing-cpp reads phone screens best", min_length=1
    )
    fallback_every: int = _field(
        5,
        "Fallback every N frames",
        "Later decoders run when the first saw an unreadable code, and on every Nth frame where it saw none "
        "(1: every frame; higher saves CPU on an idle kiosk)",
        ge=1,
        le=100,
    )


class CredentialConfig(_Section):
    health_code_patterns: list[str] = _field(
        [re.escape(DEMO_HEALTH_CODE_PREFIX) + r"(?P<token>[A-Za-z0-9_-]{16,64})"],
        "Health-code patterns",
        "Regular expressions matched against the whole QR payload; the named group `token` is what is sent to the service",
        min_length=1,
    )
    accept_id_number: bool = _field(True, "Accept ID numbers", "Accept an 18-digit resident ID number (typed or read from a card)")
    max_payload_bytes: int = _field(512, "Maximum payload", "Longer QR payloads are rejected on the device", ge=32, le=4096)
    debounce_s: float = _field(5.0, "Debounce window", "The same credential seen again within this many seconds is the same check", ge=0, le=600)

    @field_validator("health_code_patterns")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        for p in patterns:
            try:
                compiled = re.compile(p)
            except re.error as e:
                raise ValueError(f"not a valid regular expression: {p!r} ({e})") from None
            if "token" not in compiled.groupindex:
                raise ValueError(f"pattern {p!r} has no named group (?P<token>...)")
        return patterns


# --- verifier -----------------------------------------------------------------------------------


class HttpVerifierConfig(_Section):
    type: Literal["http"] = "http"
    url: str = _field("https://health.example", "Service URL", "Base URL of the health-status service", pattern=r"^https?://")
    token_file: Path = _field(Path("/etc/sentinel/device-token"), "Token file", "Root-only file holding this device's bearer token")
    ca_bundle: Path | None = _field(None, "CA bundle", "PEM bundle to verify the service's TLS certificate; the system store when empty")
    connect_timeout_s: float = _field(0.5, "Connect timeout", "Seconds to wait for a TCP/TLS connection", gt=0, le=30)
    deadline_s: float = _field(1.5, "Deadline", "Hard deadline for one check; past it the offline policy decides", gt=0, le=30)


# One backend today; the `type` key leaves room for offline-verifiable `signed` credentials.
VerifierConfig = Annotated[HttpVerifierConfig, Field(discriminator="type")]


# --- policy -------------------------------------------------------------------------------------


class PolicyConfig(_Section):
    allowed_colours: list[Literal["green", "yellow"]] = _field(["green"], "Allowed colours", "Code colours that may pass")
    yellow: Literal["deny", "manual_check"] = _field("manual_check", "Yellow", "What a yellow code gets when yellow is not allowed")
    nat_window_h: Literal["none", 24, 48, 72] = _field("none", "NAT window", "Newest negative nucleic-acid test must be this recent (hours), or none")
    antigen_accepted: bool = _field(False, "Antigen accepted", "A negative antigen test stands in for a missing or old NAT")
    min_vaccination_doses: int = _field(0, "Vaccination doses", "Minimum doses to pass", ge=0, le=10)
    offline: Literal["deny", "allow_and_flag", "cached"] = _field(
        "deny", "Offline policy", "What happens when the service cannot answer in time"
    )
    cached_ttl_min: float = _field(60, "Cache TTL", "With offline=cached, how old a remembered status may be (minutes)", gt=0, le=7 * 24 * 60)


# --- outputs ------------------------------------------------------------------------------------


class NoGateConfig(_Section):
    type: Literal["none"]


class FakeGateConfig(_Section):
    type: Literal["fake"] = "fake"
    pulse_s: float = _field(1.0, "Pulse", "How long the gate stays open", gt=0, le=30)


class GpioGateConfig(_Section):
    type: Literal["gpio"]
    pin: int = _field(17, "Pin", "BCM pin driving the relay", ge=0, le=27)
    active_high: bool = _field(True, "Active high", "Relay energised (gate open) when the pin is high")
    pulse_s: float = _field(1.0, "Pulse", "How long the gate stays open", gt=0, le=30)
    pin_factory: Literal["auto", "lgpio", "rpigpio", "mock"] = _field("auto", "Pin factory", "gpiozero pin factory")


GateConfig = Annotated[NoGateConfig | FakeGateConfig | GpioGateConfig, Field(discriminator="type")]


class DisplayConfig(_Section):
    type: Literal["console", "none"] = _field("console", "Display", "Where results are shown")
    result_s: float = _field(3.0, "Result time", "How long a verdict stays on screen", gt=0, le=60)


class OutboxConfig(_Section):
    path: Path | None = _field(None, "Outbox file", "SQLite file for check records; <state_dir>/outbox.sqlite3 when empty")


# --- the whole file ------------------------------------------------------------------------------


class SentinelConfig(_Section):
    device: DeviceConfig = DeviceConfig()
    camera: CameraConfig = ReplayCameraConfig()
    decoder: DecoderConfig = DecoderConfig()
    credentials: CredentialConfig = CredentialConfig()
    verifier: VerifierConfig = HttpVerifierConfig()
    policy: PolicyConfig = PolicyConfig()
    gate: GateConfig = FakeGateConfig()
    display: DisplayConfig = DisplayConfig()
    outbox: OutboxConfig = OutboxConfig()

    @property
    def outbox_path(self) -> Path:
        return self.outbox.path or self.device.state_dir / "outbox.sqlite3"


class ConfigError(Exception):
    """A config file that cannot be used; `problems` has one line per problem for the technician."""

    def __init__(self, path: Path | str, problems: list[str]):
        self.path = str(path)
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


def _describe(error: dict[str, Any], data: Any) -> str:
    # pydantic puts the chosen backend of a `type`-keyed section into the path
    # (camera.opencv.width); the file says camera.width.
    parts = list(error["loc"])
    loc = ".".join(str(p) for i, p in enumerate(parts) if not (i and parts[i - 1] in _UNION_SECTIONS and p in _UNION_TAGS))
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{loc}: unknown key (value {error['input']!r}); check its spelling"
    if kind == "missing":
        return f"{loc}: required key is missing"
    if kind == "union_tag_not_found":
        return f"{loc}.type: required key is missing; it chooses the backend"
    if kind == "union_tag_invalid":
        ctx = error.get("ctx", {})
        return f"{loc}.type: bad value {ctx.get('tag')!r}; expected one of {ctx.get('expected_tags')}"
    msg = error["msg"]
    value = error.get("input")
    if msg.startswith("Input should be "):
        return f"{loc}: bad value {value!r}; expected {msg.removeprefix('Input should be ')}"
    if kind == "value_error":
        return f"{loc}: bad value {value!r}; {msg.removeprefix('Value error, ')}"
    return f"{loc}: bad value {value!r}; {msg[0].lower() + msg[1:]}"


_UNION_SECTIONS = {"camera", "verifier", "gate"}
_UNION_TAGS = {"replay", "opencv", "picamera2", "none", "fake", "http", "gpio"}


def parse_config(data: dict[str, Any], source: str = "<config>") -> SentinelConfig:
    try:
        return SentinelConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(source, [_describe(err, data) for err in e.errors()]) from None


def load_config(path: Path | str | None) -> SentinelConfig:
    """Load and validate a TOML file; None gives the embedded defaults."""
    if path is None:
        return SentinelConfig()
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(path, ["file not found"]) from None
    except IsADirectoryError:
        raise ConfigError(path, ["is a directory, not a config file"]) from None
    except PermissionError:
        raise ConfigError(path, ["permission denied (run as the sentinel user or root)"]) from None
    except UnicodeDecodeError as e:
        raise ConfigError(path, [f"not UTF-8 text (byte {e.start})"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(path, [f"not valid TOML: {e}"]) from None
    return parse_config(data, str(path))

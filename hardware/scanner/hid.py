"""USB HID keyboard-wedge scanners through evdev (apt: python3-evdev; pip: evdev).

The device is opened by its stable name (/dev/input/by-id/usb-…-event-kbd) and grabbed
(EVIOCGRAB), so its keystrokes reach this reader only: not the console on tty1, not a shell.
The service user needs read access to it: the `input` group (systemd/sentinel.sysusers.conf).
"""

from __future__ import annotations

import errno
import logging
import select
from collections.abc import Callable
from typing import Any

from hardware.scanner.base import ScannerSource
from hardware.scanner.text import EV_KEY, KeyboardWedge

log = logging.getLogger("hardware.scanner.hid")


class HidScanner(ScannerSource):
    LIBRARY = ("evdev", "evdev is not installed: on Raspberry Pi OS run `sudo apt install python3-evdev` (pip: evdev)")

    def __init__(
        self,
        device: str,
        *,
        grab: bool = True,
        terminator: str = "enter",
        gap_s: float = 0.3,
        opener: Callable[[str], Any] | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.device = device
        self.grab = grab
        self._wedge = KeyboardWedge(terminator, gap_s)
        self._opener = opener

    @property
    def name(self) -> str:
        return f"hid:{self.device}"

    def _open(self) -> Any:
        if self._opener is not None:
            device = self._opener(self.device)
        else:
            import evdev

            try:
                device = evdev.InputDevice(self.device)
            except PermissionError as exc:
                raise OSError(exc.errno, "permission denied: is the service user in the 'input' group?", self.device) from exc
        if self.grab:
            try:
                device.grab()
            except OSError as exc:
                device.close()
                if exc.errno == errno.EBUSY:
                    raise OSError(exc.errno, "grabbed by another program", self.device) from exc
                raise
        log.info("%s: opened %s%s", self.name, getattr(device, "name", "device"), " (grabbed)" if self.grab else "")
        return device

    def _close_handle(self, device: Any) -> None:
        if self.grab:
            try:
                device.ungrab()
            except OSError:
                pass  # unplugged: nothing to release
        device.close()

    def _read_some(self, device: Any, timeout: float) -> list[bytes | str]:
        out: list[bytes | str] = []
        ready, _, _ = select.select([device.fd], [], [], timeout)
        if ready:
            try:
                events = list(device.read())
            except BlockingIOError:
                events = []
            for event in events:
                if event.type != EV_KEY:
                    continue
                text = self._wedge.feed(event.code, event.value, self._clock())
                if text:
                    out.append(text)
        text = self._wedge.poll(self._clock())
        if text:
            out.append(text)
        return out

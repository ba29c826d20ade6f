"""Serial and USB CDC-ACM scanners through pyserial (apt: python3-serial; pip: pyserial).

The port is opened exclusively (a second reader would steal half the bytes), by its stable name
(/dev/serial/by-id/usb-…) where there is one. The service user needs the `dialout` group for
/dev/ttyACM* and /dev/ttyUSB* (systemd/sentinel.sysusers.conf).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from hardware.scanner.base import ScannerSource
from hardware.scanner.text import LineSplitter

log = logging.getLogger("hardware.scanner.serial")


class SerialScanner(ScannerSource):
    LIBRARY = ("serial", "pyserial is not installed: on Raspberry Pi OS run `sudo apt install python3-serial` (pip: pyserial)")

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = 9600,
        terminator: str = "any",
        gap_s: float = 0.2,
        encoding: str = "utf-8",
        opener: Callable[..., Any] | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.port = port
        self.baudrate = baudrate
        self.encoding = encoding
        self._splitter = LineSplitter(terminator, gap_s)
        self._opener = opener

    @property
    def name(self) -> str:
        return f"serial:{self.port}"

    def _open(self) -> Any:
        if self._opener is not None:
            return self._opener(self.port, self.baudrate)
        import serial

        try:
            port = serial.Serial(self.port, self.baudrate, timeout=0, exclusive=True)
        except serial.SerialException as exc:
            # pyserial wraps the OSError; keep the errno and say what a technician can do
            cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else None
            if cause is not None and cause.errno == 13:
                raise OSError(13, "permission denied: is the service user in the 'dialout' group?", self.port) from exc
            raise OSError(getattr(cause, "errno", None) or 0, str(exc)) from exc
        port.reset_input_buffer()  # whatever was scanned while nobody listened is stale
        log.info("%s: opened at %d baud", self.name, self.baudrate)
        return port

    def _read_some(self, port: Any, timeout: float) -> list[bytes | str]:
        import select

        ready, _, _ = select.select([port.fileno()], [], [], timeout)
        data = b""
        if ready:
            waiting = port.in_waiting  # raises on a vanished device
            data = port.read(max(1, waiting))
            if not data:
                # readable with nothing to read: the far end is gone (USB unplugged)
                raise OSError(5, "device disconnected")
        out: list[bytes | str] = list(self._splitter.feed(data, self._clock()))
        stale = self._splitter.poll(self._clock())
        if stale is not None:
            out.append(stale)
        return out

    def _decode(self, payload: bytes | str) -> tuple[str, bytes]:
        if isinstance(payload, str):
            return payload, payload.encode(self.encoding, errors="replace")
        text = payload.decode(self.encoding, errors="replace").strip("\r\n\t\0")
        return text, payload

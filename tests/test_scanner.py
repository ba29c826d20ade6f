"""External scanners: key codes and byte streams into payloads, the reader threads against a
scripted evdev device and a real pseudo-terminal, unplugging and replugging, and the config."""

from __future__ import annotations

import errno
import os
import threading
import time
from collections import namedtuple
from pathlib import Path

import pytest

from hardware.scanner import (
    EV_KEY,
    KEY_ENTER,
    KEY_LEFTSHIFT,
    US_KEYS,
    KeyboardWedge,
    LineSplitter,
    NoScanner,
    ScannerError,
    open_scanner,
)
from hardware.scanner.hid import HidScanner
from hardware.scanner.serial import SerialScanner
from sentinel.config import parse_config
from tests.helpers import wait_until

PAYLOAD = "https://healthcode.example/c/AbC_12-xyz09876543"



# --- key codes → text -------------------------------------------------------------------------

_CHAR_TO_KEY = {}
for _code, (_plain, _shifted) in US_KEYS.items():
    if _code in (55, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 98):
        continue  # the keypad duplicates
    _CHAR_TO_KEY.setdefault(_plain, (_code, False))
    _CHAR_TO_KEY.setdefault(_shifted, (_code, True))


def typed(text: str, terminator: int | None = KEY_ENTER) -> list[tuple[int, int]]:
    """(code, value) key events a US keyboard-wedge scanner sends for `text`."""
    events = []
    for char in text:
        code, shift = _CHAR_TO_KEY[char]
        if shift:
            events.append((KEY_LEFTSHIFT, 1))
        events += [(code, 1), (code, 0)]
        if shift:
            events.append((KEY_LEFTSHIFT, 0))
    if terminator is not None:
        events += [(terminator, 1), (terminator, 0)]
    return events


def _feed(wedge, events, t=0.0, step=0.001):
    out = []
    for code, value in events:
        t += step
        text = wedge.feed(code, value, t)
        if text:
            out.append(text)
    return out, t


def test_linux_key_codes_match_evdev():
    ecodes = pytest.importorskip("evdev").ecodes
    assert ecodes.EV_KEY == EV_KEY
    assert ecodes.KEY_A == 30 and ecodes.KEY_SLASH == 53 and ecodes.KEY_KPENTER == 96 and ecodes.KEY_ENTER == KEY_ENTER
    assert ecodes.KEY_LEFTSHIFT == KEY_LEFTSHIFT and ecodes.KEY_KP0 == 82 and ecodes.KEY_KPSLASH == 98


def test_a_url_payload_with_shifted_characters():
    wedge = KeyboardWedge()
    out, _ = _feed(wedge, typed(PAYLOAD + "?a=1&b=~|"))
    assert out == [PAYLOAD + "?a=1&b=~|"]


def test_every_printable_ascii_character_round_trips():
    import string

    text = "".join(c for c in string.printable if c not in "\t\n\r\x0b\x0c")
    out, _ = _feed(KeyboardWedge(), typed(text))
    assert out == [text]


def test_tab_terminator_and_keypad_digits():
    wedge = KeyboardWedge("tab")
    events = [(79, 1), (79, 0), (80, 1), (80, 0), (KEY_ENTER, 1), (KEY_ENTER, 0), (15, 1), (15, 0)]
    out, _ = _feed(wedge, events)
    assert out == ["12"]  # Enter is not this scanner's terminator: ignored


def test_gap_terminator_ends_a_code_after_a_pause():
    wedge = KeyboardWedge("gap", gap_s=0.2)
    out, t = _feed(wedge, typed("abc", terminator=None))
    assert out == []
    assert wedge.poll(t + 0.1) is None
    assert wedge.poll(t + 0.25) == "abc"


def test_an_interrupted_code_is_discarded_not_glued_to_the_next():
    wedge = KeyboardWedge("enter", gap_s=0.2)
    _, t = _feed(wedge, typed("lost", terminator=None))
    out, _ = _feed(wedge, typed("next"), t=t + 1.0)
    assert out == ["next"] and wedge.discarded == 1


def test_ctrl_combinations_and_autorepeat_type_nothing():
    wedge = KeyboardWedge()
    events = [(29, 1), (30, 1), (30, 0), (29, 0), (31, 1), (31, 2), (31, 0)] + typed("")
    out, _ = _feed(wedge, events)
    assert out == ["s"]


def test_caps_lock_from_the_scanner_swaps_letter_case():
    out, _ = _feed(KeyboardWedge(), [(58, 1), (58, 0)] + typed("aB1"))
    assert out == ["Ab1"]


def test_an_overlong_code_is_discarded():
    wedge = KeyboardWedge(max_len=10)
    out, _ = _feed(wedge, typed("x" * 11) + typed("ok"))
    assert out == ["ok"] and wedge.discarded == 1


# --- bytes → payloads -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("terminator", "stream", "expected"),
    [
        ("any", b"one\r\ntwo\rthree\n", [b"one", b"two", b"three"]),
        ("cr", b"one\rtwo\r", [b"one", b"two"]),
        ("lf", b"one\ntwo\n", [b"one", b"two"]),
        ("crlf", b"a\rb\r\nc\r\n", [b"a\rb", b"c"]),
    ],
)
def test_line_terminators(terminator, stream, expected):
    splitter = LineSplitter(terminator)
    out = []
    for i in range(len(stream)):  # byte by byte, as a slow UART delivers them
        out += splitter.feed(stream[i : i + 1], now=i * 0.001)
    assert out == expected


def test_gap_splitting_and_stale_partials():
    gap = LineSplitter("gap", gap_s=0.2)
    assert gap.feed(b"abc", 0.0) == []
    assert gap.poll(0.1) is None
    assert gap.poll(0.3) == b"abc"
    lf = LineSplitter("lf", gap_s=0.2)
    lf.feed(b"half a co", 0.0)
    assert lf.feed(b"de\n", 1.0) == [b"de"] and lf.discarded == 1


def test_an_overlong_line_is_discarded():
    splitter = LineSplitter("lf", max_len=8)
    assert splitter.feed(b"0123456789abc\nok\n", 0.0) == [b"ok"]


# --- HID reader thread against a scripted evdev device ------------------------------------------

Event = namedtuple("Event", "type code value")


class ScriptedInputDevice:
    """What HidScanner uses of evdev.InputDevice: fd (select), read(), grab/ungrab, close; events
    are pushed by the test, `unplug()` makes the next read fail as the kernel does (ENODEV)."""

    def __init__(self, name="Scanner HID"):
        self.name = name
        self._r, self._w = os.pipe()
        self.fd = self._r
        self._events: list[Event] = []
        self._lock = threading.Lock()
        self.grabbed = self.closed = self.unplugged = False

    def push(self, events):
        with self._lock:
            self._events += [Event(EV_KEY, code, value) for code, value in events]
        os.write(self._w, b"x")

    def unplug(self):
        self.unplugged = True
        os.write(self._w, b"x")

    def read(self):
        os.read(self._r, 4096)
        if self.unplugged:
            raise OSError(errno.ENODEV, "No such device")
        with self._lock:
            events, self._events = self._events, []
        if not events:
            raise BlockingIOError
        return iter(events)

    def grab(self):
        self.grabbed = True

    def ungrab(self):
        if self.unplugged:
            raise OSError(errno.ENODEV, "No such device")
        self.grabbed = False

    def close(self):
        if not self.closed:
            self.closed = True
            os.close(self._r)
            os.close(self._w)


class Bus:
    """Devices plugged in by path; opening a missing one fails as evdev does."""

    def __init__(self):
        self.plugged: dict[str, ScriptedInputDevice] = {}
        self.opened: list[ScriptedInputDevice] = []

    def open(self, path):
        device = self.plugged.get(path)
        if device is None:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        self.opened.append(device)
        return device


PATH = "/dev/input/by-id/usb-Scanner-event-kbd"


def test_hid_scanner_delivers_payloads_and_grabs_the_device():
    bus = Bus()
    bus.plugged[PATH] = device = ScriptedInputDevice()
    got = []
    with HidScanner(PATH, opener=bus.open, on_payload=got.append, poll_s=0.02) as scanner:
        assert wait_until(lambda: scanner.healthy)
        assert device.grabbed
        device.push(typed(PAYLOAD))
        item = scanner.get(timeout=2.0)
        device.push(typed("second"))
        assert wait_until(lambda: len(got) == 2)
    assert item.text == PAYLOAD and item.raw == PAYLOAD.encode() and item.source == f"hid:{PATH}"
    assert [p.text for p in got] == [PAYLOAD, "second"]
    assert scanner.drain() == [got[1]]
    assert device.closed and not device.grabbed


def test_hid_scanner_survives_unplug_and_replug():
    bus = Bus()
    bus.plugged[PATH] = first = ScriptedInputDevice()
    with HidScanner(PATH, opener=bus.open, poll_s=0.02, retry_initial=0.02, retry_max=0.08) as scanner:
        assert wait_until(lambda: scanner.healthy)
        del bus.plugged[PATH]
        first.unplug()
        assert wait_until(lambda: scanner.retry_delay == 0.08)  # 0.02, 0.04, 0.08, 0.08 …
        assert not scanner.healthy
        assert "No such file or directory" in scanner.last_error and PATH in scanner.last_error
        bus.plugged[PATH] = second = ScriptedInputDevice()
        assert wait_until(lambda: scanner.healthy)
        second.push(typed("after replug"))
        item = scanner.get(timeout=2.0)
    assert item.text == "after replug"
    assert first.closed and second.grabbed is False


def test_a_scanner_absent_at_start_is_opened_when_it_appears():
    bus = Bus()
    with HidScanner(PATH, opener=bus.open, poll_s=0.02, retry_initial=0.02, retry_max=0.05) as scanner:
        assert wait_until(lambda: scanner.last_error is not None)
        assert not scanner.healthy
        bus.plugged[PATH] = device = ScriptedInputDevice()
        assert wait_until(lambda: scanner.healthy)
        device.push(typed("late"))
        assert scanner.get(timeout=2.0).text == "late"


def test_a_full_queue_keeps_the_newest():
    bus = Bus()
    bus.plugged[PATH] = device = ScriptedInputDevice()
    with HidScanner(PATH, opener=bus.open, poll_s=0.02, queue_size=2) as scanner:
        assert wait_until(lambda: scanner.healthy)
        for i in range(4):
            device.push(typed(f"code{i}"))
        assert wait_until(lambda: scanner.payloads == 4)
        assert [p.text for p in scanner.drain()] == ["code2", "code3"]
        assert scanner.dropped == 2


def test_a_grab_held_by_another_program_is_reported():
    class Busy(ScriptedInputDevice):
        def grab(self):
            raise OSError(errno.EBUSY, "Device or resource busy")

    bus = Bus()
    bus.plugged[PATH] = Busy()
    with HidScanner(PATH, opener=bus.open, poll_s=0.02, retry_initial=0.05) as scanner:
        assert wait_until(lambda: scanner.last_error is not None)
    assert "grabbed by another program" in scanner.last_error


def test_real_evdev_on_a_missing_device_retries_with_a_clear_error():
    pytest.importorskip("evdev")
    with HidScanner("/dev/input/by-id/none-such-event-kbd", retry_initial=0.05) as scanner:
        assert wait_until(lambda: scanner.last_error is not None)
    assert "none-such" in scanner.last_error


def test_missing_evdev_says_how_to_install_it(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "evdev", None)
    with pytest.raises(ScannerError, match="apt install python3-evdev"):
        HidScanner(PATH).start()


# --- serial reader thread on a real pseudo-terminal -------------------------------------------


class FakeSerialBus:
    """A serial scanner on a pseudo-terminal, reached through a stable symlink (as
    /dev/serial/by-id/ is): `plug()` makes a new pty behind the link, `unplug()` closes it."""

    def __init__(self, tmp_path: Path):
        self.link = tmp_path / "usb-Scanner-if00"
        self.master: int | None = None

    def plug(self):
        master, slave = os.openpty()
        os.set_blocking(master, False)
        path = os.ttyname(slave)
        os.close(slave)  # the pty stays while the master is open
        if self.link.is_symlink():
            self.link.unlink()
        self.link.symlink_to(path)
        self.master = master

    def unplug(self):
        os.close(self.master)
        self.master = None
        self.link.unlink()

    def send(self, data: bytes):
        os.write(self.master, data)

    def close(self):
        if self.master is not None:
            self.unplug()


@pytest.fixture
def serial_bus(tmp_path):
    pytest.importorskip("serial")
    bus = FakeSerialBus(tmp_path)
    yield bus
    bus.close()


def test_serial_scanner_reads_payloads(serial_bus):
    serial_bus.plug()
    with SerialScanner(str(serial_bus.link), poll_s=0.02) as scanner:
        assert wait_until(lambda: scanner.healthy)
        serial_bus.send(PAYLOAD.encode() + b"\r\n")
        first = scanner.get(timeout=2.0)
        serial_bus.send(b"part one ")
        time.sleep(0.05)
        serial_bus.send(b"and two\r")
        second = scanner.get(timeout=2.0)
    assert first.text == PAYLOAD and first.raw == PAYLOAD.encode()
    assert second.text == "part one and two"


def test_serial_scanner_decodes_gbk(serial_bus):
    serial_bus.plug()
    with SerialScanner(str(serial_bus.link), encoding="gb18030", poll_s=0.02) as scanner:
        assert wait_until(lambda: scanner.healthy)
        serial_bus.send("王小明 3101".encode("gb18030") + b"\n")
        item = scanner.get(timeout=2.0)
    assert item.text == "王小明 3101"


def test_serial_scanner_survives_unplug_and_replug(serial_bus):
    serial_bus.plug()
    with SerialScanner(str(serial_bus.link), poll_s=0.02, retry_initial=0.02, retry_max=0.08) as scanner:
        assert wait_until(lambda: scanner.healthy)
        serial_bus.unplug()
        assert wait_until(lambda: not scanner.healthy)
        assert wait_until(lambda: scanner.retry_delay == 0.08)
        serial_bus.plug()
        assert wait_until(lambda: scanner.healthy)
        serial_bus.send(b"after replug\n")
        item = scanner.get(timeout=2.0)
    assert item.text == "after replug"


def test_serial_scanner_missing_port(tmp_path):
    pytest.importorskip("serial")
    with SerialScanner(str(tmp_path / "ttyACM9"), retry_initial=0.05) as scanner:
        assert wait_until(lambda: scanner.last_error is not None)
    assert "ttyACM9" in scanner.last_error


# --- config -----------------------------------------------------------------------------------


def test_scanner_from_config():
    assert isinstance(open_scanner(parse_config({}).scanner), NoScanner)
    hid = open_scanner(parse_config({"scanner": {"type": "hid", "device": PATH, "terminator": "tab"}}).scanner)
    assert isinstance(hid, HidScanner) and hid.device == PATH and hid._wedge.terminator == "tab"
    ser = open_scanner(parse_config({"scanner": {"type": "serial", "port": "/dev/ttyACM0", "baudrate": 115200}}).scanner)
    assert isinstance(ser, SerialScanner) and ser.baudrate == 115200


def test_no_scanner_is_quiet():
    scanner = NoScanner()
    scanner.start()
    assert scanner.get() is None and scanner.drain() == []
    scanner.close()


def test_the_payload_never_reaches_the_log(caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    bus = Bus()
    bus.plugged[PATH] = device = ScriptedInputDevice()
    with HidScanner(PATH, opener=bus.open, poll_s=0.02) as scanner:
        assert wait_until(lambda: scanner.healthy)
        device.push(typed(PAYLOAD))
        assert scanner.get(timeout=2.0)
    assert "AbC_12" not in caplog.text


def test_importing_the_scanners_loads_no_device_library():
    import subprocess
    import sys

    code = "import sys, hardware.scanner, hardware.scanner.hid, hardware.scanner.serial; print([m for m in ('evdev', 'serial') if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stderr

"""The parts the kiosk loop (`sentinel.pipeline`) is built from, as interfaces, and what one check
ends in (`CheckOutcome`).

Each Protocol names every member the pipeline uses, so a fake in a test or a new device shows at
type-check time what it lacks instead of failing on the first frame. The hardware side
(`hardware.camera`, `hardware.gate`, `hardware.inputs`, `hardware.scanner`) implements these without
importing this module. A member a source cannot know (`healthy` on a replay) answers the harmless
value (True); the pipeline never asks a device library directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # annotations only: importing this module costs nothing (sentinel.notify uses it)
    from sentinel.faces.matcher import FaceObservation
    from sentinel.frames import Frame
    from sentinel.policy import Verdict
    from sentinel.screens import Screen


class FrameSourceLike(Protocol):
    """A camera (hardware.camera), a replay of files, or the gated camera of a handheld."""

    def read(self, timeout: float) -> Frame | None:
        """The next frame, or None when none came within `timeout` (or the source is paused)."""

    @property
    def paused(self) -> bool:
        """Off on purpose (a handheld between vehicles): no frame is no camera fault."""

    @property
    def finished(self) -> bool:
        """A finite source (a replay) has given its last frame."""

    @property
    def healthy(self) -> bool:
        """The device is open and delivering (False while it reconnects)."""


class CameraLike(FrameSourceLike, Protocol):
    """A frame source the kiosk opens and closes and the watchdog judges
    (`hardware.camera.FrameSource` and its wrappers; `sentinel.notify.WatchedSource`)."""

    @property
    def name(self) -> str: ...

    @property
    def last_error(self) -> str | None:
        """The most recent problem, kept after recovery."""

    @property
    def reconnect_attempts(self) -> int:
        """Grows while the backend retries (the watchdog's "alive and trying")."""

    def start(self) -> None: ...

    def close(self) -> None: ...


class DecoderLike(Protocol):
    """`decode`, and optionally `scan` (-> `sentinel.decoding.Scan`: also the codes located but not
    read). zxing-cpp and the cascade `make_decoder` builds from two or more backends have `scan`;
    pyzbar or WeChat alone (a config may name one backend) do not, so the pipeline looks once, when
    it is built, and without `scan` never asks for a code closer."""

    def decode(self, grey): ...  # -> list of objects with .text and .raw


class FaceMatcherLike(Protocol):
    def observe(self, frame: Frame, qr_in_view: bool = False) -> FaceObservation | None: ...


class PassWatchLike(Protocol):
    turned: bool | None

    def add_callback(self, callback: Callable[[PassWatchLike], None]) -> None:
        """Called once with this watch when the door sensor has answered (turned or not)."""


class Gate(Protocol):
    def pulse(self) -> PassWatchLike | None:
        """Open for the configured time, without blocking; closes by itself. A gate with a door
        sensor returns the watch of this pass (hardware.inputs.PassWatch), others None."""

    def close(self) -> None:
        """Close now (every exit path calls this)."""


class TriggerLike(Protocol):
    def take_press(self) -> bool:
        """True once per press since the last call."""

    def disarm(self) -> None:
        """A code was read: stop looking until the next press."""


class OutboxLike(Protocol):
    """What the pipeline needs of `sentinel.outbox.Outbox`."""

    def add(self, record, *, wake: bool = True) -> None:
        """Commit durably (an fsync); raises when the disk refuses."""

    def spill(self, record) -> bool:
        """Keep a record the disk refused in memory; False when the memory is full too."""

    def wake(self, record_id: str | None = None, **extra) -> None:
        """Tell the uploader a committed record is waiting (`extra`: e.g. its `latency_ms`)."""

    def health(self):  # -> sentinel.outbox.OutboxHealth (its `at_cap`: a reason, or None)
        ...


class ScannerLike(Protocol):
    def drain(self) -> list:
        """Payloads read since the last call (objects with .text and .raw), oldest first."""


class Display(Protocol):
    def show(self, screen: Screen) -> None:
        """Switch to this screen; must return at once (drawing happens elsewhere)."""

    def preview(self, frame: Frame) -> None:
        """The newest camera frame, for the live preview; must return at once."""


class WiredDisplay(Display, Protocol):
    """The kiosk's display (`ui.display.open_display`: console, pygame or headless): besides
    showing, it takes its hooks (`status`, `actions`, `on_quit`, `on_button`…; each backend uses
    those it has) and is closed with the kiosk."""

    def connect(self, **hooks) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class CheckOutcome:
    """What one check ended in; the demo prints these, the handheld shows them, tests assert on them.

    **Latency** (`CheckOutcome.latency_s`, the record's `extra.latency_ms`) is what the person at the
    gate feels: from the frame hand-over (the start of the `step` that saw the code, or the payload
    offered by a scanner) to the relay energised, or to the verdict shown when the gate stays shut
    (not a pass, a pass whose record is not durable, paused, a pulse that raised). The record was
    committed before the relay moved, so this value reaches it through `Outbox.wake` (kept in memory
    and added when the record is handed to the uploader; a record uploaded after a restart goes
    without it). The same value is on the `verdict` log line.
    """

    credential_kind: str | None  # None when the payload was rejected on the device
    status: str | None
    verdict: Verdict
    offline: bool
    latency_s: float  # from the frame that showed the code to the relay energised (or the verdict shown): module docstring
    record_id: str | None  # None when no record was made, or it could not even be kept in memory
    person: str = ""
    durable: bool = False  # the record was committed to the outbox (not merely held in memory)
    credential_hash: str | None = None  # the record's keyed hash of the credential: the same code seen again (handheld vehicles)
    id_masked: str = ""  # masked ID as the service returned it: with `person`, the same person across credential kinds
    #: the verdict screen the pipeline showed for this check (a presenter, e.g. the handheld's, may
    #: show it its own way); None only for outcomes made outside the pipeline
    screen: Screen | None = None

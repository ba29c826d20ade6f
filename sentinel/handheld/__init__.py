"""The handheld unit at a drive-through checkpoint: vehicle checks on top of the kiosk pipeline.

The pipeline stays what it is on a pillar (one person at a time: decode, verify, record, screen);
this controller sits beside it and groups its checks into vehicles:

- **start** a vehicle by touch (Start, Next vehicle) or the trigger; optionally type the **plate**
  on the keypad; the **driver and every passenger** show their codes in turn, each check is made,
  recorded and shown by the pipeline as usual, and the controller adds it to the vehicle by the
  rules in `sentinel.vehicle` (same person twice: flagged, not counted twice; a failed person
  re-scanned: the latest result counts);
- **finish** shows the vehicle's verdict and commits one `vehicle_session` record (plate,
  occupants, every check's record id and credential hash, the verdict) to the same outbox as the
  check records: delivered by the same uploader, offline or not;
- **back** (the summary's 返回本车 / Back to car, while the summary is up): the vehicle is open
  again as it was (a passenger missed, a refreshed code to re-scan). The record committed at
  Finish stays (durable at once, as always); the next Finish commits the vehicle again under the
  same `session_id`, with `extra.replaces` naming the earlier record: the later one is the vehicle.

Seams, so that it is wired by hand in tests and by `build_kiosk` on a handheld:

- `controller.display`: give this to the Pipeline as its display. The pipeline's screens come
  through it; while a vehicle is open they become the vehicle screen (the people checked so far,
  the latest check as a card), and the controller's own screens go to the real display.
- `controller.on_outcome` (or `controller.chain(other)`): the pipeline's `on_outcome`.
- `controller.gate_camera(source)`: the camera runs only while a vehicle is open or the trigger
  is armed (the kiosk passes `hardware.camera.gated.GatedSource`:
  the core imports no hardware module).
- `controller.press(button_id)`: a touch on one of its screens (the pygame display calls it).

Threads: outcomes arrive on the kiosk loop, touches on the display's thread, trigger presses and
time-outs on the controller's ticker; one lock orders them, and nothing under it blocks for
long (the outbox commit of a finished vehicle is the longest, a few ms).

The package: `controller` (the controller and its thread), `parts` (the parts it is given, its
phases and events, the display it gives the pipeline), `cards` (a check's card in the vehicle),
`screens` (the vehicle screens and their zh/en words, pure), `record` (a finished vehicle as the
`vehicle_session` record on the wire). The battery is read by `hardware.battery` and handed in.
"""


from sentinel.handheld.controller import HandheldController
from sentinel.handheld.parts import HandheldDisplay, Phase, VehicleEvent
from sentinel.handheld.record import session_record
from sentinel.handheld.screens import (
    TEXT,
    idle_screen,
    plate_screen,
    session_screen,
    summary_screen,
    text,
)

__all__ = [
    "TEXT", "HandheldController", "HandheldDisplay", "Phase", "VehicleEvent", "idle_screen", "plate_screen",
    "session_record", "session_screen", "summary_screen", "text",
]  # fmt: skip


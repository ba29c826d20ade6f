"""Face matching in the camera loop: who, of the people enrolled for this site, is in front of
the camera, if anyone, and only one person at a time.

`FaceMatcher.observe(frame, qr_in_view)` is what the kiosk loop calls. It answers None when a
detection is not due, and otherwise a `FaceObservation`. A detection is due (never while a QR code
is in view: codes come first, and a face costs tens to hundreds of milliseconds):

- at once when something changed in view since the last detection (`view_changed`: a cheap
  difference of a 1/4-scale thumbnail of the grey plane against the one of the last detection,
  about 0.1 ms), at most every `CHANGE_GAP_S`, while the last detection saw nobody of usable
  size: a person stepping up is looked at within a frame or two instead of waiting for the next
  slot of a fixed clock (issue 18: face in view -> relay waited up to 0.5 s for it). Once a face
  is in view, a moving person changes every frame; looking again at each change would encode
  their face every 0.1 s (77 ms each on a PC, about half a second on a Pi, on the frame loop),
  so from then on the clocks below decide;
- while nobody is in view and nothing changes, only every `IDLE_EVERY_S` (2 s, or
  `detect_every_s` if that is longer): the view is compared with the frame of the last
  detection, not the previous frame, so a slow change adds up and is seen; the 2 s are the
  safety net for a change too faint for the difference. An empty, still view costs one
  detection every 2 s instead of every `detect_every_s` (issue 18: idle cost proportional to
  what changes in view);
- while someone of usable size is in view (the last look found `several`, `unknown` or a
  `match`), or the engine failed at the last look, every `detect_every_s`, as before;
- every `liveness_every_s` while a matched face is watched for a sign of life (a blink is a small
  change the thumbnail may not see).

What it answers:

- `no_face`: nobody in view;
- `too_small`: only faces narrower than `min_face_px` (people further away, the queue behind);
- `several`: more than one face of usable size: the screen asks for one person at a time;
- `unknown`: one face, not in the gallery (or too close to two enrolled people to tell);
- `match`: one face, nearer than `tolerance` to an enrolled person. Whether that is a credential
  depends on the liveness check (sentinel/faces/liveness.py, `[faces] liveness`):
  `observation.liveness` is `watching` (matched, no sign of life yet: no credential, and the face
  is looked at every `liveness_every_s` meanwhile), `blink` or `moved` (alive: `credential` is
  the face credential to check with the service, debounced by the loop like a QR code), `none`
  (watched for `liveness_window_s` without a sign of life: a picture, or someone perfectly still)
  or `off` (not asked). A match the gate must not open for by itself has `staff_check` set
  (`face_not_live`, or `face_staff_check` with `[faces] match_verdict = "manual_check"`):
  `credential` is then None, and `staff_credential` is the credential for a check whose verdict
  is at best a manual check (sentinel/pipeline.py decides what to do with it).

`analyse` (one frame: `sentinel faces match`) judges no liveness and gives no credential.

Detection runs on the grey plane (always in a frame; on the Pi the lores stream's Y plane) at the
scale of `downscale_width` doubled as often as `min_face_px` needs, as before, but taken from the
frame's own pixels where the frame is that wide instead of being doubled by dlib
(`engine.detection_size`: 640 px for a 640-px frame and the default 80 px, where it was 320 px
doubled; the same faces, measured the same, without the upsampling pass). The encoding is then
computed on the full-size frame, in colour when the frame has colour (a little closer to colour
enrolment photos) and on the grey plane otherwise.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sentinel.credentials import Credential, CredentialKind
from sentinel.faces.engine import FaceBox, as_rgb, detection_size, resize, upsample_for
from sentinel.faces.liveness import Liveness, LivenessWatch

if TYPE_CHECKING:
    import numpy as np

    from sentinel.config import FacesConfig
    from sentinel.faces.gallery import Gallery, GalleryEntry
    from sentinel.frames import Frame

log = logging.getLogger("sentinel.faces")

#: a match must be this much nearer than the nearest *other* person, or it is not trusted:
#: two enrolled people both within tolerance of one face is a look-alike, not an identity
AMBIGUITY_MARGIN = 0.05
#: while the view keeps changing (someone walking up), detections are at least this far apart:
#: a HOG detection is 5-18 ms on a PC (bench/faces.py), so a moving view costs at most about a
#: fifth of a core
CHANGE_GAP_S = 0.1
#: while nobody is in view and the view does not change, look anyway this often: the view is
#: compared with the frame of the last detection (not the previous frame), so a slow change adds
#: up and is seen; this is the safety net for a change too faint for the difference
IDLE_EVERY_S = 2.0
#: the thumbnail the view is compared on: every THUMB_STEP-th pixel of every THUMB_STEP-th row
THUMB_STEP = 4
#: a thumbnail pixel counts as changed when its grey level moved by more than this (sensor noise
#: is a few levels; a face against a background is tens)
CHANGED_LEVEL = 24
#: the view changed when at least this fraction of thumbnail pixels did (a face 80 px wide in a
#: 640x480 frame is about 3 % of it; 0.2 % is a hand or a head entering at the edge)
CHANGED_FRACTION = 0.002


def thumbnail(grey: "np.ndarray") -> "np.ndarray":
    """The grey plane at 1/THUMB_STEP scale (strided, not averaged: no copy of the full frame)."""
    import numpy as np

    return np.asarray(grey[::THUMB_STEP, ::THUMB_STEP], dtype=np.int16)


def view_changed(before: "np.ndarray | None", now: "np.ndarray") -> bool:
    """Whether the view in thumbnail `now` changed against `before` (None: nothing to compare
    with, a changed size: both count as changed)."""
    import numpy as np

    if before is None or before.shape != now.shape:
        return True
    moved = int(np.count_nonzero(np.abs(now - before) > CHANGED_LEVEL))
    return moved >= max(1, int(CHANGED_FRACTION * now.size))


class ObservationKind(StrEnum):
    NO_FACE = "no_face"
    TOO_SMALL = "too_small"
    SEVERAL = "several"
    UNKNOWN = "unknown"
    MATCH = "match"


@dataclass(frozen=True)
class FaceObservation:
    kind: ObservationKind
    box: FaceBox | None = None  # the face this is about (the largest one), in grey-frame pixels
    boxes: tuple[FaceBox, ...] = ()  # every face found, usable or not
    person_id: str | None = None  # on a match only
    face_id: str | None = field(default=None, repr=False)  # the credential value on a match
    name_masked: str = ""
    distance: float | None = None  # to the nearest enrolled encoding, when a face was encoded
    detail: str = ""  # unknown: "not_enrolled" | "ambiguous" | "gallery_empty"
    liveness: str = ""  # on a match from `observe`: a `Liveness` value; "" from `analyse`
    staff_check: str = ""  # a reason code: this match may lead to a staff check, never a pass
    detect_s: float = 0.0
    encode_s: float = 0.0
    sequence: int | None = None  # the frame's

    @property
    def credential(self) -> Credential | None:
        """The credential of a match that may pass: alive (or liveness off), no staff check."""
        if self.kind is not ObservationKind.MATCH or not self.face_id or self.staff_check:
            return None
        if self.liveness not in (Liveness.OFF, Liveness.BLINK, Liveness.MOVED):
            return None
        return Credential(CredentialKind.FACE, self.face_id)

    @property
    def staff_credential(self) -> Credential | None:
        """The credential of a match that must not pass by itself (`staff_check` says why)."""
        if self.kind is not ObservationKind.MATCH or not self.face_id or not self.staff_check:
            return None
        return Credential(CredentialKind.FACE, self.face_id)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready; what `sentinel faces match` prints (face ids included: it is the technician's tool)."""
        out: dict[str, Any] = {"result": self.kind.value}
        if self.kind is ObservationKind.MATCH:
            out.update(person_id=self.person_id, face_id=self.face_id, name_masked=self.name_masked)
        if self.distance is not None:
            out["distance"] = round(self.distance, 4)
        if self.detail:
            out["detail"] = self.detail
        if self.liveness:
            out["liveness"] = self.liveness
        if self.staff_check:
            out["staff_check"] = self.staff_check
        if self.box is not None:
            out["box"] = self.box.as_dict()
        out["faces"] = len(self.boxes)
        return out


@dataclass(frozen=True)
class Identity:
    entry: "GalleryEntry | None"  # nearest enrolled encoding; None with an empty gallery
    distance: float | None
    matched: bool
    detail: str = ""


def identify(entries: "list[GalleryEntry]", matrix: "np.ndarray", encoding: "np.ndarray", tolerance: float) -> Identity:
    """The nearest enrolled person to `encoding`, and whether it counts as them."""
    import numpy as np

    if not entries:
        return Identity(None, None, False, "gallery_empty")
    distances = np.linalg.norm(matrix - np.asarray(encoding, np.float32), axis=1)
    best = int(np.argmin(distances))
    entry, distance = entries[best], float(distances[best])
    if distance > tolerance:
        return Identity(entry, distance, False, "not_enrolled")
    others = [float(d) for e, d in zip(entries, distances) if e.person_id != entry.person_id]
    if others and min(others) < distance + AMBIGUITY_MARGIN:
        return Identity(entry, distance, False, "ambiguous")
    return Identity(entry, distance, True)


class FaceMatcher:
    """`FaceMatcher(gallery, config.faces, clock)`; `engine` is a `FaceEngine` (loaded on first
    use, or now with `warm_up()`) or a stand-in with the same `detect`/`encode` (and `landmarks`:
    without it no face ever shows a sign of life). `liveness` holds the watched frames' history
    (a new `LivenessWatch` by default); its time is `clock`."""

    def __init__(
        self,
        gallery: "Gallery",
        config: "FacesConfig",
        clock: Callable[[], float] = time.monotonic,
        *,
        engine: Any = None,
        liveness: LivenessWatch | None = None,
    ) -> None:
        self._gallery = gallery
        self._watch = liveness or LivenessWatch(config.liveness_window_s)
        self.config = config
        self._clock = clock
        self._engine = engine
        self._last_detect = float("-inf")
        self._last_view: Any = None  # the thumbnail of the frame of the last detection
        self._nobody = True  # the last detection saw no face of usable size (changes in view count)
        self._version: Any = None
        self._entries: list = []
        self._matrix: Any = None
        self._failing = False

    @property
    def engine(self) -> Any:
        if self._engine is None:
            from sentinel.faces.engine import FaceEngine

            # the 68-point predictor (89 MB) only where the liveness check reads landmarks
            self._engine = FaceEngine(landmarks=self.config.liveness != "off")
        return self._engine

    def warm_up(self) -> None:
        """Load the engine and the gallery now (seconds on a Pi), not at the first face."""
        import numpy as np

        self.engine.detect(np.zeros((120, 160, 3), np.uint8), 0)
        self._refresh()

    def observe(self, frame: "Frame", qr_in_view: bool = False) -> FaceObservation | None:
        """The loop's call, on each frame while the kiosk is idle or showing a result. None: no
        detection was due (rate limit, or a QR code is in view), or the engine failed (logged)."""
        if qr_in_view:
            return None
        now = self._clock()
        since = now - self._last_detect
        view = None
        if self._watch.active:
            due = since >= self.config.liveness_every_s
        elif not self._nobody:
            due = since >= self.config.detect_every_s
        elif since >= max(IDLE_EVERY_S, self.config.detect_every_s):
            due = True
        elif since >= CHANGE_GAP_S:
            try:
                view = thumbnail(frame.grey)
                due = view_changed(self._last_view, view)
            except Exception:  # a frame the difference cannot read: the clock decides
                log.debug("view difference failed on frame %s", frame.sequence, exc_info=True)
                due = since >= self.config.detect_every_s
        else:
            due = False
        if not due:
            return None
        self._last_detect = now
        try:
            self._last_view = view if view is not None else thumbnail(frame.grey)
        except Exception:
            self._last_view = None
        try:
            observation = self._alive(self.analyse(frame.grey, frame.colour, sequence=frame.sequence), frame, now)
        except Exception:  # a face-engine fault must not take the kiosk down; codes still work
            if not self._failing:
                log.exception("face matching failed; QR codes are still checked")
            self._failing = True
            self._nobody = False  # a failing engine is tried again on the clock, not on every change
            return None
        self._nobody = observation.kind in (ObservationKind.NO_FACE, ObservationKind.TOO_SMALL)
        if self._failing:
            log.info("face matching works again")
            self._failing = False
        return observation

    def _alive(self, seen: FaceObservation, frame: "Frame", now: float) -> FaceObservation:
        """The liveness check and the site's verdict rule on a match (module docstring)."""
        if seen.kind is not ObservationKind.MATCH or seen.box is None or not seen.person_id:
            self._watch.miss(now)
            return seen
        if self.config.liveness == "off":
            state = Liveness.OFF
        else:
            state = self._watch.see(seen.person_id, self._landmarks(frame, seen.box), now)
        staff = ""
        if state is Liveness.NONE:
            staff = "face_not_live"
        elif state is not Liveness.WATCHING and self.config.match_verdict == "manual_check":
            staff = "face_staff_check"
        if state is not Liveness.WATCHING:
            log.info("face %s: liveness %s%s", seen.person_id, state.value, f", staff check ({staff})" if staff else "")
        return dataclasses.replace(seen, liveness=state.value, staff_check=staff)

    def _landmarks(self, frame: "Frame", box: FaceBox) -> "np.ndarray | None":
        find = getattr(self.engine, "landmarks", None)
        if find is None:  # a stand-in engine without landmarks: never a sign of life
            return None
        image, box = self._image_for(frame.grey, frame.colour, box)
        (points,) = find(as_rgb(image), [box])
        return points

    def analyse(
        self,
        grey: "np.ndarray",
        colour: "np.ndarray | None" = None,
        *,
        sequence: int | None = None,
        detect_width: int | None = None,
        upsample: int | None = None,
    ) -> FaceObservation:
        """One frame, now: detect, keep faces of usable size, encode the single one, identify it.
        `detect_width` and `upsample` override the loop's settings (still images)."""
        h, w = grey.shape[:2]
        if detect_width is None:
            width, n_up = detection_size(w, self.config.min_face_px, self.config.downscale_width)
        else:
            width = min(w, detect_width)
            n_up = upsample_for(self.config.min_face_px, width / w)
        if upsample is not None:
            n_up = upsample
        started = time.perf_counter()
        small = resize(grey, width) if width != w else grey
        found = self.engine.detect(small, n_up, self.config.min_score)  # dlib's HOG reads grey as it is
        detect_s = time.perf_counter() - started
        boxes = tuple(sorted((b.scaled(w / small.shape[1], h / small.shape[0]).clipped(w, h) for b in found),
                             key=lambda b: -b.width))
        base = {"boxes": boxes, "detect_s": detect_s, "sequence": sequence}
        if not boxes:
            return FaceObservation(ObservationKind.NO_FACE, **base)
        usable = [b for b in boxes if b.width >= self.config.min_face_px]
        if not usable:
            return FaceObservation(ObservationKind.TOO_SMALL, box=boxes[0], **base)
        if len(usable) > 1:
            return FaceObservation(ObservationKind.SEVERAL, box=usable[0], **base)
        box = usable[0]
        self._refresh()
        if not self._entries:  # nothing to compare with: spare the encoding
            return FaceObservation(ObservationKind.UNKNOWN, box=box, detail="gallery_empty", **base)
        started = time.perf_counter()
        encoding = self.encode(grey, colour, box)
        encode_s = time.perf_counter() - started
        who = identify(self._entries, self._matrix, encoding, self.config.tolerance)
        entry = who.entry
        log.debug("face %s (distance %.3f%s)", "matched" if who.matched else "unknown", who.distance, f", {who.detail}" if who.detail else "")
        return FaceObservation(
            ObservationKind.MATCH if who.matched else ObservationKind.UNKNOWN,
            box=box,
            person_id=entry.person_id if who.matched and entry else None,
            face_id=entry.face_id if who.matched and entry else None,
            name_masked=entry.name_masked if who.matched and entry else "",
            distance=who.distance,
            detail=who.detail,
            encode_s=encode_s,
            **base,
        )

    def encode(self, grey: "np.ndarray", colour: "np.ndarray | None", box: FaceBox) -> "np.ndarray":
        """The encoding of the face in `box` (grey-frame pixels), on the colour image when there is
        one (on the Pi it may be bigger than the grey plane: the box is scaled to it)."""
        image, box = self._image_for(grey, colour, box)
        (encoding,) = self.engine.encode(as_rgb(image), [box])
        return encoding

    @staticmethod
    def _image_for(grey: "np.ndarray", colour: "np.ndarray | None", box: FaceBox) -> tuple["np.ndarray", FaceBox]:
        if colour is None:
            return grey, box
        gh, gw = grey.shape[:2]
        ch, cw = colour.shape[:2]
        return colour, box.scaled(cw / gw, ch / gh).clipped(cw, ch)

    def _refresh(self) -> None:
        version = self._gallery.version()
        if version != self._version:
            self._entries, self._matrix = self._gallery.matrix()
            self._version = version
            log.info("face gallery: %d encodings of %d people", len(self._entries), len({e.person_id for e in self._entries}))

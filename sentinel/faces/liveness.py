"""Is the matched face a live person, or a picture of one?

A printed photo of an enrolled person, even blurred and tilted, matches like the person (one such
photo matched at distance 0.32 and opened a gate). So a match counts only after the face showed a
sign of life while it was watched (`[faces] liveness_window_s`, looked at every
`liveness_every_s`), judged from dlib's 68 face landmarks in successive frames:

- **a blink**: the eye aspect ratio (eye height over eye width, both eyes averaged) drops below
  BLINK_CLOSED of the open level seen before and comes back above BLINK_OPEN of it;
- **a head movement**: the landmarks of two frames cannot be mapped onto each other by a plane
  projection (a homography, fitted by least squares). Everything a flat picture can do in front
  of a camera, moved, turned, tilted, nearer or further, blurred, is such a mapping; a real head
  turning or nodding moves the nose against the cheeks and the face outline, and a face that
  speaks or smiles changes shape. Measured on ../shared/data/faces and the shipped portrait
  (landmark residual after the best homography, RMS, in inter-ocular distances): one photo
  warped in perspective by up to 15 % of its size, with and without blur, 0.00-0.037; the same
  photo at two sizes 0.016; two photos of the same person 0.10-0.20. MOVE_RESIDUAL sits between.

What it stops and what it does not is in docs/faces.md: it stops a still picture held up,
tilted or waved; it does not stop a video of the person on a phone, a picture bent while it
moves, two pictures (eyes open, eyes closed) swapped, or a mask. Nothing here fails open: no
landmarks (an engine without them, a face the model cannot read) is no sign of life, and after
the window the match becomes a staff check (`Liveness.NONE`).

Why the 68 points, at +70 MB of the kiosk's memory (issue 18): the 5 points the encoder uses
cannot tell a held print from a head, and the face's pixels are fooled by light. Measured by
bench/faces.py (`liveness_cues`): the 5 points' residual after an affine map is at most 0.012
for a print held at 20 angles and 0.010-0.036 between two photos of the same person in other
poses (four of the five points lie on one line: an affine map absorbs any nose movement); the
face's pixels, aligned on the 5 points, change 0.36-0.52 between poses against at most 0.041
for the held print, but 0.12-0.38 for a glare spot moving over the print, so a glossy print or a
screen under a light would pass. The 68 points: 0.035 for the held print, 0.021 with the glare,
0.11-0.18 between poses.

The history is one watch of one person: a different person, or no match for LOST_AFTER_S,
starts a new watch. Time comes from the caller (the matcher's injected clock). numpy is imported
only when landmarks are compared.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

#: eyes count as closed below this fraction of the open level seen before in the watch
BLINK_CLOSED = 0.6
#: and open again above this fraction of it (a photo warped in perspective varies by at most 20 %)
BLINK_OPEN = 0.85
#: landmarks that no plane projection explains to within this RMS (inter-ocular distances) moved
MOVE_RESIDUAL = 0.06
#: a watched face not matched for this long is gone: the next match starts a new watch
LOST_AFTER_S = 1.5

#: dlib's 68-point order (what face_recognition's "large" model gives), as face_recognition names it
LANDMARK_PARTS = (
    ("chin", 17), ("left_eyebrow", 5), ("right_eyebrow", 5), ("nose_bridge", 4), ("nose_tip", 5),
    ("left_eye", 6), ("right_eye", 6), ("top_lip", 12), ("bottom_lip", 12),
)  # fmt: skip
_LEFT_EYE = slice(36, 42)
_RIGHT_EYE = slice(42, 48)


class Liveness(StrEnum):
    OFF = "off"  # the site does not ask (`[faces] liveness = "off"`)
    WATCHING = "watching"  # matched, no sign of life yet, the window still open: no credential yet
    BLINK = "blink"
    MOVED = "moved"
    NONE = "none"  # watched for the whole window without a sign of life: a staff check

    @property
    def live(self) -> bool:
        return self in (Liveness.BLINK, Liveness.MOVED)


def landmarks_from_parts(parts: dict[str, Sequence[Sequence[float]]]) -> "np.ndarray | None":
    """face_recognition's `face_landmarks(..., model="large")` dict as a 68×2 array in dlib's
    order; None when a part is missing (the 5-point model, a broken answer)."""
    import numpy as np

    points: list[Sequence[float]] = []
    for name, count in LANDMARK_PARTS:
        part = parts.get(name)
        if part is None or len(part) != count:
            return None
        points += part
    return np.asarray(points, dtype=np.float64)


def eye_aspect_ratio(points: "np.ndarray") -> float:
    """Both eyes' (|p2-p6| + |p3-p5|) / (2 |p1-p4|), averaged (Soukupová and Čech, 2016)."""
    import numpy as np

    ratios = []
    for eye in (points[_LEFT_EYE], points[_RIGHT_EYE]):
        width = float(np.linalg.norm(eye[0] - eye[3]))
        if width <= 0:
            return 0.0
        ratios.append((np.linalg.norm(eye[1] - eye[5]) + np.linalg.norm(eye[2] - eye[4])) / (2 * width))
    return float(sum(ratios) / 2)


def inter_ocular(points: "np.ndarray") -> float:
    import numpy as np

    return float(np.linalg.norm(points[_LEFT_EYE].mean(axis=0) - points[_RIGHT_EYE].mean(axis=0)))


def plane_residual(a: "np.ndarray", b: "np.ndarray") -> float:
    """How far landmarks `b` are from the best plane projection (homography) of landmarks `a`:
    RMS over the points, in `b`'s inter-ocular distances. About 0 for two views of a flat picture."""
    import numpy as np

    iod = inter_ocular(b)
    if iod <= 0 or len(a) != len(b) or len(a) < 5:
        return 0.0
    an, _ = _normalised(a)
    bn, b_scale = _normalised(b)
    rows = []
    for (x, y), (u, v) in zip(an, bn):
        rows.append([-x, -y, -1, 0, 0, 0, u * x, u * y, u])
        rows.append([0, 0, 0, -x, -y, -1, v * x, v * y, v])
    _, _, vt = np.linalg.svd(np.asarray(rows))
    h = vt[-1].reshape(3, 3)
    mapped = np.c_[an, np.ones(len(an))] @ h.T
    w = mapped[:, 2:]
    if np.any(np.abs(w) < 1e-12):
        return float("inf")
    error = np.linalg.norm(mapped[:, :2] / w - bn, axis=1) * b_scale
    return float(np.sqrt(np.mean(error**2)) / iod)


def _normalised(points: "np.ndarray") -> tuple["np.ndarray", float]:
    import numpy as np

    centred = points - points.mean(axis=0)
    scale = float(np.sqrt((centred**2).sum(axis=1).mean())) or 1.0
    return centred / scale, scale


@dataclass
class _Sample:
    at: float
    points: Any  # 68×2 array, or None: the face was seen but its landmarks could not be read
    ear: float | None


@dataclass
class LivenessWatch:
    """The frames of one matched person, judged as they come: `see` per matched frame, `miss`
    per frame without that match. `window_s` as `[faces] liveness_window_s`."""

    window_s: float = 3.0
    person_id: str | None = None
    started: float = 0.0
    last_seen: float = float("-inf")
    verdict: Liveness = Liveness.WATCHING
    samples: list[_Sample] = field(default_factory=list)

    @property
    def active(self) -> bool:
        """A matched face is being watched (the matcher looks more often meanwhile)."""
        return self.person_id is not None and self.verdict is Liveness.WATCHING

    def miss(self, now: float) -> None:
        if self.person_id is not None and now - self.last_seen > LOST_AFTER_S:
            self.reset()

    def reset(self) -> None:
        self.person_id = None
        self.samples = []
        self.verdict = Liveness.WATCHING

    def see(self, person_id: str, points: "np.ndarray | None", now: float) -> Liveness:
        """One frame in which `person_id` matched, with its landmarks (None: not readable)."""
        if person_id != self.person_id or now - self.last_seen > LOST_AFTER_S:
            self.reset()
            self.person_id = person_id
            self.started = now
        self.last_seen = now
        if self.verdict is not Liveness.WATCHING:
            return self.verdict  # decided for as long as this person stays in view
        sample = _Sample(now, points, eye_aspect_ratio(points) if points is not None else None)
        self.samples.append(sample)
        if self._blinked():
            self.verdict = Liveness.BLINK
        elif self._moved(sample):
            self.verdict = Liveness.MOVED
        elif now - self.started >= self.window_s:
            self.verdict = Liveness.NONE
        return self.verdict

    def _blinked(self) -> bool:
        open_level = 0.0
        closed = False
        for s in self.samples:
            if s.ear is None:
                continue
            if closed and s.ear >= BLINK_OPEN * open_level:
                return True
            if open_level and s.ear < BLINK_CLOSED * open_level:
                closed = True
            elif not closed:
                open_level = max(open_level, s.ear)
        return False

    def _moved(self, newest: _Sample) -> bool:
        if newest.points is None:
            return False
        return any(
            s.points is not None and plane_residual(s.points, newest.points) > MOVE_RESIDUAL for s in self.samples[:-1]
        )

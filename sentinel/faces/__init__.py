"""Face matching: for people without a phone (the elderly, children), a sentinel at a housing
compound or factory matches their face against the people enrolled for its site and then asks the
service for that person's status, like for any other credential.

- `engine`: dlib's HOG detector, 5-point predictor and face encoder (and the 68-point predictor
  for liveness), loaded through dlib from face-recognition-models' files (an optional extra,
  imported only when a `FaceEngine` is made);
- `gallery`: the enrolled encodings in `<state_dir>/faces/gallery.sqlite3` (masked names only);
- `matcher`: `FaceMatcher.observe(frame, qr_in_view)` for the kiosk loop;
- `liveness`: a match counts only after a blink or a head movement (a picture gets a staff check,
  never a pass; docs/faces.md);
- `enrol`: enrolment from image files (`sentinel faces enroll`);
- `sync`: the gallery kept in step with the service's `GET /v1/faces`.

Importing this package loads none of dlib, face_recognition or numpy.
"""

from sentinel.faces.engine import INSTALL_HINT, EngineUnavailable, FaceBox, available
from sentinel.faces.gallery import Gallery, GalleryError, gallery_path
from sentinel.faces.matcher import FaceMatcher, FaceObservation, ObservationKind

__all__ = [
    "INSTALL_HINT",
    "EngineUnavailable",
    "FaceBox",
    "FaceMatcher",
    "FaceObservation",
    "Gallery",
    "GalleryError",
    "ObservationKind",
    "available",
    "gallery_path",
]

"""Face matching as one part of a kiosk: the gallery, the matcher for the loop, and the sync with
the service, opened together, started with the loop and closed together.

    faces = open_faces(config, make_client)   # None when [faces] is off or the engine is missing
    Pipeline(..., faces=faces.matcher if faces else None)
    faces.start()                              # with the loop: a full gallery sync at once
    faces.close()                              # on the way out

Without the face engine the kiosk still checks codes: `open_faces` logs why faces are off and
answers None rather than stopping a kiosk that staff rely on for codes.

Retention: with `[faces] enabled = false`, `open_faces` (called once at kiosk start, after the
state lock is taken) also destroys a gallery left from when the site used faces
(`gallery.destroy_if_disabled`): a device keeps no biometric data it does not use.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sentinel.faces.engine import EngineUnavailable
from sentinel.faces.gallery import Gallery, destroy_if_disabled
from sentinel.faces.matcher import FaceMatcher
from sentinel.faces.sync import GallerySync

if TYPE_CHECKING:
    from sentinel.config import SentinelConfig

log = logging.getLogger("sentinel.faces")


@dataclass
class FaceMatching:
    gallery: Gallery
    matcher: FaceMatcher
    sync: GallerySync | None
    client: Any = None  # the sync's own ServiceClient

    def start(self) -> None:
        if self.sync is not None:
            self.sync.start()

    def close(self) -> None:
        for step in (self.sync.stop if self.sync else None, getattr(self.client, "close", None), self.gallery.close):
            if step is None:
                continue
            try:
                step()
            except Exception:
                log.exception("error while closing face matching")


def open_faces(config: "SentinelConfig", make_client: Callable[["SentinelConfig"], Any] | None = None) -> FaceMatching | None:
    """The kiosk's face matching, loaded (dlib and its models take seconds on a Pi: now, not at the
    first face), or None when `[faces] enabled` is false or the engine cannot load (logged).
    `make_client(config)` makes the sync's own service client (never the verifier's session);
    without it the gallery is matched as it is, never synced."""
    if not config.faces.enabled:
        destroy_if_disabled(config)  # never raises; logs what it destroyed
        return None
    if config.faces.liveness == "off":
        log.warning("[faces] liveness = off: a photo of an enrolled person is let in like the person (docs/faces.md)")
    if config.faces.match_verdict == "manual_check":
        log.info("[faces] match_verdict = manual_check: every face match is a staff check")
    gallery = Gallery.for_config(config)
    matcher = FaceMatcher(gallery, config.faces)
    try:
        matcher.warm_up()
    except EngineUnavailable as e:
        gallery.close()
        log.error("[faces] enabled = true, but face matching cannot run: %s. Checking codes only.", e)
        return None
    except BaseException:
        gallery.close()
        raise
    client = sync = None
    if make_client is not None:
        try:
            client = make_client(config)
        except BaseException:
            gallery.close()
            raise
        sync = GallerySync(gallery, client, config.device.site_id, every_s=config.faces.sync_every_s)
    log.info("face matching on: %d enrolled encodings here, tolerance %.2f", len(gallery), config.faces.tolerance)
    return FaceMatching(gallery, matcher, sync, client)

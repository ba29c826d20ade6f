"""Keeping the device's gallery in step with the service's (`GET /v1/faces?site_id=&since=`).

A full sync (every entry of the site) at start and once a day replaces the synced rows, so people
the service no longer lists for this site leave the gallery; in between, deltas (`since` = the
service's `as_of` of the last answer) bring new and changed entries. Offline, the kiosk keeps
matching against what it has: a failed sync is logged and tried again at the next interval.
Local enrolments are never touched by a sync.

It runs on its own thread, with its own service client (never the verifier's session), so a
slow gallery download never delays a check.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sentinel.faces.gallery import Gallery

log = logging.getLogger("sentinel.faces.sync")

FULL_SYNC_EVERY = timedelta(hours=24)


@dataclass(frozen=True)
class SyncResult:
    ok: bool
    full: bool
    stored: int = 0
    removed: int = 0
    error: str = ""


@dataclass(eq=False)
class GallerySync:
    """`GallerySync(gallery, client, site_id)`; `client` is a ServiceClient (its `faces(since)`)."""

    gallery: Gallery
    client: Any
    site_id: str
    _: KW_ONLY
    every_s: float = 300.0
    full_every: timedelta = FULL_SYNC_EVERY
    wall: Callable[[], datetime] = field(default=lambda: datetime.now(UTC), repr=False)
    last: SyncResult | None = field(default=None, init=False)
    #: set after the first sync that worked (tests, the demo)
    synced: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)

    def sync_once(self, full: bool | None = None) -> SyncResult:
        """One sync now; never raises. `full` None: full when the last full one is a day old."""
        state = self.gallery.sync_state(self.site_id)
        if full is None:
            full = state is None or self.wall() - state.full_at >= self.full_every
        try:
            answer = self.client.faces(None if full or state is None else state.as_of)
            stored, removed = self.gallery.apply_service(self.site_id, answer.faces, answer.as_of, full=full)
        except Exception as e:  # ClientError, a dying SD card: keep the gallery there is
            code = getattr(e, "code", type(e).__name__)
            result = SyncResult(False, full, error=f"{code}: {e}")
            log.warning("face gallery sync failed (%s); matching against the gallery already here", result.error)
        else:
            result = SyncResult(True, full, stored, removed)
            log.info("face gallery %s sync: %d entries stored, %d removed", "full" if full else "delta", stored, removed)
            self.synced.set()
        self.last = result
        return result

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="face-gallery-sync", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.sync_once()
            self._stop.wait(max(1.0, self.every_s - (time.monotonic() - started)))

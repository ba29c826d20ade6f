"""The service's shared state on `app.state`, and the retention purge that reads it.

`app.create_app` puts the store, clock, limits and retention on `app.state`; the routers and the
server's purge timer read them through the helpers here. This module sits below both `app.py` and
the routers so neither imports the other (the routers used to import `PURGE_EVERY` back from
`app.py`, an import circle).

Failure: a purge that raises (the database locked or gone) propagates to the request or timer that
ran it; `last_purge` is set before the purge, so a failing purge is not retried on every request.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from fastapi import Request

from sentinel.service.store import Store

log = logging.getLogger("sentinel.service")

#: how often an app purges records past the retention period (on the next upload after this)
PURGE_EVERY = timedelta(hours=1)


def store_of(request: Request) -> Store:
    return request.app.state.store


def now_of(request: Request) -> datetime:
    return request.app.state.clock()


def purge_expired(app, now: datetime) -> int:
    """Purge records past the app's retention period (and rate-limit state long idle); returns
    how many records went."""
    app.state.limits.forget_idle()
    if app.state.retention is None:
        return 0
    app.state.last_purge = now
    gone = app.state.store.purge_records(now - app.state.retention)
    if gone:
        log.info("purged %d records older than %s", gone, app.state.retention)
    return gone


def maybe_purge(request: Request) -> None:
    """Purge if retention is set and PURGE_EVERY has passed since the last purge."""
    last, now = request.app.state.last_purge, now_of(request)
    if request.app.state.retention is not None and (last is None or now - last >= PURGE_EVERY):
        purge_expired(request.app, now)

"""A finished vehicle as the outbox keeps it and the service stores it (`contract.VehicleSessionIn`):
the wire mapping, apart from the controller that decides when a vehicle is finished.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sentinel.vehicle import AttemptRole, VehicleSession, new_id

if TYPE_CHECKING:
    from sentinel.contract import VehicleSessionIn

log = logging.getLogger("sentinel.handheld")

def session_record(session: VehicleSession, device_id: str, site_id: str, *, record_id: str | None = None,
                   replaces: str | None = None) -> VehicleSessionIn:
    """The vehicle as the outbox keeps it and the service stores it (`contract.VehicleSessionIn`).
    Attempts without a credential hash (a pipeline that did not say it) are left out, logged.
    `replaces`: the record id of the same vehicle finished before staff went back to it (the
    summary's Back); both records carry the same `session_id`, the later one is the vehicle."""
    from sentinel.contract import (
        Mode,
        VehicleAttempt,
        VehicleOccupant,
        VehicleSessionIn,
    )

    verdict = session.verdict()
    occupants = []
    for occupant in session.occupants:
        attempts = []
        for attempt in occupant.attempts:
            c = attempt.check
            if not c.credential_hash or not c.credential_kind:
                log.error("vehicle %s seat %d: a check without a credential hash is left out of the record", session.id, occupant.seat)
                continue
            attempts.append(
                VehicleAttempt(
                    record_id=c.record_id,
                    role=attempt.role.value,
                    credential_kind=c.credential_kind,
                    credential_hash=c.credential_hash,
                    verdict=c.verdict.kind,
                    reason=c.verdict.reason,
                    mode=Mode.OFFLINE if c.offline else Mode.ONLINE,
                )
            )
        if not attempts:
            continue
        latest = occupant.latest
        counted = [a for a in attempts if a.role != AttemptRole.DUPLICATE.value]
        occupants.append(
            VehicleOccupant(
                seat=occupant.seat,
                verdict=latest.verdict.kind,
                reason=latest.verdict.reason,
                record_id=latest.record_id,
                credential_hash=(counted or attempts)[-1].credential_hash,
                duplicate=occupant.duplicates > 0,
                rescanned=occupant.rescanned,
                attempts=attempts[-20:],
            )
        )
    finished = session.finished_at or datetime.now(UTC)
    c = session.counts()
    return VehicleSessionIn(
        kind="vehicle_session",
        id=record_id or new_id(),
        created_at=finished,
        device_id=device_id,
        site_id=site_id,
        session_id=session.id,
        started_at=session.started_at,
        finished_at=finished,
        closed_by=session.closed_by if session.closed_by in ("timeout", "shutdown") else "finish",
        plate=session.plate,
        verdict=verdict.kind,
        reason=verdict.reason,
        mode=Mode.OFFLINE if session.offline else Mode.ONLINE,
        occupants=occupants,
        extra={"duration_s": round((finished - session.started_at).total_seconds(), 3), "rescans": c["rescans"], "duplicates": c["duplicates"],
               **({"replaces": replaces} if replaces else {})},
    )

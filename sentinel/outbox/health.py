"""The outbox's health as the screen, the heartbeat and a technician see it: the caps
(`OutboxLimits`), the alarm model (`build_health`: which alarms, which cap stops the gate from
opening by itself) and the alarm texts in both languages. Pure computation: nothing here touches
the disk, so the kiosk can ask for it on every frame.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sentinel.locale import message, pairs

if TYPE_CHECKING:
    from sentinel.config import OutboxConfig

#: alarm code → (zh-CN, en), most serious first; the texts are `outbox.alarm.<code>` in the message
#: catalogue (sentinel/locale/), their format fields come from `OutboxHealth`
ALARM_TEXT: dict[str, tuple[str, str]] = pairs("outbox.alarm", (
    "outbox_near_cap", "outbox_full", "outbox_old_near_cap", "outbox_overdue", "outbox_unavailable",
    "outbox_spilling", "outbox_records_lost", "outbox_corrupt_moved", "outbox_rejected",
))


@dataclass(frozen=True)
class OutboxLimits:
    max_records: int = 200_000
    max_age_s: float = 72 * 3600.0
    alarm_fraction: float = 0.8
    spill_max: int = 10_000
    #: how long records the service refused are kept (audit, export) before they are purged
    rejected_retention_s: float = 30 * 86400.0

    @classmethod
    def from_config(cls, o: OutboxConfig) -> OutboxLimits:
        """The limits a config's `[outbox]` sets (the kiosk, `sentinel doctor` and `sentinel outbox` alike)."""
        return cls(
            max_records=o.max_records, max_age_s=o.max_age_h * 3600, alarm_fraction=o.alarm_fraction,
            spill_max=o.memory_spill_max, rejected_retention_s=o.rejected_retention_days * 86400,
        )  # fmt: skip


@dataclass(frozen=True)
class OutboxHealth:
    """What a technician, the screen and the heartbeat need to know, without touching the disk."""

    depth: int  # records waiting for upload: on disk plus in memory
    spilled: int  # of which held only in memory (not durable)
    rejected: int  # refused by the service, set aside
    lost: int  # records that could not be kept at all, since start
    oldest_created_at: datetime | None
    oldest_age_s: float | None
    max_records: int
    max_age_s: float
    size_fraction: float
    age_fraction: float
    at_cap: str | None  # None, or the verdict reason while at a cap: "outbox_full" | "outbox_overdue"
    alarms: tuple[str, ...]  # codes of ALARM_TEXT, most serious first
    corrupt_copies: tuple[str, ...] = field(default_factory=tuple)  # moved aside by this process
    salvaged: int = 0

    @property
    def fraction(self) -> float:
        return max(self.size_fraction, self.age_fraction)

    @property
    def level(self) -> str:
        """ok | warning | critical: what colour a status light should be."""
        if self.at_cap or self.lost or self.spilled or {"outbox_corrupt_moved", "outbox_unavailable"} & set(self.alarms):
            return "critical"
        return "warning" if self.alarms else "ok"

    def messages(self, language: str = "en") -> list[str]:
        values = {
            "depth": self.depth,
            "spilled": self.spilled,
            "rejected": self.rejected,
            "lost": self.lost,
            "salvaged": self.salvaged,
            "max_records": self.max_records,
            "max_age_h": self.max_age_s / 3600,
            "oldest_age_h": (self.oldest_age_s or 0) / 3600,
        }
        return [message(f"outbox.alarm.{a}", language, **values) for a in self.alarms]

    def as_dict(self) -> dict[str, Any]:
        return {
            "depth": self.depth,
            "spilled": self.spilled,
            "rejected": self.rejected,
            "lost": self.lost,
            "oldest_created_at": self.oldest_created_at.isoformat() if self.oldest_created_at else None,
            "oldest_age_s": None if self.oldest_age_s is None else round(self.oldest_age_s, 3),
            "max_records": self.max_records,
            "max_age_s": self.max_age_s,
            "fraction": round(self.fraction, 4),
            "level": self.level,
            "at_cap": self.at_cap,
            "alarms": list(self.alarms),
            "corrupt_copies": list(self.corrupt_copies),
            "salvaged": self.salvaged,
        }


def build_health(
    limits: OutboxLimits,
    now: datetime,
    *,
    depth: int,
    spilled: int = 0,
    rejected: int = 0,
    lost: int = 0,
    oldest: datetime | None = None,
    corrupt: tuple[str, ...] = (),
    salvaged: int = 0,
    unavailable: bool = False,
) -> OutboxHealth:
    age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else None
    size_fraction = depth / limits.max_records
    age_fraction = (age or 0.0) / limits.max_age_s
    alarms: list[str] = []
    at_cap = None
    if lost:
        alarms.append("outbox_records_lost")
    if unavailable:
        alarms.append("outbox_unavailable")
    if spilled:
        alarms.append("outbox_spilling")
    if size_fraction >= 1:
        alarms.append("outbox_full")
        at_cap = "outbox_full"
    if age_fraction >= 1:
        alarms.append("outbox_overdue")
        at_cap = at_cap or "outbox_overdue"
    if corrupt:
        alarms.append("outbox_corrupt_moved")
    if limits.alarm_fraction <= size_fraction < 1:
        alarms.append("outbox_near_cap")
    if limits.alarm_fraction <= age_fraction < 1:
        alarms.append("outbox_old_near_cap")
    if rejected:
        alarms.append("outbox_rejected")
    return OutboxHealth(
        depth=depth,
        spilled=spilled,
        rejected=rejected,
        lost=lost,
        oldest_created_at=oldest,
        oldest_age_s=age,
        max_records=limits.max_records,
        max_age_s=limits.max_age_s,
        size_fraction=size_fraction,
        age_fraction=age_fraction,
        at_cap=at_cap,
        alarms=tuple(alarms),
        corrupt_copies=corrupt,
        salvaged=salvaged,
    )


def log_alarm_changes(previous: tuple[str, ...], health: OutboxHealth, log: logging.Logger) -> tuple[str, ...]:
    """Log each alarm once when it appears (a warning for the early ones, an error for the rest)
    and once when it clears; returns the alarms now up."""
    current = health.alarms
    if current == previous:
        return current
    texts = dict(zip(current, health.messages("en"), strict=True))
    for alarm in current:
        if alarm not in previous:
            level = logging.WARNING if alarm in ("outbox_near_cap", "outbox_old_near_cap", "outbox_rejected") else logging.ERROR
            log.log(level, "ALARM %s: %s", alarm, texts[alarm])
    for alarm in previous:
        if alarm not in current:
            log.warning("alarm cleared: %s", alarm)
    return current

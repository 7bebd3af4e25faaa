"""Health history, liveness transitions and alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint, func, text
from sqlalchemy.orm import Mapped, mapped_column

from fleet.models.base import BIG_ID, Base, UTCDateTime, utcnow

HEALTH_SAMPLE_KEY = "uq_health_snapshots_sample"  # one snapshot per (device, time sampled)


class HealthSnapshot(Base):
    __tablename__ = "health_snapshots"
    __table_args__ = (
        Index("ix_health_device_at", "device_pk", "at"),
        Index("ix_health_at", "at"),  # the retention purge
        # A redelivered snapshot is stored once. Snapshots stored before the device's time
        # was kept have none, and NULLs never collide.
        UniqueConstraint("device_pk", "sampled_at", name=HEALTH_SAMPLE_KEY),
    )

    # 100,000 devices reporting hourly fill a 32-bit key in about two and a half years.
    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    device_pk: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())  # when the fleet received it
    sampled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # the device's own time
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


# Histories in the order the device took them; snapshots from before the device's time was
# kept fall back to when they arrived.
SAMPLED_ORDER = func.coalesce(HealthSnapshot.sampled_at, HealthSnapshot.at)


class StateChange(Base):
    __tablename__ = "device_state_changes"
    __table_args__ = (
        Index("ix_state_changes_device_at", "device_pk", "at"),
        Index("ix_state_changes_at", "at"),  # the retention purge
    )

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    device_pk: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(200))


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        # One live alert per device and rule: a repeat condition updates it instead.
        Index(
            "uq_alerts_one_live",
            "device_pk",
            "rule",
            unique=True,
            sqlite_where=text("state != 'resolved'"),
            postgresql_where=text("state != 'resolved'"),
        ),
        Index("ix_alerts_borough_state", "borough_id", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_pk: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    borough_id: Mapped[int | None] = mapped_column(ForeignKey("boroughs.id", ondelete="SET NULL"))
    rule: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16), default="warning")
    state: Mapped[str] = mapped_column(String(16), default="open")  # open | acknowledged | resolved
    message: Mapped[str] = mapped_column(String(400))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_by: Mapped[str | None] = mapped_column(String(200))

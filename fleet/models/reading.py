"""Readings: one row per (device, metric, time); the unique key makes ingest idempotent.

The table is the fleet's largest and hottest: 100,000 devices write ~58 million rows a day.
Its ids are 64-bit (a 32-bit key runs out within weeks at that rate), and `device_pk` has no
foreign key: the ingest, its only writer, inserts in the same transaction that holds the
device's row lock, so a per-row referential check would only repeat what the lock already
guarantees (it cost about a quarter of PostgreSQL's ingest CPU). Decommissioning retires a
device and keeps its readings; erasing one deletes them itself (`fleet.registry.devices.erase`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fleet.models.base import BIG_ID, Base, UTCDateTime, utcnow


class Reading(Base):
    __tablename__ = "readings"
    __table_args__ = (
        # On PostgreSQL the key also carries the value, so a long-range chart of one device
        # reads the index alone instead of one heap page per reading (readings of many
        # devices arrive interleaved); one index still serves both the key and the charts.
        UniqueConstraint(
            "device_pk", "metric", "ts", name="uq_readings_sample", postgresql_include=["value"]
        ),
        Index("ix_readings_device_ts", "device_pk", "ts"),
    )

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    device_pk: Mapped[int] = mapped_column(Integer)
    metric: Mapped[str] = mapped_column(String(32))
    ts: Mapped[datetime] = mapped_column(UTCDateTime())
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

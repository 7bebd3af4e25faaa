"""Damp and mould risk: per-placement state, hourly aggregates, property levels and cases."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from fleet.models.base import Base, UTCDateTime, utcnow


class RiskProfile(Base):
    """Survey facts for estimating surface conditions, for a property or one placement in it.

    A placement's profile overrides its property's; unset fields fall back to the settings.
    """

    __tablename__ = "risk_profiles"
    __table_args__ = (
        UniqueConstraint("property_id", "placement_id", name="uq_risk_profiles_target"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id", ondelete="CASCADE"))
    placement_id: Mapped[int | None] = mapped_column(
        ForeignKey("placements.id", ondelete="CASCADE")
    )
    f_rsi: Mapped[float | None] = mapped_column(Float)
    outdoor_temperature: Mapped[float | None] = mapped_column(Float)
    sensitivity: Mapped[str | None] = mapped_column(String(20))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class PlacementRisk(Base):
    """Where the incremental risk computation of a placement stopped, and its current level."""

    __tablename__ = "placement_risk"

    placement_id: Mapped[int] = mapped_column(
        ForeignKey("placements.id", ondelete="CASCADE"), primary_key=True
    )
    property_id: Mapped[int] = mapped_column(
        ForeignKey("properties.id", ondelete="CASCADE"), index=True
    )
    # PlacementTracker.to_dict(): mould state, rule monitor, recent episodes, LIM flags.
    state: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Start of the newest hour processed; hours up to and including it are final.
    last_hour: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set when a reading lands in an hour already processed: recompute from there.
    recompute_from: Mapped[datetime | None] = mapped_column(UTCDateTime())
    mould_index: Mapped[float] = mapped_column(Float, default=0.0)
    level: Mapped[str] = mapped_column(String(16), default="low")
    score: Mapped[int] = mapped_column(Integer, default=0)
    evidence: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Wall-clock time of the last check for new readings (compared with devices' last_seen_at).
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RiskHour(Base):
    """Hourly means and derived quantities of one placement: charts, comparisons, recomputes."""

    __tablename__ = "risk_hours"
    __table_args__ = (UniqueConstraint("placement_id", "hour", name="uq_risk_hours_hour"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    placement_id: Mapped[int] = mapped_column(ForeignKey("placements.id", ondelete="CASCADE"))
    hour: Mapped[datetime] = mapped_column(UTCDateTime())
    temperature: Mapped[float] = mapped_column(Float)
    humidity: Mapped[float] = mapped_column(Float)
    dew_point: Mapped[float] = mapped_column(Float)
    absolute_humidity: Mapped[float] = mapped_column(Float)
    surface_temperature: Mapped[float] = mapped_column(Float)
    surface_rh: Mapped[float] = mapped_column(Float)
    surface_estimated: Mapped[bool] = mapped_column(Boolean)
    co2: Mapped[float | None] = mapped_column(Float)
    mould_index: Mapped[float] = mapped_column(Float)
    # With mould_index this is the VTT state after the hour, so a recompute can resume here.
    dry_hours: Mapped[int] = mapped_column(Integer)
    samples: Mapped[int] = mapped_column(Integer)


class PropertyRisk(Base):
    """A property's current level: its worst placement, with the evidence behind it."""

    __tablename__ = "property_risk"

    property_id: Mapped[int] = mapped_column(
        ForeignKey("properties.id", ondelete="CASCADE"), primary_key=True
    )
    borough_id: Mapped[int] = mapped_column(
        ForeignKey("boroughs.id", ondelete="CASCADE"), index=True
    )
    level: Mapped[str] = mapped_column(String(16), default="low")
    rank: Mapped[int] = mapped_column(Integer, default=0)  # 0 low .. 3 severe, for sorting
    score: Mapped[int] = mapped_column(Integer, default=0)
    mould_index: Mapped[float] = mapped_column(Float, default=0.0)
    trend: Mapped[str] = mapped_column(String(16), default="steady")  # rising | falling | steady
    level_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    data_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    evidence: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RiskLevelChange(Base):
    """History of property levels (data time), for trends and evidence."""

    __tablename__ = "risk_level_changes"
    __table_args__ = (Index("ix_risk_level_changes_borough_at", "borough_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    property_id: Mapped[int] = mapped_column(
        ForeignKey("properties.id", ondelete="CASCADE"), index=True
    )
    borough_id: Mapped[int] = mapped_column(ForeignKey("boroughs.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    from_level: Mapped[str | None] = mapped_column(String(16))
    to_level: Mapped[str] = mapped_column(String(16))
    score: Mapped[int] = mapped_column(Integer)


class Case(Base):
    """A damp and mould hazard case with the dates Awaab's Law asks landlords to evidence."""

    __tablename__ = "risk_cases"
    __table_args__ = (
        # One open case per property: new risk links to it instead of opening another.
        Index(
            "uq_risk_cases_one_open",
            "property_id",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
        Index("ix_risk_cases_borough_status", "borough_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id", ondelete="CASCADE"))
    borough_id: Mapped[int] = mapped_column(ForeignKey("boroughs.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | closed
    hazard: Mapped[str] = mapped_column(String(16), default="significant")  # | emergency
    source: Mapped[str] = mapped_column(String(16))  # risk | manual
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    opened_by: Mapped[str] = mapped_column(String(200))
    trigger: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    aware_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # A significant case raised to emergency by a later report: the 24 hours count from here.
    emergency_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    investigation_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    written_summary_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    safety_work_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    further_works_begun_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    further_works_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    works_completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The investigation found no further works needed: their deadlines do not apply.
    no_further_works_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_by: Mapped[str | None] = mapped_column(String(200))
    # The property's risk level at closing: sensor risk reopens only above it (or anew).
    closed_level: Mapped[str | None] = mapped_column(String(16))


class CaseEvent(Base):
    """The case timeline: each step with when it happened, who recorded it and when."""

    __tablename__ = "risk_case_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(
        ForeignKey("risk_cases.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime())  # when it happened
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)

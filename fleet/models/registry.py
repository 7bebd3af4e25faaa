"""Where devices live: boroughs → estates/blocks → properties → placements; hardware and tags."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Integer, String, Table, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fleet.models.base import Base, UTCDateTime, utcnow


class Borough(Base):
    __tablename__ = "boroughs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(200))
    contact_email: Mapped[str | None] = mapped_column(String(200))
    # Per-borough alert thresholds, e.g. {"offline_after_s": 7200, "battery_below_pct": 20}
    alert_settings: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Estate(Base):
    """An estate, or a block within one (parent_id set)."""

    __tablename__ = "estates"
    __table_args__ = (UniqueConstraint("borough_id", "name", name="uq_estates_borough_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    borough_id: Mapped[int] = mapped_column(ForeignKey("boroughs.id", ondelete="CASCADE"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("estates.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16), default="estate")  # estate | block


class Property(Base):
    __tablename__ = "properties"
    __table_args__ = (
        UniqueConstraint("borough_id", "reference", name="uq_properties_borough_reference"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    borough_id: Mapped[int] = mapped_column(ForeignKey("boroughs.id", ondelete="CASCADE"))
    estate_id: Mapped[int | None] = mapped_column(ForeignKey("estates.id", ondelete="SET NULL"))
    reference: Mapped[str] = mapped_column(String(64))  # the landlord's own property reference
    housing_type: Mapped[str | None] = mapped_column(String(32))  # flat | house | maisonette ...
    construction_age_band: Mapped[str | None] = mapped_column(String(32))  # e.g. "1945-1964"
    floor: Mapped[int | None] = mapped_column(Integer)
    address: Mapped[str | None] = mapped_column(String(400))  # personal data: never published
    postcode: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Placement(Base):
    """A sensor position in a property (room and spot), so history survives device swaps."""

    __tablename__ = "placements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id", ondelete="CASCADE"))
    room: Mapped[str] = mapped_column(String(64))  # bathroom, bedroom 1, kitchen ...
    position: Mapped[str | None] = mapped_column(String(64))  # e.g. "external wall, 1.5 m"


class HardwareModel(Base):
    __tablename__ = "hardware_models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    board: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(400), default="")
    power: Mapped[str] = mapped_column(String(16), default="mains")  # mains | battery
    sensors: Mapped[list[str] | None] = mapped_column(JSON)


device_tags = Table(
    "device_tags",
    Base.metadata,
    Column("device_pk", ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True),
)


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    devices = relationship("Device", secondary=device_tags, back_populates="tags")

"""The downstream feed: stable SensorThings ids, dataset policy, consent and pseudonym keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fleet.models.base import Base, UTCDateTime, utcnow


class FeedThing(Base):
    """A device at a placement for a period: one SensorThings Thing, with a stable id.

    Readings belong to the Thing whose period covers their time. A device's first period
    starts at the Unix epoch so readings taken before it was placed stay attributed; the
    unique start time stops two concurrent syncs from opening the same period twice.
    """

    __tablename__ = "feed_things"
    __table_args__ = (UniqueConstraint("device_pk", "started_at", name="uq_feed_things_period"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_pk: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    placement_id: Mapped[int] = mapped_column(ForeignKey("placements.id", ondelete="CASCADE"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class FeedDatastream(Base):
    """One metric of one Thing: a SensorThings Datastream with a stable id."""

    __tablename__ = "feed_datastreams"
    __table_args__ = (UniqueConstraint("thing_id", "metric", name="uq_feed_datastreams_metric"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    thing_id: Mapped[int] = mapped_column(ForeignKey("feed_things.id", ondelete="CASCADE"))
    metric: Mapped[str] = mapped_column(String(32))
    sensor_id: Mapped[int] = mapped_column(Integer)  # catalogue SensorModel id
    observed_property_id: Mapped[int] = mapped_column(Integer)  # catalogue Metric id


class FeedPolicy(Base):
    """A borough's dataset policy; boroughs without a row get the defaults in fleet.feed.policy."""

    __tablename__ = "feed_policies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    borough_id: Mapped[int] = mapped_column(
        ForeignKey("boroughs.id", ondelete="CASCADE"), unique=True
    )
    public_feed: Mapped[bool] = mapped_column(Boolean, default=True)
    # postcode_district | grid_1km | borough
    location_precision: Mapped[str] = mapped_column(String(32), default="postcode_district")
    retention_days: Mapped[int] = mapped_column(Integer, default=730)
    metric_retention_days: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # What a tenant's withdrawal does to stored readings: delete | keep_internal
    withdrawal_action: Mapped[str] = mapped_column(String(16), default="delete")
    decided_by: Mapped[str | None] = mapped_column(String(200))
    contact: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PropertyConsent(Base):
    """A tenant's decision about publication; no row means the policy's default (published)."""

    __tablename__ = "property_consents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    property_id: Mapped[int] = mapped_column(
        ForeignKey("properties.id", ondelete="CASCADE"), unique=True
    )
    state: Mapped[str] = mapped_column(String(16), default="granted")  # granted | withdrawn
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    changed_by: Mapped[str] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(String(400))
    # Set when consent is granted again after a withdrawal: readings taken before it are
    # never published (fleet/feed/standard/privacy.md).
    published_since: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PropertyGeo(Base):
    """Exact coordinates of a property: personal data, only ever published coarsened."""

    __tablename__ = "property_geo"

    property_id: Mapped[int] = mapped_column(
        ForeignKey("properties.id", ondelete="CASCADE"), primary_key=True
    )
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)


class FeedKey(Base):
    """A pseudonymisation key; the newest unretired version signs new pseudonyms."""

    __tablename__ = "feed_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

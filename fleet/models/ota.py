"""Over-the-air updates: release keys, signed releases, rollouts in waves, pins, history."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from fleet.models.base import Base, UTCDateTime, utcnow


class TrustedKey(Base):
    """A release signing key the fleet accepts (public half only); several for rotation."""

    __tablename__ = "ota_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kid: Mapped[str] = mapped_column(String(16), unique=True)
    public_hex: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200), default="")
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Release(Base):
    __tablename__ = "ota_releases"
    __table_args__ = (UniqueConstraint("kind", "version", name="uq_ota_releases_kind_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(8))  # app | image
    manifest: Mapped[str] = mapped_column(Text)  # exactly the signed bytes
    sigs: Mapped[list[list[str]]] = mapped_column(JSON)
    signer_kid: Mapped[str] = mapped_column(String(16))
    # Devices carry no user token: the blob URL's last segment is an unguessable secret.
    blob_path: Mapped[str] = mapped_column(String(64), unique=True)
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    raw_size: Mapped[int] = mapped_column(Integer, default=0)
    notes: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def floor(self) -> str | None:
        """The anti-rollback floor its signed manifest declares: once a device confirms
        this release it refuses any release below the floor."""
        declared = json.loads(self.manifest).get("floor")
        return declared if isinstance(declared, str) else None


class ReleaseBlob(Base):
    """The blob itself, apart from the release row so listing releases never loads it."""

    __tablename__ = "ota_release_blobs"

    release_id: Mapped[int] = mapped_column(
        ForeignKey("ota_releases.id", ondelete="CASCADE"), primary_key=True
    )
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Rollout(Base):
    __tablename__ = "ota_rollouts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("ota_releases.id"), index=True)
    # The borough the rollout belongs to (None: every borough, admins only).
    borough_id: Mapped[int | None] = mapped_column(
        ForeignKey("boroughs.id", ondelete="SET NULL"), index=True
    )
    # {"borough_id", "estate_id", "tag", "board", "device_ids"}: all given must match.
    target: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Wave sizes: an integer is a device count (canary), "10%" a share of the whole target.
    waves: Mapped[list[Any]] = mapped_column(JSON)
    soak_s: Mapped[int] = mapped_column(Integer, default=3600)
    failure_threshold: Mapped[float] = mapped_column(Float, default=0.1)
    state: Mapped[str] = mapped_column(String(16), default="running", index=True)
    pause_reason: Mapped[str | None] = mapped_column(Text)
    wave: Mapped[int] = mapped_column(Integer, default=0)  # the wave being offered or soaked
    wave_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RolloutDevice(Base):
    __tablename__ = "ota_rollout_devices"
    __table_args__ = (UniqueConstraint("rollout_id", "device_pk", name="uq_ota_rollout_device"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rollout_id: Mapped[int] = mapped_column(
        ForeignKey("ota_rollouts.id", ondelete="CASCADE"), index=True
    )
    device_pk: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    wave: Mapped[int] = mapped_column(Integer)
    # pending | offered | downloading | verifying | installing | rebooting | succeeded | failed
    # | withdrawn (paused or aborted) | superseded (a newer rollout's offer replaced this one)
    state: Mapped[str] = mapped_column(String(16), default="offered")
    reason: Mapped[str | None] = mapped_column(Text)
    job_id: Mapped[str] = mapped_column(String(64))
    from_version: Mapped[str | None] = mapped_column(String(32))
    offered_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class VersionPin(Base):
    """A device held on its version: rollouts leave it alone."""

    __tablename__ = "ota_pins"

    device_pk: Mapped[int] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class UpdateEvent(Base):
    """One `ota/progress` report, kept as the device's update history."""

    __tablename__ = "ota_update_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_pk: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    job_id: Mapped[str | None] = mapped_column(String(64), index=True)
    state: Mapped[str] = mapped_column(String(16))
    version: Mapped[str | None] = mapped_column(String(32))
    app: Mapped[str | None] = mapped_column(String(32))
    step: Mapped[str | None] = mapped_column(String(64))
    pct: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text)

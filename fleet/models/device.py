"""Devices as the fleet knows them: identity, board, last reported state."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    and_,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from fleet.models.base import Base, UTCDateTime, utcnow

# Every ingest batch rewrites the row of each device it heard from (latest values, last
# seen). Pages kept half empty let PostgreSQL put the new version beside the old one (a HOT
# update) without touching any of the table's indexes: ~97 % of updates instead of ~35 %,
# ~10 % less database CPU per message (migration 0010).
DEVICE_FILLFACTOR = 50
# A device's reason for refusing a command or settings is kept to this many characters.
ANSWER_ERROR_CHARS = 500
# A hardware id names at most one device that is not retired; retired rows keep the id (and
# their readings) while the same hardware is enrolled again as a new device (migration 0017).
ACTIVE_WHERE = "retired_at IS NULL"


class Device(Base):
    __tablename__ = "devices"
    __table_args__ = (
        Index(
            "ix_devices_device_id_active",
            "device_id",
            unique=True,
            sqlite_where=text(ACTIVE_WHERE),
            postgresql_where=text(ACTIVE_WHERE),
        ),
        {"postgresql_with": {"fillfactor": DEVICE_FILLFACTOR}},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(200))
    board: Mapped[str] = mapped_column(String(64), default="devkitc-sht41")
    borough_id: Mapped[int | None] = mapped_column(
        ForeignKey("boroughs.id", ondelete="SET NULL"), index=True
    )
    placement_id: Mapped[int | None] = mapped_column(
        ForeignKey("placements.id", ondelete="SET NULL"), index=True
    )
    # When placement_id last changed (set below): the published feed starts a new Thing
    # there, so readings after a move belong to the new home, not to the previous one.
    placement_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    power_mode: Mapped[str] = mapped_column(String(16), default="mains")  # mains | battery
    # How often the device promises to report (uplink interval); liveness is judged against it.
    report_interval_s: Mapped[int] = mapped_column(Integer, default=900)
    # The cadence the device runs, as enrolled and as since applied (None: firmware default);
    # report_interval_s is worked out from all three (fleet/registry/cadence.py).
    sample_interval_s: Mapped[int | None] = mapped_column(Integer)
    health_interval_s: Mapped[int | None] = mapped_column(Integer)
    uplink_every: Mapped[int | None] = mapped_column(Integer)
    # What the device last said on its retained status topic (or its last will).
    status: Mapped[str] = mapped_column(String(16), default="unknown")
    status_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # What the fleet concludes: online | sleeping | late | offline | unknown.
    state: Mapped[str] = mapped_column(String(16), default="unknown", index=True)
    state_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    fw_version: Mapped[str | None] = mapped_column(String(32))
    health: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    health_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Newest value per metric: {"temperature": {"v": 21.4, "u": "Cel", "t": 1763850000.0}}
    latest: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    latest_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # When the device was decommissioned (null: in service). A retired device keeps its
    # readings and installation periods for its placements' history; nothing addresses it by
    # its hardware id any more (fleet/registry/devices.py `retire`).
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    tags = relationship("Tag", secondary="device_tags", back_populates="devices", lazy="selectin")

    @classmethod
    def active(cls) -> ColumnElement[bool]:
        """Devices in service (not retired)."""
        return cls.retired_at.is_(None)

    @classmethod
    def current(cls, device_id: str) -> ColumnElement[bool]:
        """The device in service with this hardware id (at most one)."""
        return and_(cls.device_id == device_id, cls.retired_at.is_(None))

    @classmethod
    def current_among(cls, device_ids: Iterable[str]) -> ColumnElement[bool]:
        """The devices in service with these hardware ids."""
        return and_(cls.device_id.in_(list(device_ids)), cls.retired_at.is_(None))

    @validates("placement_id")
    def _placement_moves(self, key: str, placement_id: int | None) -> int | None:
        if placement_id != self.placement_id:
            self.placement_changed_at = utcnow()
        return placement_id


class DeviceCommand(Base):
    """A command sent on `cmd` and what the device answered on `cmd/ack`.

    `state`: sent (no answer yet; a sleeping device answers at its next uplink wake),
    ok or failed (the device's answer), not_sent (the broker did not take it).
    """

    __tablename__ = "device_commands"
    __table_args__ = (UniqueConstraint("device_pk", "command_id", name="uq_device_commands_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_pk: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    command_id: Mapped[str] = mapped_column(String(32))
    op: Mapped[str] = mapped_column(String(32))
    sent_by: Mapped[str] = mapped_column(String(200))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    state: Mapped[str] = mapped_column(String(16), default="sent")
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    result: Mapped[Any | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(String(ANSWER_ERROR_CHARS))


class DesiredConfig(Base):
    """Settings asked of a device, published retained on its `config` topic, and its answer.

    `values` accumulate (each change lays its fields over the earlier ones); `version` is
    above anything the device has run. `state`: pending (no answer yet), applied, refused
    (with the device's reason; it keeps its last good config), not_sent.
    """

    __tablename__ = "device_desired_configs"

    device_pk: Mapped[int] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer)
    values: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    error: Mapped[str | None] = mapped_column(String(ANSWER_ERROR_CHARS))
    set_by: Mapped[str] = mapped_column(String(200))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

"""Where each device was installed, and when: written whenever a device's placement changes.

A placement's risk is worked out from the readings its devices took while installed there
(`fleet/risk/service/spans.py`), so a device moved to another home takes none of the old
home's readings with it, and a device swapped out leaves its readings with its placement.
The periods are written here, by the model, rather than by each caller: the API, enrolment,
the demo and scripts all install devices by setting ``Device.placement_id``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, ForeignKey, Integer, event, insert, inspect, select, update
from sqlalchemy.orm import Mapped, Mapper, mapped_column

from fleet.models.base import Base, UTCDateTime, utcnow
from fleet.models.device import Device


class DeviceInstallation(Base):
    """A device at a placement from ``installed_at`` until ``removed_at`` (null: still there).

    ``installed_at`` is null on a device's first installation: the readings it took or
    buffered before being placed have nowhere else to belong (the published feed does the
    same). ``created_at`` is when the installation was recorded.
    """

    __tablename__ = "device_installations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_pk: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    placement_id: Mapped[int] = mapped_column(
        ForeignKey("placements.id", ondelete="CASCADE"), index=True
    )
    installed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


@event.listens_for(Device, "after_insert")
@event.listens_for(Device, "after_update")
def _record_installation(mapper: Mapper[Any], connection: Connection, device: Device) -> None:
    """Close the device's open installation and open one at its new placement.

    The boundary is ``placement_changed_at`` as flushed (the move itself), never earlier than
    the start of the period it closes, so periods of one device never overlap.
    """
    if not inspect(device).attrs.placement_id.history.has_changes():
        return
    row = DeviceInstallation
    at = device.placement_changed_at or utcnow()
    mine = row.device_pk == device.id
    seen_before = connection.execute(select(row.id).where(mine).limit(1)).first() is not None
    current = connection.execute(
        select(row.id, row.placement_id, row.installed_at).where(mine, row.removed_at.is_(None))
    ).first()
    if current is not None:
        if current.placement_id == device.placement_id:
            return  # set back to where it already was within one flush
        if current.installed_at is not None:
            at = max(at, current.installed_at)
        connection.execute(update(row).where(row.id == current.id).values(removed_at=at))
    if device.placement_id is not None:
        connection.execute(
            insert(row).values(
                device_pk=device.id,
                placement_id=device.placement_id,
                installed_at=at if seen_before else None,
                created_at=utcnow(),
            )
        )

"""Device registry operations shared by the API, the CLI and the simulator."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet.models import Device, Reading


class DeviceExists(Exception):
    pass


class DeviceNotFound(Exception):
    pass


def register_device(
    session: Session, *, device_id: str, name: str | None = None, board: str = "devkitc-sht41"
) -> Device:
    if session.scalars(select(Device.id).where(Device.device_id == device_id)).first():
        raise DeviceExists(f"device {device_id!r} is already registered")
    device = Device(device_id=device_id, name=name, board=board)
    session.add(device)
    session.flush()
    return device


def ensure_device(
    session: Session, *, device_id: str, name: str | None = None, board: str = "devkitc-sht41"
) -> Device:
    existing = session.scalars(select(Device).where(Device.device_id == device_id)).one_or_none()
    return existing or register_device(session, device_id=device_id, name=name, board=board)


def get_device(session: Session, *, device_id: str) -> Device:
    device = session.scalars(select(Device).where(Device.device_id == device_id)).one_or_none()
    if device is None:
        raise DeviceNotFound(f"no device {device_id!r}")
    return device


def list_devices(session: Session, *, limit: int = 500, offset: int = 0) -> Sequence[Device]:
    stmt = select(Device).order_by(Device.device_id).limit(limit).offset(offset)
    return session.scalars(stmt).all()


def reading_history(
    session: Session,
    *,
    device: Device,
    metric: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> Sequence[Reading]:
    stmt = select(Reading).where(Reading.device_pk == device.id)
    if metric:
        stmt = stmt.where(Reading.metric == metric)
    if since:
        stmt = stmt.where(Reading.ts >= since)
    if until:
        stmt = stmt.where(Reading.ts < until)
    # Newest first, then returned oldest-first so charts draw left to right.
    rows = session.scalars(stmt.order_by(Reading.ts.desc(), Reading.metric).limit(limit)).all()
    return list(reversed(rows))

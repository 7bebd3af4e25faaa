"""Device registry operations shared by the API, the dashboard, the CLI and the simulator.

Every read takes the asking principal so borough scoping is applied in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, or_, select, update
from sqlalchemy.orm import Session

from fleet.access.principal import Principal
from fleet.core.db import rowcount
from fleet.health.alerts import resolve_live
from fleet.models import Alert, Borough, Device, Reading, Tag
from fleet.models.base import utcnow
from fleet.models.ota import RolloutDevice
from fleet.ota.progress import IN_PROGRESS

SORTABLE = {
    "device_id": Device.device_id,
    "state": Device.state,
    "last_seen_at": Device.last_seen_at,
    "name": Device.name,
    "fw_version": Device.fw_version,
}


# Who resolved a retired device's live alerts; the alert pages and the audit show it.
RETIRED_RESOLVED = "system: device retired"
# Update memberships a retired device can no longer finish: withdrawn, so they neither hold
# their wave nor fail it (a stalled update would count as a failure).
OPEN_OFFERS = ("offered", "pending", *sorted(IN_PROGRESS))


class DeviceExists(Exception):
    pass


class DeviceNotFound(Exception):
    pass


@dataclass(frozen=True)
class DeviceQuery:
    q: str | None = None
    state: str | None = None
    borough: str | None = None
    sort: str = "device_id"
    descending: bool = False
    limit: int = 50
    offset: int = 0
    retired: bool = False  # True: the retired devices instead of those in service


def register_device(
    session: Session,
    *,
    device_id: str,
    name: str | None = None,
    board: str = "devkitc-sht41",
    borough_id: int | None = None,
    power_mode: str = "mains",
    report_interval_s: int = 900,
) -> Device:
    if session.scalars(select(Device.id).where(Device.current(device_id))).first():
        raise DeviceExists(f"device {device_id!r} is already registered")
    device = Device(
        device_id=device_id,
        name=name,
        board=board,
        borough_id=borough_id,
        power_mode=power_mode,
        report_interval_s=report_interval_s,
    )
    session.add(device)
    session.flush()
    return device


def _scoped(stmt: Select[Any], principal: Principal) -> Select[Any]:
    if principal.borough_ids is None:
        return stmt
    return stmt.where(Device.borough_id.in_(principal.borough_ids))


def boards_and_tags(session: Session, principal: Principal) -> tuple[list[str], list[str]]:
    """The boards and tags of the devices the principal can see, for pickers."""
    boards = session.scalars(
        _scoped(select(Device.board).where(Device.active()).distinct(), principal)
    )
    tagged = _scoped(
        select(Tag.name).join(Tag.devices).where(Device.active()).distinct(), principal
    )
    return sorted(boards), sorted(session.scalars(tagged))


def current_device(session: Session, device_id: str) -> Device | None:
    """The device in service with this hardware id, whoever asks (None: none or retired)."""
    return session.scalars(select(Device).where(Device.current(device_id))).one_or_none()


def get_device(session: Session, *, device_id: str, principal: Principal) -> Device:
    """The device in service, or DeviceNotFound also when it is outside the principal's
    boroughs or retired."""
    stmt = _scoped(select(Device).where(Device.current(device_id)), principal)
    device = session.scalars(stmt).one_or_none()
    if device is None:
        raise DeviceNotFound(f"no device {device_id!r}")
    return device


def find_devices(
    session: Session, *, principal: Principal, query: DeviceQuery
) -> tuple[Sequence[Device], int]:
    """A page of devices (in service, or retired ones when asked) and the total count."""
    retired = Device.retired_at.is_not(None) if query.retired else Device.active()
    stmt = _scoped(select(Device).where(retired), principal)
    if query.q:
        like = f"%{query.q.strip().lower()}%"
        stmt = stmt.where(
            or_(func.lower(Device.device_id).like(like), func.lower(Device.name).like(like))
        )
    if query.state:
        stmt = stmt.where(Device.state == query.state)
    if query.borough:
        stmt = stmt.join(Borough, Borough.id == Device.borough_id).where(
            Borough.code == query.borough
        )
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    column = SORTABLE.get(query.sort, Device.device_id)
    order = column.desc().nulls_last() if query.descending else column.asc().nulls_first()
    rows = session.scalars(
        stmt.order_by(order, Device.id).limit(query.limit).offset(query.offset)
    ).all()
    return rows, int(total)


def state_counts(session: Session, *, principal: Principal) -> dict[str, dict[str, int]]:
    """Devices by state per borough code ('—' for devices not yet placed in a borough)."""
    stmt = (
        select(Borough.code, Device.state, func.count())
        .select_from(Device)
        .outerjoin(Borough, Borough.id == Device.borough_id)
        .where(Device.active())
        .group_by(Borough.code, Device.state)
    )
    if principal.borough_ids is not None:
        stmt = stmt.where(Device.borough_id.in_(principal.borough_ids))
    counts: dict[str, dict[str, int]] = {}
    for code, state, n in session.execute(stmt):
        counts.setdefault(code or "—", {})[state] = int(n)
    return counts


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


@dataclass(frozen=True)
class Retired:
    readings_kept: int
    alerts_resolved: int
    offers_withdrawn: int


def retire(session: Session, device: Device, *, now: datetime | None = None) -> Retired:
    """Take a device out of service and keep its history.

    Its installation closes now (the model's listener ends the period when the placement is
    cleared), so its readings up to this moment stay with the placement; its readings, periods
    and audit trail are kept. Nothing addresses it by its hardware id any more, so the same
    hardware can be enrolled again as a new device. Its live alerts are resolved and its open
    update offers withdrawn, so neither waits for a sensor that is gone.
    """
    at = now or utcnow()
    if device.placement_id is not None:
        device.placement_id = None
        device.placement_changed_at = at  # the period's end: the retirement itself
    device.retired_at = at
    alerts = resolve_live(session, Alert.device_pk == device.id, at=at, by=RETIRED_RESOLVED)
    offers = session.execute(
        update(RolloutDevice)
        .where(RolloutDevice.device_pk == device.id, RolloutDevice.state.in_(OPEN_OFFERS))
        .values(state="withdrawn", reason="device retired", updated_at=at)
    )
    session.flush()
    kept = session.scalar(select(func.count()).where(Reading.device_pk == device.id)) or 0
    return Retired(int(kept), alerts, rowcount(offers))


def erase(session: Session, device: Device) -> int:
    """Delete a device and its readings (and by cascade its periods, health and commands);
    returns how many readings went with it. Only for a device that should never have been
    recorded: an ordinary decommissioning retires it instead.

    The device row goes first: its row lock makes an ingest batch for the device either
    commit before (its readings are then deleted here) or wait and find the device gone.
    """
    pk = device.id
    session.delete(device)
    session.flush()
    return rowcount(session.execute(delete(Reading).where(Reading.device_pk == pk)))


def set_tags(session: Session, *, device: Device, names: list[str]) -> None:
    wanted = sorted(set(names))
    existing = {t.name: t for t in session.scalars(select(Tag).where(Tag.name.in_(wanted)))}
    for name in wanted:
        if name not in existing:
            existing[name] = Tag(name=name)
            session.add(existing[name])
    device.tags = [existing[n] for n in wanted]

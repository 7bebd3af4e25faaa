"""Reading retired devices: where each one served, when and by whom it was retired, and the
readings kept as evidence. Read-only; retiring is `fleet.registry.devices.retire`.

A retired device is named by its row id: its hardware id may since name a newer device.
Every read takes the asking principal, scoped as the in-service lists are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from fleet.access.principal import Principal
from fleet.models import AuditEntry, Device, Placement, Property, Reading
from fleet.models.installation import DeviceInstallation
from fleet.registry.devices import DeviceNotFound

# The audit action the API and the dashboard record when they retire a device.
RETIRE_ACTION = "device.decommission"


@dataclass(frozen=True)
class Period:
    """One installation of a device: where, from when (None: from its first reading) and
    until when (None: still there, which a retired device never is)."""

    placement: Placement
    home: Property | None
    since: datetime | None
    until: datetime | None


@dataclass(frozen=True)
class RetiredRow:
    device: Device
    last_period: Period | None
    readings_kept: int
    retired_by: str | None  # the audit entry's actor; None: not recorded or not readable


@dataclass(frozen=True)
class MetricKept:
    metric: str
    count: int
    first: datetime
    last: datetime


def _retired(principal: Principal) -> Select[Device]:
    stmt = select(Device).where(Device.retired_at.is_not(None))
    if principal.borough_ids is not None:
        stmt = stmt.where(Device.borough_id.in_(principal.borough_ids))
    return stmt


def find_retired(
    session: Session,
    *,
    principal: Principal,
    borough_id: int,
    limit: int,
    offset: int,
    audit_readable: bool,
) -> tuple[list[RetiredRow], int]:
    """A page of one borough's retired devices, newest retirement first, and their total."""
    stmt = _retired(principal).where(Device.borough_id == borough_id)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    devices = session.scalars(
        stmt.order_by(Device.retired_at.desc(), Device.id.desc()).limit(limit).offset(offset)
    ).all()
    return describe(session, devices, principal=principal, audit_readable=audit_readable), total


def get_retired(session: Session, *, pk: int, principal: Principal) -> Device:
    """A retired device by row id; DeviceNotFound also outside the principal's boroughs."""
    device = session.scalars(_retired(principal).where(Device.id == pk)).one_or_none()
    if device is None:
        raise DeviceNotFound(f"no retired device {pk}")
    return device


def describe(
    session: Session, devices: Sequence[Device], *, principal: Principal, audit_readable: bool
) -> list[RetiredRow]:
    """The list's columns for these devices, in a handful of queries for the whole page."""
    pks = [d.id for d in devices]
    kept = readings_kept(session, pks)
    last = _last_periods(session, pks)
    by = retired_by(session, devices, principal=principal) if audit_readable else {}
    return [RetiredRow(d, last.get(d.id), kept.get(d.id, 0), by.get(d.id)) for d in devices]


def readings_kept(session: Session, pks: Sequence[int]) -> dict[int, int]:
    if not pks:
        return {}
    rows = session.execute(
        select(Reading.device_pk, func.count())
        .where(Reading.device_pk.in_(pks))
        .group_by(Reading.device_pk)
    )
    return {pk: int(n) for pk, n in rows}


def periods(session: Session, device: Device) -> list[Period]:
    """Every installation of the device, latest first."""
    return list(_periods(session, [device.id]).get(device.id, []))


def _last_periods(session: Session, pks: Sequence[int]) -> dict[int, Period]:
    return {pk: found[0] for pk, found in _periods(session, pks).items() if found}


def _periods(session: Session, pks: Sequence[int]) -> dict[int, list[Period]]:
    if not pks:
        return {}
    rows = session.execute(
        select(DeviceInstallation, Placement, Property)
        .join(Placement, Placement.id == DeviceInstallation.placement_id)
        .outerjoin(Property, Property.id == Placement.property_id)
        .where(DeviceInstallation.device_pk.in_(pks))
        .order_by(DeviceInstallation.device_pk, DeviceInstallation.id.desc())
    )
    out: dict[int, list[Period]] = {}
    for inst, placement, home in rows:
        out.setdefault(inst.device_pk, []).append(
            Period(placement, home, inst.installed_at, inst.removed_at)
        )
    return out


def retired_by(
    session: Session, devices: Sequence[Device], *, principal: Principal
) -> dict[int, str]:
    """Who retired each device, from the audit entries the principal may read.

    The entry names the hardware id, which a later device may share and retire too: each
    device takes the first retirement entry of its id recorded at or after its own
    retirement (the entry is written in the same transaction, just after).
    """
    retired = [(d, d.retired_at) for d in devices if d.retired_at is not None]
    if not retired:
        return {}
    stmt = (
        select(AuditEntry.target_id, AuditEntry.at, AuditEntry.actor)
        .where(
            AuditEntry.action == RETIRE_ACTION,
            AuditEntry.target_type == "device",
            AuditEntry.target_id.in_({d.device_id for d, _ in retired}),
            AuditEntry.at >= min(at for _, at in retired),
        )
        .order_by(AuditEntry.at, AuditEntry.id)
    )
    if principal.borough_ids is not None:
        stmt = stmt.where(AuditEntry.borough_id.in_(principal.borough_ids))
    entries = session.execute(stmt).all()
    out: dict[int, str] = {}
    for device, at in retired:
        found = next((e for e in entries if e.target_id == device.device_id and e.at >= at), None)
        if found is not None:
            out[device.id] = found.actor
    return out


def metrics_kept(session: Session, device: Device) -> list[MetricKept]:
    """The device's readings kept, per metric: how many and the time span they cover."""
    rows = session.execute(
        select(Reading.metric, func.count(), func.min(Reading.ts), func.max(Reading.ts))
        .where(Reading.device_pk == device.id)
        .group_by(Reading.metric)
        .order_by(Reading.metric)
    )
    return [MetricKept(m, int(n), first, last) for m, n, first, last in rows]

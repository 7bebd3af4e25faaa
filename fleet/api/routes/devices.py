"""Devices, their latest values, reading history and placement."""

from __future__ import annotations

import logging
from datetime import datetime

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from sqlalchemy.orm import Session

from fleet.access import audit
from fleet.access.principal import Forbidden, Principal
from fleet.access.roles import Role, Scope
from fleet.api.deps import get_context, get_session, require
from fleet.api.schemas import (
    MAX_ID,
    DeviceCreate,
    DeviceOut,
    DevicePage,
    DevicePlace,
    DeviceUpdate,
    ReadingOut,
    SeriesPointOut,
)
from fleet.core.context import FleetContext
from fleet.ingest.profile import METRIC_UNITS
from fleet.models.base import utcnow
from fleet.registry import changes, places
from fleet.registry import devices as registry
from fleet.registry.decommission import decommission
from fleet.registry.series import reading_series

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])
log = logging.getLogger(__name__)


def device_or_404(session: Session, device_id: str, principal: Principal):
    try:
        return registry.get_device(session, device_id=device_id, principal=principal)
    except registry.DeviceNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc


@router.get("", response_model=DevicePage)
def list_devices(
    q: str | None = Query(None, max_length=100, description="Search id and name"),
    state: str | None = Query(None, pattern=r"^(online|sleeping|late|offline|unknown)$"),
    borough: str | None = Query(None, max_length=32),
    sort: str = Query("device_id", pattern=r"^-?(device_id|state|last_seen_at|name|fw_version)$"),
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_ID),
    retired: bool = Query(False, description="List decommissioned devices instead"),
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.DEVICES_READ)),
) -> DevicePage:
    query = registry.DeviceQuery(
        q=q,
        state=state,
        borough=borough,
        sort=sort.lstrip("-"),
        descending=sort.startswith("-"),
        limit=limit,
        offset=offset,
        retired=retired,
    )
    rows, total = registry.find_devices(session, principal=principal, query=query)
    return DevicePage(
        total=total, limit=limit, offset=offset, items=[DeviceOut.model_validate(d) for d in rows]
    )


@router.post("", response_model=DeviceOut, status_code=status.HTTP_201_CREATED)
def register_device(
    body: DeviceCreate,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.DEVICES_WRITE)),
) -> DeviceOut:
    borough_id = None
    if body.borough:
        try:
            borough_id = places.borough_by_code(session, code=body.borough, principal=principal).id
        except places.NotFound as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    elif not principal.all_boroughs:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY, "name the device's borough (field 'borough')"
        )
    try:
        device = registry.register_device(
            session,
            device_id=body.device_id,
            name=body.name,
            board=body.board,
            borough_id=borough_id,
            power_mode=body.power_mode,
            report_interval_s=body.report_interval_s,
        )
    except registry.DeviceExists as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    audit.record(
        session,
        principal,
        "device.register",
        target_type="device",
        target_id=device.device_id,
        borough_id=borough_id,
    )
    session.commit()
    return DeviceOut.model_validate(device)


@router.get("/{device_id}", response_model=DeviceOut)
def get_device(
    device_id: str,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.DEVICES_READ)),
) -> DeviceOut:
    return DeviceOut.model_validate(device_or_404(session, device_id, principal))


@router.patch("/{device_id}", response_model=DeviceOut)
def update_device(
    device_id: str,
    body: DeviceUpdate,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.REGISTRY_WRITE)),
) -> DeviceOut:
    device = device_or_404(session, device_id, principal)
    fields = body.model_dump(exclude_unset=True)
    tags = fields.pop("tags", None)
    extra = {}
    if tags is not None:
        extra["tags"] = [[t.name for t in device.tags], sorted(set(tags))]
        registry.set_tags(session, device=device, names=tags)
    changes.update(session, principal, device, fields, extra=extra)
    session.commit()
    return DeviceOut.model_validate(device)


@router.delete("/{device_id}", status_code=204)
def decommission_device(
    device_id: str,
    request: Request,
    erase_readings: bool = Query(
        False, description="Delete the device and its readings too (admins only)"
    ),
    session: Session = Depends(get_session),
    ctx: FleetContext = Depends(get_context),
    principal: Principal = Depends(require(Scope.REGISTRY_WRITE)),
) -> None:
    """Retire a device: its certificates are revoked, so the sensor cannot reach the broker
    again, and its installation ends now; its readings stay with the placements it served
    (retention and consent rules decide when they go) and the same hardware id can be
    enrolled again. `erase_readings=true` deletes the device and its readings instead."""
    device = device_or_404(session, device_id, principal)
    if erase_readings and principal.role is not Role.ADMIN:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "only an admin may erase a device's readings; leave erase_readings out to retire "
            "the device and keep them",
        )
    decommission(
        session,
        device,
        principal=principal,
        settings=ctx.settings,
        publisher=request.app.state.commands,
        erase_readings=erase_readings,
    )


@router.put("/{device_id}/placement", response_model=DeviceOut)
def place_device(
    device_id: str,
    body: DevicePlace,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.REGISTRY_WRITE)),
) -> DeviceOut:
    device = device_or_404(session, device_id, principal)
    try:
        places.place_device(
            session, device=device, placement_id=body.placement_id, principal=principal
        )
    except places.NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except Forbidden as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
    except places.Conflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    audit.record(
        session,
        principal,
        "device.place",
        target_type="device",
        target_id=device_id,
        borough_id=device.borough_id,
        detail={"placement_id": body.placement_id},
    )
    session.commit()
    return DeviceOut.model_validate(device)


@router.get("/{device_id}/readings", response_model=list[ReadingOut])
def readings(
    device_id: str,
    metric: str | None = Query(None, description="e.g. temperature, humidity"),
    since: datetime | None = Query(None, description="ISO 8601, inclusive"),
    until: datetime | None = Query(None, description="ISO 8601, exclusive"),
    limit: int = Query(1000, ge=1, le=50000),
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.DEVICES_READ)),
) -> list[ReadingOut]:
    if metric is not None and metric not in METRIC_UNITS:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY,
            f"unknown metric {metric!r}; known: {', '.join(sorted(METRIC_UNITS))}",
        )
    for label, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_ENTITY, f"{label} needs a UTC offset, e.g. ...Z"
            )
    device = device_or_404(session, device_id, principal)
    rows = registry.reading_history(
        session, device=device, metric=metric, since=since, until=until, limit=limit
    )
    return [ReadingOut.model_validate(r) for r in rows]


@router.get("/{device_id}/series", response_model=list[SeriesPointOut])
def series(
    device_id: str,
    metric: str = Query(..., description="e.g. humidity"),
    since: datetime = Query(..., description="ISO 8601 with offset, inclusive"),
    until: datetime | None = Query(None, description="ISO 8601 with offset; default now"),
    points: int = Query(500, ge=10, le=5000, description="Most buckets to return"),
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.DEVICES_READ)),
) -> list[SeriesPointOut]:
    """Bucketed mean/min/max for charts: a year of data in a few hundred points."""
    if metric not in METRIC_UNITS:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY,
            f"unknown metric {metric!r}; known: {', '.join(sorted(METRIC_UNITS))}",
        )
    end = until or utcnow()
    if since.tzinfo is None or end.tzinfo is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "times need a UTC offset")
    if end <= since:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "until must be after since")
    device = device_or_404(session, device_id, principal)
    rows = reading_series(
        session, device=device, metric=metric, since=since, until=end, max_points=points
    )
    return [SeriesPointOut(**vars(p)) for p in rows]

"""Devices, their latest values, reading history, placement and commands."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from sqlalchemy.orm import Session

from fleet.access import audit
from fleet.access.principal import Forbidden, Principal
from fleet.access.roles import Scope
from fleet.api.deps import get_session, require
from fleet.api.schemas import (
    MAX_ID,
    CommandIn,
    CommandOut,
    CommandStateOut,
    DeviceCreate,
    DeviceOut,
    DevicePage,
    DevicePlace,
    DeviceUpdate,
    ReadingOut,
    SeriesPointOut,
    SettingsIn,
    SettingsOut,
)
from fleet.commands import record as commands
from fleet.commands import settings as device_settings
from fleet.commands.send import CommandUnavailable
from fleet.ingest.profile import METRIC_UNITS
from fleet.models import DesiredConfig
from fleet.models.base import utcnow
from fleet.registry import changes, places
from fleet.registry import devices as registry
from fleet.registry.series import reading_series

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])


def _device_or_404(session: Session, device_id: str, principal: Principal):
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
    return DeviceOut.model_validate(_device_or_404(session, device_id, principal))


@router.patch("/{device_id}", response_model=DeviceOut)
def update_device(
    device_id: str,
    body: DeviceUpdate,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.REGISTRY_WRITE)),
) -> DeviceOut:
    device = _device_or_404(session, device_id, principal)
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
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.REGISTRY_WRITE)),
) -> None:
    """Remove a device and its readings (retention and consent rules decide when)."""
    device = _device_or_404(session, device_id, principal)
    borough_id = device.borough_id
    readings = registry.decommission(session, device)
    audit.record(
        session,
        principal,
        "device.decommission",
        target_type="device",
        target_id=device_id,
        borough_id=borough_id,
        detail={"readings_deleted": readings},
    )
    session.commit()


@router.put("/{device_id}/placement", response_model=DeviceOut)
def place_device(
    device_id: str,
    body: DevicePlace,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.REGISTRY_WRITE)),
) -> DeviceOut:
    device = _device_or_404(session, device_id, principal)
    try:
        places.place_device(
            session, device=device, placement_id=body.placement_id, principal=principal
        )
    except places.NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except Forbidden as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
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
    device = _device_or_404(session, device_id, principal)
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
    device = _device_or_404(session, device_id, principal)
    rows = reading_series(
        session, device=device, metric=metric, since=since, until=end, max_points=points
    )
    return [SeriesPointOut(**vars(p)) for p in rows]


@router.post("/{device_id}/commands", response_model=CommandOut, status_code=202)
def command(
    device_id: str,
    body: CommandIn,
    request: Request,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.COMMANDS)),
) -> CommandOut:
    device = _device_or_404(session, device_id, principal)
    try:
        sent = commands.issue(
            session, request.app.state.commands, device=device, op=body.op, principal=principal
        )
    except CommandUnavailable as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
    return CommandOut(id=sent.id, op=sent.op, topic=sent.topic)


@router.put("/{device_id}/config", response_model=SettingsOut, status_code=202)
def change_settings(
    device_id: str,
    body: SettingsIn,
    request: Request,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.COMMANDS)),
) -> SettingsOut:
    """Change sampling, health and (battery) uplink settings. Sent retained on the device's
    `config` topic; GET shows whether it applied them (a battery sensor answers at its next
    uplink wake)."""
    device = _device_or_404(session, device_id, principal)
    try:
        row = device_settings.set_config(
            session,
            request.app.state.commands,
            device=device,
            values=body.model_dump(exclude_none=True),
            principal=principal,
        )
    except device_settings.SettingsError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(exc)) from exc
    except CommandUnavailable as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
    return SettingsOut.model_validate(row)


@router.get("/{device_id}/config", response_model=SettingsOut)
def settings_state(
    device_id: str,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.DEVICES_READ)),
) -> SettingsOut:
    """The settings last asked of the device and its answer; 404 if none were ever changed."""
    device = _device_or_404(session, device_id, principal)
    row = session.get(DesiredConfig, device.id)
    if row is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no settings changed from the fleet for {device_id}"
        )
    return SettingsOut.model_validate(row)


@router.get("/{device_id}/commands", response_model=list[CommandStateOut])
def command_history(
    device_id: str,
    limit: int = Query(20, ge=1, le=200),
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.DEVICES_READ)),
) -> list[CommandStateOut]:
    """The device's newest commands with what it answered (state sent until it does)."""
    device = _device_or_404(session, device_id, principal)
    return [
        CommandStateOut.model_validate(c) for c in commands.recent(session, device.id, limit=limit)
    ]

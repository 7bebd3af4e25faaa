"""Devices, their latest values and reading history."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, HTTPException, Query, status
from sqlalchemy.orm import Session

from fleet.api.deps import get_session, require_admin
from fleet.api.schemas import DeviceCreate, DeviceOut, ReadingOut
from fleet.ingest.profile import METRIC_UNITS
from fleet.registry import devices as registry

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])


@router.get("", response_model=list[DeviceOut])
def list_devices(
    limit: int = Query(500, ge=1, le=5000),
    offset: int = Query(0, ge=0),
    session: Session = Depends(get_session),
) -> list[DeviceOut]:
    return [
        DeviceOut.model_validate(d)
        for d in registry.list_devices(session, limit=limit, offset=offset)
    ]


@router.post(
    "",
    response_model=DeviceOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(require_admin)],
)
def register_device(body: DeviceCreate, session: Session = Depends(get_session)) -> DeviceOut:
    try:
        device = registry.register_device(
            session, device_id=body.device_id, name=body.name, board=body.board
        )
    except registry.DeviceExists as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    session.commit()
    return DeviceOut.model_validate(device)


@router.get("/{device_id}", response_model=DeviceOut)
def get_device(device_id: str, session: Session = Depends(get_session)) -> DeviceOut:
    try:
        return DeviceOut.model_validate(registry.get_device(session, device_id=device_id))
    except registry.DeviceNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc


@router.get("/{device_id}/readings", response_model=list[ReadingOut])
def readings(
    device_id: str,
    metric: str | None = Query(None, description="e.g. temperature, humidity"),
    since: datetime | None = Query(None, description="ISO 8601, inclusive"),
    until: datetime | None = Query(None, description="ISO 8601, exclusive"),
    limit: int = Query(1000, ge=1, le=50000),
    session: Session = Depends(get_session),
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
    try:
        device = registry.get_device(session, device_id=device_id)
    except registry.DeviceNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    rows = registry.reading_history(
        session, device=device, metric=metric, since=since, until=until, limit=limit
    )
    return [ReadingOut.model_validate(r) for r in rows]

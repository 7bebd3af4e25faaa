"""Boroughs → estates/blocks → properties → placements."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, status
from sqlalchemy.orm import Session

from fleet.access import audit
from fleet.access.principal import Principal
from fleet.access.roles import Scope
from fleet.api.deps import get_session, require
from fleet.api.schemas import (
    MAX_ID,
    BoroughCreate,
    BoroughOut,
    EstateCreate,
    EstateOut,
    PlacementCreate,
    PlacementOut,
    PropertyCreate,
    PropertyOut,
)
from fleet.models import Borough
from fleet.registry import places

router = APIRouter(prefix="/api/v1", tags=["registry"])


def _borough(session: Session, code: str, principal: Principal) -> Borough:
    try:
        return places.borough_by_code(session, code=code, principal=principal)
    except places.NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc


@router.get("/boroughs", response_model=list[BoroughOut])
def list_boroughs(
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.DEVICES_READ)),
) -> list[BoroughOut]:
    return [
        BoroughOut.model_validate(b) for b in places.visible_boroughs(session, principal=principal)
    ]


@router.post("/boroughs", response_model=BoroughOut, status_code=201)
def create_borough(
    body: BoroughCreate,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.USERS_ADMIN)),
) -> BoroughOut:
    try:
        borough = places.create_borough(
            session, code=body.code, name=body.name, contact_email=body.contact_email
        )
    except places.Conflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    audit.record(session, principal, "borough.create", target_type="borough", target_id=body.code)
    session.commit()
    return BoroughOut.model_validate(borough)


@router.get("/boroughs/{code}/estates", response_model=list[EstateOut])
def list_estates(
    code: str,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.DEVICES_READ)),
) -> list[EstateOut]:
    borough = _borough(session, code, principal)
    return [EstateOut.model_validate(e) for e in places.list_estates(session, borough=borough)]


@router.post("/boroughs/{code}/estates", response_model=EstateOut, status_code=201)
def create_estate(
    code: str,
    body: EstateCreate,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.REGISTRY_WRITE)),
) -> EstateOut:
    borough = _borough(session, code, principal)
    try:
        estate = places.create_estate(
            session, borough=borough, name=body.name, kind=body.kind, parent_id=body.parent_id
        )
    except places.NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except places.Conflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    audit.record(
        session,
        principal,
        "estate.create",
        target_type="estate",
        target_id=estate.id,
        borough_id=borough.id,
    )
    session.commit()
    return EstateOut.model_validate(estate)


@router.get("/boroughs/{code}/properties", response_model=list[PropertyOut])
def list_properties(
    code: str,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.DEVICES_READ)),
) -> list[PropertyOut]:
    borough = _borough(session, code, principal)
    return [PropertyOut.model_validate(p) for p in places.list_properties(session, borough=borough)]


@router.post("/boroughs/{code}/properties", response_model=PropertyOut, status_code=201)
def create_property(
    code: str,
    body: PropertyCreate,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.REGISTRY_WRITE)),
) -> PropertyOut:
    borough = _borough(session, code, principal)
    try:
        prop = places.create_property(session, borough=borough, **body.model_dump())
    except places.NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except places.Conflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    audit.record(
        session,
        principal,
        "property.create",
        target_type="property",
        target_id=prop.id,
        borough_id=borough.id,
    )
    session.commit()
    return PropertyOut.model_validate(prop)


@router.get("/properties/{property_id}/placements", response_model=list[PlacementOut])
def list_placements(
    property_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.DEVICES_READ)),
) -> list[PlacementOut]:
    try:
        prop = places.get_property(session, property_id=property_id, principal=principal)
    except places.NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    return [PlacementOut.model_validate(p) for p in places.list_placements(session, prop=prop)]


@router.post("/properties/{property_id}/placements", response_model=PlacementOut, status_code=201)
def create_placement(
    property_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    body: PlacementCreate,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.REGISTRY_WRITE)),
) -> PlacementOut:
    try:
        prop = places.get_property(session, property_id=property_id, principal=principal)
    except places.NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    placement = places.create_placement(session, prop=prop, room=body.room, position=body.position)
    audit.record(
        session,
        principal,
        "placement.create",
        target_type="placement",
        target_id=placement.id,
        borough_id=prop.borough_id,
    )
    session.commit()
    return PlacementOut.model_validate(placement)

"""Boroughs → estates/blocks → properties → placements."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet.access import audit
from fleet.access.principal import Principal
from fleet.access.roles import Scope
from fleet.api.deps import get_session, require
from fleet.api.schemas import (
    MAX_ID,
    BoroughCreate,
    BoroughOut,
    BoroughUpdate,
    EstateCreate,
    EstateOut,
    EstateUpdate,
    HardwareModelIn,
    HardwareModelOut,
    PlacementCreate,
    PlacementOut,
    PlacementUpdate,
    PropertyCreate,
    PropertyOut,
    PropertyUpdate,
)
from fleet.models import Borough, HardwareModel
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


@router.patch("/boroughs/{code}", response_model=BoroughOut)
def update_borough(
    code: str,
    body: BoroughUpdate,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.REGISTRY_WRITE)),
) -> BoroughOut:
    """Name, contact and alert thresholds of one of your boroughs."""
    borough = _borough(session, code, principal)
    changes = body.model_dump(exclude_unset=True)
    if "alert_settings" in changes:
        settings = body.alert_settings.model_dump(exclude_none=True) if body.alert_settings else {}
        changes["alert_settings"] = settings or None
    diff = places.update_fields(borough, changes)
    audit.record(
        session,
        principal,
        "borough.update",
        target_type="borough",
        target_id=code,
        borough_id=borough.id,
        detail=diff,
    )
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


def _not_found(exc: Exception) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))


def _conflict(exc: Exception) -> HTTPException:
    return HTTPException(status.HTTP_409_CONFLICT, str(exc))


@router.patch("/estates/{estate_id}", response_model=EstateOut)
def update_estate(
    estate_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    body: EstateUpdate,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.REGISTRY_WRITE)),
) -> EstateOut:
    try:
        estate = places.get_estate(session, estate_id=estate_id, principal=principal)
    except places.NotFound as exc:
        raise _not_found(exc) from exc
    diff = places.update_fields(estate, body.model_dump(exclude_unset=True))
    audit.record(
        session,
        principal,
        "estate.update",
        target_type="estate",
        target_id=estate.id,
        borough_id=estate.borough_id,
        detail=diff,
    )
    session.commit()
    return EstateOut.model_validate(estate)


@router.delete("/estates/{estate_id}", status_code=204)
def delete_estate(
    estate_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.REGISTRY_WRITE)),
) -> None:
    try:
        estate = places.get_estate(session, estate_id=estate_id, principal=principal)
        places.delete_estate(session, estate)
    except places.NotFound as exc:
        raise _not_found(exc) from exc
    except places.Conflict as exc:
        raise _conflict(exc) from exc
    audit.record(
        session,
        principal,
        "estate.delete",
        target_type="estate",
        target_id=estate_id,
        borough_id=estate.borough_id,
        detail={"name": estate.name},
    )
    session.commit()


@router.get("/properties/{property_id}", response_model=PropertyOut)
def get_property(
    property_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.DEVICES_READ)),
) -> PropertyOut:
    try:
        return PropertyOut.model_validate(
            places.get_property(session, property_id=property_id, principal=principal)
        )
    except places.NotFound as exc:
        raise _not_found(exc) from exc


@router.patch("/properties/{property_id}", response_model=PropertyOut)
def update_property(
    property_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    body: PropertyUpdate,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.REGISTRY_WRITE)),
) -> PropertyOut:
    try:
        prop = places.get_property(session, property_id=property_id, principal=principal)
        changes = body.model_dump(exclude_unset=True)
        if changes.get("estate_id") is not None:
            estate = places.get_estate(session, estate_id=changes["estate_id"], principal=principal)
            if estate.borough_id != prop.borough_id:
                raise places.NotFound(f"no estate {estate.id} in this property's borough")
    except places.NotFound as exc:
        raise _not_found(exc) from exc
    diff = places.update_fields(prop, changes)
    # Addresses are personal data: the audit log says that they changed, not what to.
    for private in ("address", "postcode"):
        if private in diff:
            diff[private] = "changed"
    audit.record(
        session,
        principal,
        "property.update",
        target_type="property",
        target_id=prop.id,
        borough_id=prop.borough_id,
        detail=diff,
    )
    session.commit()
    return PropertyOut.model_validate(prop)


@router.delete("/properties/{property_id}", status_code=204)
def delete_property(
    property_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.REGISTRY_WRITE)),
) -> None:
    try:
        prop = places.get_property(session, property_id=property_id, principal=principal)
        places.delete_property(session, prop)
    except places.NotFound as exc:
        raise _not_found(exc) from exc
    except places.Conflict as exc:
        raise _conflict(exc) from exc
    audit.record(
        session,
        principal,
        "property.delete",
        target_type="property",
        target_id=property_id,
        borough_id=prop.borough_id,
        detail={"reference": prop.reference},
    )
    session.commit()


@router.patch("/placements/{placement_id}", response_model=PlacementOut)
def update_placement(
    placement_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    body: PlacementUpdate,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.REGISTRY_WRITE)),
) -> PlacementOut:
    try:
        placement = places.get_placement(session, placement_id=placement_id, principal=principal)
        prop = places.get_property(session, property_id=placement.property_id, principal=principal)
    except places.NotFound as exc:
        raise _not_found(exc) from exc
    diff = places.update_fields(placement, body.model_dump(exclude_unset=True))
    audit.record(
        session,
        principal,
        "placement.update",
        target_type="placement",
        target_id=placement.id,
        borough_id=prop.borough_id,
        detail=diff,
    )
    session.commit()
    return PlacementOut.model_validate(placement)


@router.delete("/placements/{placement_id}", status_code=204)
def delete_placement(
    placement_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.REGISTRY_WRITE)),
) -> None:
    try:
        placement = places.get_placement(session, placement_id=placement_id, principal=principal)
        prop = places.get_property(session, property_id=placement.property_id, principal=principal)
        places.delete_placement(session, placement)
    except places.NotFound as exc:
        raise _not_found(exc) from exc
    except places.Conflict as exc:
        raise _conflict(exc) from exc
    audit.record(
        session,
        principal,
        "placement.delete",
        target_type="placement",
        target_id=placement_id,
        borough_id=prop.borough_id,
    )
    session.commit()


@router.get("/hardware-models", response_model=list[HardwareModelOut])
def list_hardware_models(
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.DEVICES_READ)),
) -> list[HardwareModelOut]:
    rows = session.scalars(select(HardwareModel).order_by(HardwareModel.board)).all()
    return [HardwareModelOut.model_validate(r) for r in rows]


@router.post("/hardware-models", response_model=HardwareModelOut, status_code=201)
def create_hardware_model(
    body: HardwareModelIn,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.USERS_ADMIN)),
) -> HardwareModelOut:
    if session.scalars(select(HardwareModel.id).where(HardwareModel.board == body.board)).first():
        raise HTTPException(status.HTTP_409_CONFLICT, f"hardware model {body.board!r} exists")
    model = HardwareModel(**body.model_dump())
    session.add(model)
    audit.record(
        session,
        principal,
        "hardware_model.create",
        target_type="hardware_model",
        target_id=body.board,
    )
    session.commit()
    return HardwareModelOut.model_validate(model)

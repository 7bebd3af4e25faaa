"""Boroughs → estates/blocks → properties → placements, and hardware models.

Registry errors (not found, conflict) become 404/409 through the app's exception handlers.
"""

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
from fleet.models import HardwareModel
from fleet.registry import changes, places

router = APIRouter(prefix="/api/v1", tags=["registry"])
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
Reader = Depends(require(Scope.DEVICES_READ))
Writer = Depends(require(Scope.REGISTRY_WRITE))


@router.get("/boroughs", response_model=list[BoroughOut])
def list_boroughs(
    session: Session = Depends(get_session), principal: Principal = Reader
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
    borough = places.create_borough(
        session, code=body.code, name=body.name, contact_email=body.contact_email
    )
    changes.created(session, principal, borough)
    session.commit()
    return BoroughOut.model_validate(borough)


@router.patch("/boroughs/{code}", response_model=BoroughOut)
def update_borough(
    code: str,
    body: BoroughUpdate,
    session: Session = Depends(get_session),
    principal: Principal = Writer,
) -> BoroughOut:
    """Name, contact and alert thresholds of one of your boroughs."""
    borough = places.borough_by_code(session, code=code, principal=principal)
    fields = body.model_dump(exclude_unset=True)
    if "alert_settings" in fields:
        thresholds = (
            body.alert_settings.model_dump(exclude_none=True) if body.alert_settings else {}
        )
        fields["alert_settings"] = thresholds or None
    changes.update(session, principal, borough, fields)
    session.commit()
    return BoroughOut.model_validate(borough)


@router.get("/boroughs/{code}/estates", response_model=list[EstateOut])
def list_estates(
    code: str, session: Session = Depends(get_session), principal: Principal = Reader
) -> list[EstateOut]:
    borough = places.borough_by_code(session, code=code, principal=principal)
    return [EstateOut.model_validate(e) for e in places.list_estates(session, borough=borough)]


@router.post("/boroughs/{code}/estates", response_model=EstateOut, status_code=201)
def create_estate(
    code: str,
    body: EstateCreate,
    session: Session = Depends(get_session),
    principal: Principal = Writer,
) -> EstateOut:
    borough = places.borough_by_code(session, code=code, principal=principal)
    estate = places.create_estate(
        session, borough=borough, name=body.name, kind=body.kind, parent_id=body.parent_id
    )
    changes.created(session, principal, estate)
    session.commit()
    return EstateOut.model_validate(estate)


@router.patch("/estates/{estate_id}", response_model=EstateOut)
def update_estate(
    estate_id: IdPath,
    body: EstateUpdate,
    session: Session = Depends(get_session),
    principal: Principal = Writer,
) -> EstateOut:
    estate = places.get_estate(session, estate_id=estate_id, principal=principal)
    if body.name is not None:
        places.ensure_estate_name_free(session, estate, body.name)
    changes.update(session, principal, estate, body.model_dump(exclude_unset=True))
    session.commit()
    return EstateOut.model_validate(estate)


@router.delete("/estates/{estate_id}", status_code=204)
def delete_estate(
    estate_id: IdPath, session: Session = Depends(get_session), principal: Principal = Writer
) -> None:
    changes.delete(
        session, principal, places.get_estate(session, estate_id=estate_id, principal=principal)
    )
    session.commit()


@router.get("/boroughs/{code}/properties", response_model=list[PropertyOut])
def list_properties(
    code: str, session: Session = Depends(get_session), principal: Principal = Reader
) -> list[PropertyOut]:
    borough = places.borough_by_code(session, code=code, principal=principal)
    return [PropertyOut.model_validate(p) for p in places.list_properties(session, borough=borough)]


@router.post("/boroughs/{code}/properties", response_model=PropertyOut, status_code=201)
def create_property(
    code: str,
    body: PropertyCreate,
    session: Session = Depends(get_session),
    principal: Principal = Writer,
) -> PropertyOut:
    borough = places.borough_by_code(session, code=code, principal=principal)
    prop = places.create_property(session, borough=borough, **body.model_dump())
    changes.created(session, principal, prop)
    session.commit()
    return PropertyOut.model_validate(prop)


@router.get("/properties/{property_id}", response_model=PropertyOut)
def get_property(
    property_id: IdPath, session: Session = Depends(get_session), principal: Principal = Reader
) -> PropertyOut:
    return PropertyOut.model_validate(
        places.get_property(session, property_id=property_id, principal=principal)
    )


@router.patch("/properties/{property_id}", response_model=PropertyOut)
def update_property(
    property_id: IdPath,
    body: PropertyUpdate,
    session: Session = Depends(get_session),
    principal: Principal = Writer,
) -> PropertyOut:
    prop = places.get_property(session, property_id=property_id, principal=principal)
    fields = body.model_dump(exclude_unset=True)
    if fields.get("estate_id") is not None:
        estate = places.get_estate(session, estate_id=fields["estate_id"], principal=principal)
        if estate.borough_id != prop.borough_id:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no estate {estate.id} in this borough")
    changes.update(session, principal, prop, fields)
    session.commit()
    return PropertyOut.model_validate(prop)


@router.delete("/properties/{property_id}", status_code=204)
def delete_property(
    property_id: IdPath, session: Session = Depends(get_session), principal: Principal = Writer
) -> None:
    prop = places.get_property(session, property_id=property_id, principal=principal)
    changes.delete(session, principal, prop)
    session.commit()


@router.get("/properties/{property_id}/placements", response_model=list[PlacementOut])
def list_placements(
    property_id: IdPath, session: Session = Depends(get_session), principal: Principal = Reader
) -> list[PlacementOut]:
    prop = places.get_property(session, property_id=property_id, principal=principal)
    return [PlacementOut.model_validate(p) for p in places.list_placements(session, prop=prop)]


@router.post("/properties/{property_id}/placements", response_model=PlacementOut, status_code=201)
def create_placement(
    property_id: IdPath,
    body: PlacementCreate,
    session: Session = Depends(get_session),
    principal: Principal = Writer,
) -> PlacementOut:
    prop = places.get_property(session, property_id=property_id, principal=principal)
    placement = places.create_placement(session, prop=prop, room=body.room, position=body.position)
    changes.created(session, principal, placement)
    session.commit()
    return PlacementOut.model_validate(placement)


@router.patch("/placements/{placement_id}", response_model=PlacementOut)
def update_placement(
    placement_id: IdPath,
    body: PlacementUpdate,
    session: Session = Depends(get_session),
    principal: Principal = Writer,
) -> PlacementOut:
    placement = places.get_placement(session, placement_id=placement_id, principal=principal)
    changes.update(session, principal, placement, body.model_dump(exclude_unset=True))
    session.commit()
    return PlacementOut.model_validate(placement)


@router.delete("/placements/{placement_id}", status_code=204)
def delete_placement(
    placement_id: IdPath, session: Session = Depends(get_session), principal: Principal = Writer
) -> None:
    placement = places.get_placement(session, placement_id=placement_id, principal=principal)
    changes.delete(session, principal, placement)
    session.commit()


@router.get("/hardware-models", response_model=list[HardwareModelOut])
def list_hardware_models(
    session: Session = Depends(get_session), principal: Principal = Reader
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

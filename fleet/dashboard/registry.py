"""Registry pages: estates, properties and placements of the user's boroughs, with forms."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fleet.access import audit
from fleet.access.principal import Principal
from fleet.access.roles import Scope
from fleet.api.deps import check_csrf, get_context, get_session, page_user
from fleet.api.schemas import MAX_ID, PlacementCreate, PropertyCreate, WifiProfileIn
from fleet.core.context import FleetContext
from fleet.dashboard.templating import TEMPLATES, back_with_notice
from fleet.enrolment import wifi
from fleet.enrolment.secrets import SecretBox
from fleet.models import Borough, Device, Estate, Placement
from fleet.registry import changes, places

router = APIRouter(include_in_schema=False)
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
MAX_ESTATE_NAME = 200  # the width of estates.name


def _editable_borough(session: Session, user: Principal, code: str, csrf: str) -> Borough:
    """The borough a registry form changes: the form's own, the user's to edit, visible."""
    check_csrf(user, csrf)
    user.require(Scope.REGISTRY_WRITE)
    return places.borough_by_code(session, code=code, principal=user)


def _errors(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


@router.get("/registry", response_class=HTMLResponse)
def registry_page(
    request: Request,
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> HTMLResponse:
    boroughs = places.visible_boroughs(session, principal=user)
    devices_per_property = dict(
        session.execute(
            select(Placement.property_id, func.count(Device.id))
            .join(Device, Device.placement_id == Placement.id)
            .group_by(Placement.property_id)
        ).all()
    )
    listing = [
        (b, places.list_estates(session, borough=b), places.list_properties(session, borough=b))
        for b in boroughs
    ]
    networks = (
        {b.id: wifi.list_profiles(session, borough=b) for b in boroughs}
        if Scope.DEVICES_READ in user.scopes
        else {}
    )
    return TEMPLATES.TemplateResponse(
        request,
        "registry.html",
        {
            "user": user,
            "listing": listing,
            "devices_per_property": devices_per_property,
            "networks": networks,
            "can_edit": Scope.REGISTRY_WRITE in user.scopes,
            "notice": request.query_params.get("notice"),
        },
    )


@router.post("/registry/{code}/properties")
def create_property(
    code: str,
    reference: str = Form(...),
    housing_type: str = Form(""),
    construction_age_band: str = Form(""),
    floor: str = Form(""),
    estate_id: str = Form(""),
    csrf: str = Form(""),
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> Response:
    borough = _editable_borough(session, user, code, csrf)
    try:
        floor_no = int(floor) if floor.strip() else None
    except ValueError:
        return back_with_notice("/registry", "not saved: floor must be a whole number")
    try:
        estate_no = int(estate_id) if estate_id.strip() else None
    except ValueError:
        return back_with_notice("/registry", "not saved: choose the estate from the list")
    try:
        body = PropertyCreate(
            reference=reference.strip(),
            housing_type=housing_type or None,
            construction_age_band=construction_age_band or None,
            floor=floor_no,
            estate_id=estate_no,
        )
        prop = places.create_property(session, borough=borough, **body.model_dump())
    except ValidationError as exc:
        return back_with_notice("/registry", f"not saved: {_errors(exc)}")
    except places.NotFound:
        # The list was out of date, or the estate is another borough's.
        return back_with_notice(
            "/registry", f"not saved: {borough.name} has no such estate; choose it from the list"
        )
    except places.Conflict as exc:
        return back_with_notice("/registry", f"not saved: {exc}")
    audit.record(
        session,
        user,
        "property.create",
        target_type="property",
        target_id=prop.id,
        borough_id=borough.id,
    )
    session.commit()
    return back_with_notice(f"/registry/properties/{prop.id}", "property created")


@router.post("/registry/{code}/estates")
def create_estate(
    code: str,
    name: str = Form("", max_length=2000),
    kind: str = Form("estate", pattern=r"^(estate|block)$"),
    csrf: str = Form(""),
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> Response:
    borough = _editable_borough(session, user, code, csrf)
    name = name.strip()
    if not name:
        return back_with_notice("/registry", "not saved: give the estate or block a name")
    if len(name) > MAX_ESTATE_NAME:
        return back_with_notice(
            "/registry", f"not saved: a name is at most {MAX_ESTATE_NAME} characters"
        )
    try:
        estate = places.create_estate(session, borough=borough, name=name, kind=kind)
    except places.Conflict as exc:
        return back_with_notice("/registry", f"not saved: {exc}")
    changes.created(session, user, estate)
    session.commit()
    return back_with_notice("/registry", f"estate {estate.name} created")


@router.post("/registry/{code}/wifi-profiles")
def set_wifi_profile(
    code: str,
    name: str = Form(wifi.DEFAULT_PROFILE),
    ssid: str = Form(""),
    password: str = Form(""),
    csrf: str = Form(""),
    ctx: FleetContext = Depends(get_context),
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> Response:
    """Create or replace a Wi-Fi profile that enrolment writes into the borough's sensors."""
    borough = _editable_borough(session, user, code, csrf)
    name = name.strip() or wifi.DEFAULT_PROFILE
    if len(name) > 64:
        return back_with_notice("/registry", "not saved: a profile name is at most 64 characters")
    try:
        body = WifiProfileIn(ssid=ssid.strip(), password=password or None)
    except ValidationError as exc:
        return back_with_notice("/registry", f"not saved: {_errors(exc)}")
    wifi.set_profile(
        session,
        box=SecretBox.from_settings(ctx.settings),
        borough=borough,
        ssid=body.ssid,
        password=body.password,
        name=name,
        principal=user,
    )
    session.commit()
    return back_with_notice("/registry", f"Wi-Fi profile {name} saved for {borough.name}")


@router.get("/registry/properties/{property_id}", response_class=HTMLResponse)
def property_page(
    request: Request,
    property_id: IdPath,
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> HTMLResponse:
    prop = places.get_property(session, property_id=property_id, principal=user)
    rows = session.execute(
        select(Placement, Device.device_id)
        .outerjoin(Device, Device.placement_id == Placement.id)
        .where(Placement.property_id == prop.id)
        .order_by(Placement.room)
    ).all()
    estate = session.get(Estate, prop.estate_id) if prop.estate_id else None
    return TEMPLATES.TemplateResponse(
        request,
        "registry_property.html",
        {
            "user": user,
            "prop": prop,
            "estate": estate,
            "placements": rows,
            "can_edit": Scope.REGISTRY_WRITE in user.scopes,
            "notice": request.query_params.get("notice"),
        },
    )


@router.post("/registry/properties/{property_id}/placements")
def create_placement(
    property_id: IdPath,
    room: str = Form(...),
    position: str = Form(""),
    csrf: str = Form(""),
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> Response:
    check_csrf(user, csrf)
    user.require(Scope.REGISTRY_WRITE)
    here = f"/registry/properties/{property_id}"
    prop = places.get_property(session, property_id=property_id, principal=user)
    try:
        body = PlacementCreate(room=room.strip(), position=position.strip() or None)
    except ValidationError as exc:
        return back_with_notice(here, f"not saved: {_errors(exc)}")
    placement = places.create_placement(session, prop=prop, room=body.room, position=body.position)
    audit.record(
        session,
        user,
        "placement.create",
        target_type="placement",
        target_id=placement.id,
        borough_id=prop.borough_id,
    )
    session.commit()
    return back_with_notice(here, f"placement {placement.room} added")


@router.post("/registry/properties/{property_id}/delete")
def delete_property(
    property_id: IdPath,
    csrf: str = Form(""),
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> Response:
    check_csrf(user, csrf)
    user.require(Scope.REGISTRY_WRITE)
    prop = places.get_property(session, property_id=property_id, principal=user)
    try:
        changes.delete(session, user, prop)
    except places.Conflict as exc:
        return back_with_notice(f"/registry/properties/{property_id}", f"not deleted: {exc}")
    session.commit()
    return back_with_notice("/registry", f"property {prop.reference} deleted")

"""Registry pages: estates, properties and placements of the user's boroughs, with forms."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Query, Request, status
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet.access import audit
from fleet.access.principal import Principal
from fleet.access.roles import Scope
from fleet.api.deps import check_csrf, get_context, get_session, page_user
from fleet.api.schemas import MAX_ID, PlacementCreate, PropertyCreate, WifiProfileIn
from fleet.core.context import FleetContext
from fleet.dashboard.refill import NO_REFUSAL, Refused
from fleet.dashboard.retired_devices import router as retired_router
from fleet.dashboard.risk import choose_borough
from fleet.dashboard.templating import MAX_PAGE, TEMPLATES, back_with_notice, clamped_page
from fleet.enrolment import wifi
from fleet.enrolment.secrets import SecretBox
from fleet.models import Borough, Device, Estate, Placement, Property
from fleet.registry import changes, places

router = APIRouter(include_in_schema=False)
# Retired devices are a tab of the registry: their list, pages and the Decommission form.
router.include_router(retired_router)
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
MAX_ESTATE_NAME = 200  # the width of estates.name
REGISTRY_PAGE_SIZE = 100


def _editable_borough(session: Session, user: Principal, code: str, csrf: str) -> Borough:
    """The borough a registry form changes: the form's own, the user's to edit, visible."""
    check_csrf(user, csrf)
    user.require(Scope.REGISTRY_WRITE)
    return places.borough_by_code(session, code=code, principal=user)


def _errors(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


def render_registry(
    request: Request,
    session: Session,
    user: Principal,
    *,
    borough: str | None = None,
    q: str = "",
    page: int = 1,
    refused: Refused = NO_REFUSAL,
) -> Response:
    """One borough's estates, a page of its properties (those matching ``q``) and its Wi-Fi
    networks; a refused form of that borough comes back filled in."""
    chosen, visible = choose_borough(session, borough, user)
    properties: Sequence[Property] = []
    total = 0
    if chosen is not None:
        properties, total = places.find_properties(
            session,
            borough=chosen,
            q=q or None,
            limit=REGISTRY_PAGE_SIZE,
            offset=(page - 1) * REGISTRY_PAGE_SIZE,
        )
    pages = max(1, math.ceil(total / REGISTRY_PAGE_SIZE))
    if page > pages and refused is NO_REFUSAL:
        return clamped_page(request, pages)
    networks = None
    if chosen is not None and Scope.DEVICES_READ in user.scopes:
        networks = wifi.list_profiles(session, borough=chosen)
    return TEMPLATES.TemplateResponse(
        request,
        "registry.html",
        {
            "user": user,
            "borough": chosen,
            "boroughs": visible,
            "estates": places.list_estates(session, borough=chosen) if chosen else [],
            "properties": properties,
            "total": total,
            "page": page,
            "pages": pages,
            "q": q,
            # Counted for the properties shown only: the page's own rows, in scope.
            "devices_per_property": places.devices_per_property(
                session, [p.id for p in properties]
            ),
            "networks": networks,
            "can_edit": Scope.REGISTRY_WRITE in user.scopes,
            "notice": request.query_params.get("notice"),
            "refused": refused,
        },
        status_code=refused.status_code if refused.form else status.HTTP_200_OK,
    )


@router.get("/registry", response_class=HTMLResponse)
def registry_page(
    request: Request,
    borough: str | None = Query(None, max_length=32),
    q: str = Query("", max_length=100),
    page: int = Query(1, ge=1, le=MAX_PAGE),
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> Response:
    return render_registry(request, session, user, borough=borough, q=q.strip(), page=page)


def _field_of(exc: ValidationError) -> str | None:
    """The form field the first validation error is about."""
    loc = exc.errors()[0]["loc"] if exc.errors() else ()
    return str(loc[0]) if loc else None


@router.post("/registry/{code}/properties")
def create_property(
    request: Request,
    code: str,
    reference: str = Form(...),
    housing_type: str = Form(""),
    construction_age_band: str = Form(""),
    floor: str = Form(""),
    estate_id: str = Form(""),
    address: str = Form(""),
    postcode: str = Form(""),
    csrf: str = Form(""),
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> Response:
    borough = _editable_borough(session, user, code, csrf)
    typed = {
        "reference": reference,
        "housing_type": housing_type,
        "construction_age_band": construction_age_band,
        "floor": floor,
        "estate_id": estate_id,
        "address": address,
        "postcode": postcode,
    }

    def refuse(message: str, field: str | None, code_: int = 422) -> Response:
        form = f"property-{borough.code}"
        said = Refused(form, f"not saved: {message}", field, typed, code_)
        return render_registry(request, session, user, borough=borough.code, refused=said)

    try:
        floor_no = int(floor) if floor.strip() else None
    except ValueError:
        return refuse("floor must be a whole number", "floor")
    try:
        estate_no = int(estate_id) if estate_id.strip() else None
    except ValueError:
        return refuse("choose the estate from the list", "estate_id")
    try:
        body = PropertyCreate(
            reference=reference.strip(),
            housing_type=housing_type or None,
            construction_age_band=construction_age_band or None,
            floor=floor_no,
            estate_id=estate_no,
            address=address.strip() or None,
            postcode=postcode.strip() or None,
        )
        prop = places.create_property(session, borough=borough, **body.model_dump())
    except ValidationError as exc:
        return refuse(_errors(exc), _field_of(exc))
    except places.NotFound:
        # The list was out of date, or the estate is another borough's.
        return refuse(f"{borough.name} has no such estate; choose it from the list", "estate_id")
    except places.Conflict as exc:
        return refuse(str(exc), "reference", status.HTTP_409_CONFLICT)
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
    request: Request,
    code: str,
    name: str = Form("", max_length=2000),
    kind: str = Form("estate", pattern=r"^(estate|block)$"),
    csrf: str = Form(""),
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> Response:
    borough = _editable_borough(session, user, code, csrf)

    def refuse(message: str, code_: int = 422) -> Response:
        typed = {"name": name, "kind": kind}
        said = Refused(f"estate-{borough.code}", f"not saved: {message}", "name", typed, code_)
        return render_registry(request, session, user, borough=borough.code, refused=said)

    name = name.strip()
    if not name:
        return refuse("give the estate or block a name")
    if len(name) > MAX_ESTATE_NAME:
        return refuse(f"a name is at most {MAX_ESTATE_NAME} characters")
    try:
        estate = places.create_estate(session, borough=borough, name=name, kind=kind)
    except places.Conflict as exc:
        return refuse(str(exc), status.HTTP_409_CONFLICT)
    changes.created(session, user, estate)
    session.commit()
    return back_with_notice(f"/registry?borough={borough.code}", f"estate {estate.name} created")


@router.post("/registry/{code}/wifi-profiles")
def set_wifi_profile(
    request: Request,
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

    def refuse(message: str, field: str | None) -> Response:
        # The password is never sent back: it is typed again.
        typed = {"name": name, "ssid": ssid}
        said = Refused(f"wifi-form-{borough.code}", f"not saved: {message}", field, typed)
        return render_registry(request, session, user, borough=borough.code, refused=said)

    name = name.strip() or wifi.DEFAULT_PROFILE
    if len(name) > 64:
        return refuse("a profile name is at most 64 characters", "name")
    try:
        body = WifiProfileIn(ssid=ssid.strip(), password=password or None)
    except ValidationError as exc:
        return refuse(_errors(exc), _field_of(exc))
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
    return back_with_notice(
        f"/registry?borough={borough.code}", f"Wi-Fi profile {name} saved for {borough.name}"
    )


def render_property(
    request: Request,
    session: Session,
    user: Principal,
    prop: Property,
    *,
    refused: Refused = NO_REFUSAL,
) -> Response:
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
            "refused": refused,
        },
        status_code=refused.status_code if refused.form else status.HTTP_200_OK,
    )


@router.get("/registry/properties/{property_id}", response_class=HTMLResponse)
def property_page(
    request: Request,
    property_id: IdPath,
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> Response:
    prop = places.get_property(session, property_id=property_id, principal=user)
    return render_property(request, session, user, prop)


@router.post("/registry/properties/{property_id}/placements")
def create_placement(
    request: Request,
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
        typed = {"room": room, "position": position}
        said = Refused("placement", f"not saved: {_errors(exc)}", _field_of(exc), typed)
        return render_property(request, session, user, prop, refused=said)
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
    borough = session.get(Borough, prop.borough_id)
    try:
        changes.delete(session, user, prop)
    except places.Conflict as exc:
        return back_with_notice(f"/registry/properties/{property_id}", f"not deleted: {exc}")
    session.commit()
    return back_with_notice(
        f"/registry?borough={borough.code if borough else ''}", f"property {prop.reference} deleted"
    )

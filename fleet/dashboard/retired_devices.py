"""Retired devices in the registry: the list of a borough's decommissioned sensors, a read-only
page for each (where it served, who retired it, the readings kept as evidence), and the
device page's Decommission button, which retires a device as the API's DELETE does."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from fleet.access.principal import Principal
from fleet.access.roles import Scope
from fleet.api.deps import check_csrf, get_context, get_session, page_user
from fleet.api.schemas import MAX_ID
from fleet.core.context import FleetContext
from fleet.dashboard.risk import choose_borough
from fleet.dashboard.templating import MAX_PAGE, TEMPLATES, back_with_notice, clamped_page
from fleet.models import Borough
from fleet.registry import devices as registry
from fleet.registry import retired
from fleet.registry.decommission import decommission as take_out_of_service

router = APIRouter(include_in_schema=False)
RETIRED_PAGE_SIZE = 100
PkPath = Annotated[int, Path(ge=1, le=MAX_ID)]


def _audit_readable(user: Principal) -> bool:
    return Scope.AUDIT_READ in user.scopes


@router.get("/registry/retired", response_class=HTMLResponse)
def retired_list(
    request: Request,
    borough: str | None = Query(None, max_length=32),
    page: int = Query(1, ge=1, le=MAX_PAGE),
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> Response:
    """One borough's retired devices (chosen as on the registry page), newest retirement
    first."""
    user.require(Scope.DEVICES_READ)
    chosen, visible = choose_borough(session, borough, user)
    rows: list[retired.RetiredRow] = []
    total = 0
    if chosen is not None:
        rows, total = retired.find_retired(
            session,
            principal=user,
            borough_id=chosen.id,
            limit=RETIRED_PAGE_SIZE,
            offset=(page - 1) * RETIRED_PAGE_SIZE,
            audit_readable=_audit_readable(user),
        )
    pages = max(1, math.ceil(total / RETIRED_PAGE_SIZE))
    if page > pages:
        return clamped_page(request, pages)
    return TEMPLATES.TemplateResponse(
        request,
        "retired_devices.html",
        {
            "user": user,
            "borough": chosen,
            "boroughs": visible,
            "rows": rows,
            "total": total,
            "page": page,
            "pages": pages,
            "audit_readable": _audit_readable(user),
        },
    )


@router.get("/registry/retired/{pk}", response_class=HTMLResponse)
def retired_device_page(
    request: Request,
    pk: PkPath,
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> Response:
    """A retired device, read-only: it takes no commands, settings or updates any more."""
    user.require(Scope.DEVICES_READ)
    device = retired.get_retired(session, pk=pk, principal=user)
    readable = _audit_readable(user)
    (row,) = retired.describe(session, [device], principal=user, audit_readable=readable)
    successor = registry.current_device(session, device.device_id)
    return TEMPLATES.TemplateResponse(
        request,
        "retired_device.html",
        {
            "user": user,
            "device": device,
            "row": row,
            "borough": session.get(Borough, device.borough_id) if device.borough_id else None,
            "periods": retired.periods(session, device),
            "metrics": retired.metrics_kept(session, device),
            # The same hardware enrolled again, when the reader may see it.
            "successor": successor if successor and user.can_see(successor.borough_id) else None,
            "audit_readable": readable,
            "notice": request.query_params.get("notice"),
        },
    )


@router.post("/devices/{device_id}/decommission")
def decommission(
    request: Request,
    device_id: str,
    csrf: str = Form(""),
    ctx: FleetContext = Depends(get_context),
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> Response:
    """Retire a device as `DELETE /api/v1/devices/{id}` does: certificates revoked, its
    installation closed, readings and audit trail kept. Erasing readings stays in the API."""
    check_csrf(user, csrf)
    user.require(Scope.REGISTRY_WRITE)
    device = registry.get_device(session, device_id=device_id, principal=user)
    done = take_out_of_service(
        session,
        device,
        principal=user,
        settings=ctx.settings,
        publisher=request.app.state.commands,
    )
    return back_with_notice(
        f"/registry/retired/{device.id}",
        f"{device_id} retired: {done['readings_kept']} readings kept",
    )

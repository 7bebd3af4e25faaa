"""Dashboard pages: overview, device and alerts (all borough-scoped)."""

from __future__ import annotations

import math
from datetime import timedelta

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet.access.principal import Principal
from fleet.access.roles import Scope
from fleet.api.deps import check_csrf, get_session, page_user
from fleet.commands import record as commands
from fleet.commands import settings as device_settings
from fleet.dashboard.charts import Series, line_chart
from fleet.dashboard.refill import NO_REFUSAL, Refused
from fleet.dashboard.rejects import refused_from
from fleet.dashboard.risk import CO2_MARK, ROOM_RH_MARK
from fleet.dashboard.templating import MAX_PAGE, TEMPLATES, clamped_page
from fleet.health import alerts as lifecycle
from fleet.models import DesiredConfig, Device, HealthSnapshot, Placement, Property, StateChange
from fleet.models.base import utcnow
from fleet.models.health import SAMPLED_ORDER
from fleet.models.ota import VersionPin
from fleet.ota import service as ota_service
from fleet.registry import cadence, places
from fleet.registry import devices as registry
from fleet.registry.series import reading_series
from fleet.risk.psychro import dew_point

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
ALERTS_PAGE_SIZE = 100
RANGES = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "1y": timedelta(days=365),
}
CHART_POINTS = 400
# (metric, label, unit, limits drawn on the chart)
CHARTED: tuple[tuple[str, str, str, tuple[tuple[float, str], ...]], ...] = (
    ("temperature", "Temperature", "°C", ()),
    ("humidity", "Relative humidity", "%", ROOM_RH_MARK),
    ("co2", "CO₂", "ppm", CO2_MARK),
    ("battery", "Battery", "%", ()),
)


def overview_query(
    q: str | None, state: str | None, borough: str | None, sort: str, page: int
) -> registry.DeviceQuery:
    return registry.DeviceQuery(
        q=q or None,
        state=state or None,
        borough=borough or None,
        sort=sort.lstrip("-"),
        descending=sort.startswith("-"),
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )


@router.get("/", response_class=HTMLResponse)
def overview(
    request: Request,
    q: str | None = Query(None, max_length=100),
    state: str | None = Query(None, max_length=16),
    borough: str | None = Query(None, max_length=32),
    sort: str = Query("device_id", max_length=20),
    page: int = Query(1, ge=1, le=MAX_PAGE),
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> Response:
    query = overview_query(q, state, borough, sort, page)
    rows, total = registry.find_devices(session, principal=user, query=query)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    if page > pages:
        return clamped_page(request, pages)
    return TEMPLATES.TemplateResponse(
        request,
        "overview.html",
        {
            "user": user,
            "devices": rows,
            "total": total,
            "page": page,
            "pages": pages,
            "counts": registry.state_counts(session, principal=user),
            "boroughs": places.visible_boroughs(session, principal=user),
            "filters": {"q": q or "", "state": state or "", "borough": borough or "", "sort": sort},
        },
    )


@router.get("/devices/{device_id}", response_class=HTMLResponse)
def device_page(
    request: Request,
    device_id: str,
    range: str = Query("24h", pattern=r"^(24h|7d|30d|1y)$"),
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> HTMLResponse:
    try:
        device = registry.get_device(session, device_id=device_id, principal=user)
    except registry.DeviceNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    return render_device(request, session, user, device, range=range)


def render_device(
    request: Request,
    session: Session,
    user: Principal,
    device: Device,
    *,
    range: str = "24h",
    refused: Refused = NO_REFUSAL,
) -> HTMLResponse:
    """The device page; a refused settings or pin form comes back filled in."""
    until = utcnow()
    since = until - RANGES[range]
    window = (since, until)
    by_metric: dict[str, list[tuple]] = {}
    for metric, _, _, _ in CHARTED:
        points = reading_series(
            session, device=device, metric=metric, since=since, until=until, max_points=CHART_POINTS
        )
        if points:
            by_metric[metric] = [(p.ts, p.mean) for p in points]
    charts = [
        (
            label,
            Markup(
                line_chart(
                    Series(label, unit, by_metric.get(metric, []), marks=marks, window=window)
                )
            ),
        )
        for metric, label, unit, marks in CHARTED
        if metric in by_metric or metric in ("temperature", "humidity")
    ]
    temps = dict(by_metric.get("temperature", []))
    dew = [
        (ts, dew_point(temps[ts], rh)) for ts, rh in by_metric.get("humidity", []) if ts in temps
    ]
    charts.insert(
        2,
        (
            "Dew point",
            Markup(line_chart(Series("Dew point", "°C", dew, window=window), colour="#8250df")),
        ),
    )
    rssi = [
        (h.sampled_at or h.at, float(h.data["rssi"]))
        for h in session.scalars(
            select(HealthSnapshot)
            .where(HealthSnapshot.device_pk == device.id, HealthSnapshot.at >= since)
            .order_by(SAMPLED_ORDER)
        )
        if isinstance(h.data.get("rssi"), int | float)
    ]
    charts.append(
        (
            "Wi-Fi signal",
            Markup(line_chart(Series("Wi-Fi RSSI", "dBm", rssi, window=window), colour="#57606a")),
        )
    )
    timeline = session.scalars(
        select(StateChange)
        .where(StateChange.device_pk == device.id)
        .order_by(StateChange.at.desc())
        .limit(50)
    ).all()
    alerts = lifecycle.list_alerts(
        session,
        principal=user,
        device=device,
        states=("open", "acknowledged", "resolved"),
        limit=50,
    )
    placement = session.get(Placement, device.placement_id) if device.placement_id else None
    return TEMPLATES.TemplateResponse(
        request,
        "device.html",
        {
            "user": user,
            "device": device,
            "placement": placement,
            "home": session.get(Property, placement.property_id) if placement else None,
            "charts": charts,
            "range": range,
            "timeline": timeline,
            "alerts": alerts,
            "updates": ota_service.history(session, device, limit=50),
            "commands": commands.recent(session, device.id, limit=10),
            "settings": session.get(DesiredConfig, device.id),
            "settable": device_settings.SETTABLE,
            "cadence_parts": cadence.PARTS,
            "pin": session.get(VersionPin, device.id),
            "rejects": refused_from(session, device.device_id),
            "can_command": Scope.COMMANDS in user.scopes,
            "can_pin": Scope.RELEASES_WRITE in user.scopes,
            "notice": request.query_params.get("notice"),
            "refused": refused,
        },
        status_code=refused.status_code if refused.form else status.HTTP_200_OK,
    )


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(
    request: Request,
    show: str = Query("live", pattern=r"^(live|resolved)$"),
    page: int = Query(1, ge=1, le=MAX_PAGE),
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> Response:
    states = ("open", "acknowledged") if show == "live" else ("resolved",)
    total = lifecycle.count_alerts(session, principal=user, states=states)
    pages = max(1, math.ceil(total / ALERTS_PAGE_SIZE))
    if page > pages:
        return clamped_page(request, pages)
    rows = lifecycle.list_alerts(
        session,
        principal=user,
        states=states,
        limit=ALERTS_PAGE_SIZE,
        offset=(page - 1) * ALERTS_PAGE_SIZE,
    )
    return TEMPLATES.TemplateResponse(
        request,
        "alerts.html",
        {
            "user": user,
            "alerts": rows,
            "total": total,
            "page": page,
            "pages": pages,
            "show": show,
            "can_act": Scope.ALERTS_WRITE in user.scopes,
        },
    )


@router.post("/alerts/{alert_id}/{action}")
def alert_action(
    alert_id: int,
    action: str,
    csrf: str = Form(""),
    show: str = Form("live", pattern=r"^(live|resolved)$"),
    page: int = Form(1, ge=1, le=MAX_PAGE),
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> Response:
    check_csrf(user, csrf)
    user.require(Scope.ALERTS_WRITE)
    fn = {"acknowledge": lifecycle.acknowledge, "resolve": lifecycle.resolve}.get(action)
    if fn is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no alert action {action!r}")
    try:
        fn(session, alert_id=alert_id, principal=user, now=utcnow())
    except lifecycle.AlertNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except lifecycle.AlertStateError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    session.commit()
    # Back to the page the action came from (a later page past the end is clamped there).
    return RedirectResponse(
        f"/alerts?show={show}&page={page}", status_code=status.HTTP_303_SEE_OTHER
    )

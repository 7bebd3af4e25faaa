"""Risk and case pages: borough list by risk, property page with charts, analytics, cases,
and the printable evidence documents (all borough-scoped)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from sqlalchemy.orm import Session

from fleet.access.principal import Principal
from fleet.access.roles import Scope
from fleet.api.deps import check_csrf, get_session, page_user
from fleet.cases import service as cases
from fleet.cases.deadlines import STEP_LABELS, CaseStep
from fleet.cases.errors import InvalidStep
from fleet.cases.service import NOTE_CHARS
from fleet.cases.views import case_view, daily_summary, level_history
from fleet.dashboard.charts import Series, line_chart
from fleet.dashboard.refill import NO_REFUSAL, Refused
from fleet.dashboard.templating import MAX_PAGE, TEMPLATES, back_with_notice, clamped_page
from fleet.dashboard.uk_time import UkTimeError, uk_time
from fleet.models import Borough, Case, Property, PropertyRisk
from fleet.models.base import utcnow
from fleet.registry import places
from fleet.risk.compare import ROOM_RH_LIMIT, SURFACE_RH_LIMIT
from fleet.risk.rules import CO2_POOR_PPM
from fleet.risk.service import analytics, queries

router = APIRouter(include_in_schema=False)
RANGES = {"7d": timedelta(days=7), "14d": timedelta(days=14), "30d": timedelta(days=30)}
ROOM_RH_MARK = ((ROOM_RH_LIMIT, f"{ROOM_RH_LIMIT:.0f} % (Approved Document F)"),)
SURFACE_RH_MARK = ((SURFACE_RH_LIMIT, f"{SURFACE_RH_LIMIT:.0f} % (BS 5250)"),)
CO2_MARK = ((CO2_POOR_PPM, f"{CO2_POOR_PPM:,.0f} ppm (poor ventilation)"),)
# (RiskHour attribute, label, unit, colour, fixed value axis, limits drawn on it)
CHARTS: tuple[tuple[str, str, str, str, tuple[float, float] | None, tuple], ...] = (
    ("humidity", "Relative humidity", "%", "#0969da", None, ROOM_RH_MARK),
    ("dew_point", "Dew point", "°C", "#8250df", None, ()),
    ("surface_rh", "Surface RH", "%", "#bf3989", None, SURFACE_RH_MARK),
    ("mould_index", "Mould index (VTT)", "", "#9a6700", (0.0, 6.0), ()),  # the index's scale
)
RISK_PAGE_SIZE = 100
STEP_CHOICES = [(s.value, STEP_LABELS[s]) for s in CaseStep]
# What the case forms' fields allow, so the browser says so before anything typed is lost.
CASE_FORM_LIMITS = {
    "note_chars": NOTE_CHARS,
    "earliest": f"{cases.earliest_date().isoformat()}T00:00",
}


def risk_charts(
    session: Session, prop: Property, *, since: datetime | None, until: datetime | None = None
) -> list[tuple[str, Markup]]:
    """One SVG per quantity and room over the window (server-rendered, no script); none when
    no hour of the window was processed (the page says so instead of four empty frames)."""
    by_room: dict[str, list[Any]] = {}
    for room, h in queries.hours(session, prop, since=since, until=until):
        by_room.setdefault(room, []).append(h)
    out: list[tuple[str, Markup]] = []
    # Every room's chart spans the same hours, so a sensor that stopped shows where it did.
    window = (since, until) if since is not None and until is not None else None
    for attr, label, unit, colour, scale, marks in CHARTS:
        for room, hours in sorted(by_room.items()):
            title = f"{label} · {room}"
            points = [(h.hour, float(getattr(h, attr))) for h in hours]
            chart = line_chart(Series(title, unit, points, scale, marks, window), colour=colour)
            out.append((title, Markup(chart)))
    return out


def _property(session: Session, property_id: int, user: Principal) -> Property:
    try:
        return places.get_property(session, property_id=property_id, principal=user)
    except places.NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc


def choose_borough(
    session: Session, code: str | None, user: Principal
) -> tuple[Borough | None, list[Borough]]:
    visible = list(places.visible_boroughs(session, principal=user))
    if code:
        chosen = next((b for b in visible if b.code == code), None)
        if chosen is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no borough {code!r}")
        return chosen, visible
    return (visible[0] if visible else None), visible


def render_property_evidence(session: Session, prop: Property, *, now: datetime) -> str:
    """The printable evidence document of a property (already scope-checked)."""
    risk = session.get(PropertyRisk, prop.id)
    since = queries.default_since(risk, timedelta(days=30))
    views = [case_view(session, c, now=now) for c in cases.cases_for_property(session, prop.id)]
    return TEMPLATES.get_template("risk_evidence.html").render(
        prop=prop,
        risk=risk,
        charts=risk_charts(session, prop, since=since, until=risk.data_until if risk else None),
        days=daily_summary(session, prop, since=since, until=None),
        history=level_history(session, prop),
        cases=views,
        generated_at=now,
    )


def render_case_evidence(session: Session, case: Case, *, now: datetime) -> str:
    """The printable evidence document of a case: timeline, readings, before and after."""
    view = case_view(session, case, now=now)
    if view.comparison is not None:
        since = view.comparison.works_at - view.comparison.window
        until: datetime | None = view.comparison.works_at + view.comparison.window
    else:
        since, until = case.aware_at - timedelta(days=14), None
    return TEMPLATES.get_template("case_evidence.html").render(
        view=view,
        prop=view.prop,
        risk=session.get(PropertyRisk, view.prop.id),
        charts=risk_charts(session, view.prop, since=since, until=until),
        days=daily_summary(session, view.prop, since=since, until=until),
        history=level_history(session, view.prop),
        generated_at=now,
    )


@router.get("/risk", response_class=HTMLResponse)
def risk_list(
    request: Request,
    borough: str | None = Query(None, max_length=32),
    page: int = Query(1, ge=1, le=MAX_PAGE),
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> Response:
    chosen, visible = choose_borough(session, borough, user)
    total = queries.count_properties(session, chosen) if chosen else 0
    pages = max(1, math.ceil(total / RISK_PAGE_SIZE))
    if page > pages:
        return clamped_page(request, pages)
    rows = (
        queries.borough_rows(
            session,
            chosen,
            now=utcnow(),
            limit=RISK_PAGE_SIZE,
            offset=(page - 1) * RISK_PAGE_SIZE,
        )
        if chosen
        else []
    )
    return TEMPLATES.TemplateResponse(
        request,
        "risk_list.html",
        {
            "user": user,
            "borough": chosen,
            "boroughs": visible,
            "rows": rows,
            "total": total,
            "page": page,
            "pages": pages,
            "page_size": RISK_PAGE_SIZE,
        },
    )


@router.get("/risk/analytics", response_class=HTMLResponse)
def risk_analytics(
    request: Request,
    borough: str | None = Query(None, max_length=32),
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> HTMLResponse:
    chosen, visible = choose_borough(session, borough, user)
    tables = analytics.distributions(session, chosen) if chosen else []
    points = analytics.trend(session, chosen, until=utcnow()) if chosen else []
    return TEMPLATES.TemplateResponse(
        request,
        "risk_analytics.html",
        {
            "user": user,
            "borough": chosen,
            "boroughs": visible,
            "tables": tables,
            "trend": points,
            "levels": analytics.LEVELS,
            "columns": analytics.COLUMNS,
        },
    )


@router.get("/risk/properties/{property_id}", response_class=HTMLResponse)
def risk_property(
    request: Request,
    property_id: int,
    range: str = Query("14d", pattern=r"^(7d|14d|30d)$"),
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> HTMLResponse:
    prop = _property(session, property_id, user)
    return render_risk_property(request, session, user, prop, range=range)


def render_risk_property(
    request: Request,
    session: Session,
    user: Principal,
    prop: Property,
    *,
    range: str = "14d",
    refused: Refused = NO_REFUSAL,
) -> HTMLResponse:
    """The property's risk page; a refused report comes back filled in."""
    risk = session.get(PropertyRisk, prop.id)
    since = queries.default_since(risk, RANGES[range])
    now = utcnow()
    return TEMPLATES.TemplateResponse(
        request,
        "risk_property.html",
        {
            **CASE_FORM_LIMITS,
            "user": user,
            "prop": prop,
            "risk": risk,
            "range": range,
            "placements": queries.placements(session, prop),
            "charts": risk_charts(
                session, prop, since=since, until=risk.data_until if risk else None
            ),
            "history": level_history(session, prop, limit=20),
            "cases": [
                case_view(session, c, now=now) for c in cases.cases_for_property(session, prop.id)
            ],
            "can_open": Scope.ALERTS_WRITE in user.scopes,
            "notice": request.query_params.get("notice"),
            "refused": refused,
        },
        status_code=refused.status_code if refused.form else status.HTTP_200_OK,
    )


@router.post("/risk/properties/{property_id}/cases")
def risk_open_case(
    request: Request,
    property_id: int,
    hazard: str = Form("significant", pattern=r"^(significant|emergency)$"),
    aware_at: str = Form(""),
    clock: str = Form("", max_length=8),
    note: str = Form("", max_length=NOTE_CHARS),
    csrf: str = Form(""),
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> Response:
    check_csrf(user, csrf)
    user.require(Scope.ALERTS_WRITE)
    prop = _property(session, property_id, user)
    typed = {"hazard": hazard, "aware_at": aware_at, "clock": clock, "note": note}
    try:
        done = cases.report(
            session,
            prop=prop,
            principal=user,
            now=utcnow(),
            aware_at=uk_time(aware_at, field="aware_at", clock=clock),
            hazard=hazard,
            note=note or None,
        )
    except (InvalidStep, UkTimeError) as exc:
        # The form's hazard is a choice of two, so a refusal is about the awareness time.
        field = exc.field if isinstance(exc, UkTimeError) else "aware_at"
        said = Refused("open-case", str(exc), field, typed)
        return render_risk_property(request, session, user, prop, refused=said)
    session.commit()
    if done.created:
        return RedirectResponse(f"/cases/{done.case.id}", status_code=status.HTTP_303_SEE_OTHER)
    linked = "; ".join(["report linked to this open case", *done.changes])
    return back_with_notice(f"/cases/{done.case.id}", linked)


@router.get("/risk/properties/{property_id}/evidence", response_class=HTMLResponse)
def risk_property_evidence(
    property_id: int,
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> HTMLResponse:
    prop = _property(session, property_id, user)
    return HTMLResponse(render_property_evidence(session, prop, now=utcnow()))

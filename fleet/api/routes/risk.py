"""Damp and mould risk: borough lists and analytics, property risk, hourly data, evidence.

Reading needs ``devices:read``; survey facts and recomputes change what the engine computes,
so they need ``registry:write``. Staff only ever see their own boroughs (others: 404).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import HTMLResponse, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet.access import audit
from fleet.access.principal import Principal
from fleet.access.roles import Scope
from fleet.api.deps import get_context, get_session, require
from fleet.api.schemas import MAX_ID
from fleet.core.context import FleetContext
from fleet.dashboard.risk import render_property_evidence
from fleet.models import Borough, Placement, Property, PropertyRisk, RiskProfile
from fleet.models.base import utcnow
from fleet.registry import places
from fleet.risk.service import analytics, queries
from fleet.risk.service.settings import get_risk_settings
from fleet.risk.vtt import Sensitivity

router = APIRouter(prefix="/api/v1", tags=["risk"])


class ProfileIn(BaseModel):
    """Survey facts for surface estimates; ``placement_id`` narrows them to one placement."""

    placement_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    f_rsi: float | None = Field(default=None, gt=0, le=1, examples=[0.6])
    outdoor_temperature: float | None = Field(default=None, ge=-30, le=40)
    sensitivity: Sensitivity | None = None


def _borough(session: Session, code: str, principal: Principal) -> Borough:
    # places.NotFound becomes a 404 through the app's exception handler.
    return places.borough_by_code(session, code=code, principal=principal)


def _property(session: Session, property_id: int, principal: Principal) -> Property:
    return places.get_property(session, property_id=property_id, principal=principal)


def _risk_dict(risk: PropertyRisk | None) -> dict[str, Any] | None:
    if risk is None:
        return None
    return {
        "level": risk.level,
        "score": risk.score,
        "mould_index": risk.mould_index,
        "trend": risk.trend,
        "level_since": risk.level_since,
        "data_until": risk.data_until,
        "evidence": risk.evidence or [],
    }


@router.get("/boroughs/{code}/risk")
def borough_risk(
    code: str,
    limit: int = Query(500, ge=1, le=10000),
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.DEVICES_READ)),
) -> list[dict[str, Any]]:
    """The borough's properties, highest risk first, with open cases and overdue steps."""
    borough = _borough(session, code, principal)
    return [r.to_dict() for r in queries.borough_rows(session, borough, now=utcnow(), limit=limit)]


@router.get("/boroughs/{code}/risk/analytics")
def borough_analytics(
    code: str,
    weeks: int = Query(12, ge=1, le=104),
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.DEVICES_READ)),
) -> dict[str, Any]:
    """Level counts by housing type, construction age band and estate, and weekly trend."""
    borough = _borough(session, code, principal)
    return {
        "borough": borough.code,
        "distributions": [d.to_dict() for d in analytics.distributions(session, borough)],
        "trend": [
            p.to_dict() for p in analytics.trend(session, borough, until=utcnow(), periods=weeks)
        ],
    }


@router.get("/boroughs/{code}/risk/export.csv", response_class=StreamingResponse)
def borough_export(
    code: str,
    session: Session = Depends(get_session),
    ctx: FleetContext = Depends(get_context),
    principal: Principal = Depends(require(Scope.DEVICES_READ)),
) -> StreamingResponse:
    """Every property of the borough with its risk, streamed as CSV (no addresses)."""
    borough = _borough(session, code, principal)
    return StreamingResponse(
        analytics.stream_csv(ctx.sessions, borough.id),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="risk-{borough.code}.csv"'},
    )


@router.get("/properties/{property_id}/risk")
def property_risk(
    property_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.DEVICES_READ)),
) -> dict[str, Any]:
    """Level with evidence (rule, since when, trend) and each placement's state."""
    prop = _property(session, property_id, principal)
    return {
        "property_id": prop.id,
        "reference": prop.reference,
        "risk": _risk_dict(session.get(PropertyRisk, prop.id)),
        "placements": [
            {
                "placement_id": v.placement.id,
                "room": v.placement.room,
                "level": None if v.risk is None else v.risk.level,
                "score": None if v.risk is None else v.risk.score,
                "mould_index": None if v.risk is None else v.risk.mould_index,
                "last_hour": None if v.risk is None else v.risk.last_hour,
                "evidence": [] if v.risk is None else v.risk.evidence or [],
            }
            for v in queries.placements(session, prop)
        ],
    }


@router.get("/properties/{property_id}/risk/hours")
def property_hours(
    property_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    since: datetime | None = None,
    until: datetime | None = None,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.DEVICES_READ)),
) -> list[dict[str, Any]]:
    """Hourly means and derived values (dew point, absolute humidity, surface RH, index)."""
    prop = _property(session, property_id, principal)
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise HTTPException(422, f"{name} needs a timezone, e.g. 2025-11-03T00:00:00Z")
    return [
        {
            "room": room,
            "placement_id": h.placement_id,
            "hour": h.hour,
            "temperature": h.temperature,
            "humidity": h.humidity,
            "dew_point": h.dew_point,
            "absolute_humidity": h.absolute_humidity,
            "surface_temperature": h.surface_temperature,
            "surface_rh": h.surface_rh,
            "surface_estimated": h.surface_estimated,
            "co2": h.co2,
            "mould_index": h.mould_index,
        }
        for room, h in queries.hours(session, prop, since=since, until=until)
    ]


@router.put("/properties/{property_id}/risk/profile")
def put_profile(
    property_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    body: ProfileIn,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.REGISTRY_WRITE)),
) -> dict[str, Any]:
    """Set survey facts; the property's placements are recomputed with them."""
    prop = _property(session, property_id, principal)
    if body.placement_id is not None:
        placement = session.get(Placement, body.placement_id)
        if placement is None or placement.property_id != prop.id:
            raise HTTPException(404, f"no placement {body.placement_id} in property {prop.id}")
    stmt = select(RiskProfile).where(RiskProfile.property_id == prop.id)
    stmt = stmt.where(
        RiskProfile.placement_id.is_(None)
        if body.placement_id is None
        else RiskProfile.placement_id == body.placement_id
    )
    profile = session.scalars(stmt).first()
    if profile is None:
        profile = RiskProfile(property_id=prop.id, placement_id=body.placement_id)
        session.add(profile)
    profile.f_rsi = body.f_rsi
    profile.outdoor_temperature = body.outdoor_temperature
    profile.sensitivity = None if body.sensitivity is None else body.sensitivity.value
    reach = get_risk_settings().recompute_max_days
    marked = queries.mark_recompute(session, prop, days=reach)
    detail = body.model_dump(mode="json")
    audit.record(
        session,
        principal,
        "risk.profile",
        target_type="property",
        target_id=prop.id,
        borough_id=prop.borough_id,
        detail=detail,
    )
    session.commit()
    # Hours older than the reach keep the profile they were computed with.
    return {
        **detail,
        "property_id": prop.id,
        "placements_to_recompute": marked,
        "recompute_days": reach,
    }


@router.post("/properties/{property_id}/risk/recompute", status_code=202)
def recompute(
    property_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    days: int | None = Query(
        None,
        ge=1,
        le=366,  # the setting's own ceiling; the configured reach is checked below
        description="How many days back; at most FLEET_RISK_RECOMPUTE_MAX_DAYS (the default)",
    ),
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.REGISTRY_WRITE)),
) -> dict[str, Any]:
    """Recompute the property's risk over the last ``days`` on the next risk update."""
    limit = get_risk_settings().recompute_max_days
    if days is None:
        days = limit
    elif days > limit:
        # The engine never reaches further back; accepting more would promise a reach that
        # leaves older hours computed the old way.
        raise HTTPException(
            422,
            f"days={days} is more than a recompute reaches: at most {limit} days "
            "(FLEET_RISK_RECOMPUTE_MAX_DAYS)",
        )
    prop = _property(session, property_id, principal)
    marked = queries.mark_recompute(session, prop, days=days)
    audit.record(
        session,
        principal,
        "risk.recompute",
        target_type="property",
        target_id=prop.id,
        borough_id=prop.borough_id,
        detail={"days": days},
    )
    session.commit()
    return {"property_id": prop.id, "placements": marked, "days": days}


@router.get("/properties/{property_id}/risk/evidence", response_class=HTMLResponse)
def property_evidence(
    property_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.DEVICES_READ)),
) -> HTMLResponse:
    """Printable evidence document: level history, cases, charts and daily readings."""
    prop = _property(session, property_id, principal)
    return HTMLResponse(render_property_evidence(session, prop, now=utcnow()))

"""Feed export and stewardship: CSV export, dataset policy, consent, locations, key rotation."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet.access.principal import Principal
from fleet.access.roles import Role, Scope
from fleet.api.deps import get_context, get_session, require
from fleet.api.routes.feed_access import audience_of, feed_reader
from fleet.api.schemas import MAX_ID
from fleet.core.context import FleetContext
from fleet.feed import export, snapshot, stewardship
from fleet.feed.policy import Policy, policies
from fleet.models import Borough
from fleet.registry import places

router = APIRouter(tags=["feed"])
CSV = "text/csv; charset=utf-8"


class PolicyIn(BaseModel):
    public_feed: bool | None = None
    location_precision: Literal["postcode_district", "grid_1km", "borough"] | None = None
    retention_days: int | None = Field(None, ge=1, le=36500)
    metric_retention_days: dict[str, int] | None = None
    withdrawal_action: Literal["delete", "keep_internal"] | None = None
    decided_by: str | None = Field(None, max_length=200)
    contact: str | None = Field(None, max_length=200)


class PolicyOut(BaseModel):
    borough: str
    public_feed: bool
    location_precision: str
    retention_days: int
    metric_retention_days: dict[str, int]
    withdrawal_action: str
    decided_by: str | None
    contact: str | None


class ConsentIn(BaseModel):
    state: Literal["granted", "withdrawn"]
    note: str | None = Field(None, max_length=400)


class ConsentOut(BaseModel):
    property_id: int
    state: str
    deleted_readings: int


class LocationIn(BaseModel):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


def _borough(session: Session, code: str, principal: Principal) -> Borough:
    # places.NotFound becomes a 404 through the app's exception handler.
    return places.borough_by_code(session, code=code, principal=principal)


def _policy_out(borough: Borough, policy: Policy) -> PolicyOut:
    return PolicyOut(
        borough=borough.code,
        public_feed=policy.public_feed,
        location_precision=policy.location_precision,
        retention_days=policy.retention_days,
        metric_retention_days=policy.metric_retention_days,
        withdrawal_action=policy.withdrawal_action,
        decided_by=policy.decided_by,
        contact=policy.contact,
    )


@router.get("/api/v1/feed/policies/{borough_code}", response_model=PolicyOut)
def get_policy(
    borough_code: str,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.DEVICES_READ)),
) -> PolicyOut:
    borough = _borough(session, borough_code, principal)
    policy = policies(session).get(borough.id) or Policy(borough_id=borough.id)
    return _policy_out(borough, policy)


@router.put("/api/v1/feed/policies/{borough_code}", response_model=PolicyOut)
def put_policy(
    borough_code: str,
    body: PolicyIn,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.REGISTRY_WRITE)),
) -> PolicyOut:
    """Change a borough's dataset policy (publication, location precision, retention)."""
    borough = _borough(session, borough_code, principal)
    try:
        stewardship.set_policy(
            session,
            borough=borough,
            principal=principal,
            changes=body.model_dump(exclude_none=True),
        )
    except stewardship.StewardshipError as exc:
        raise HTTPException(422, str(exc)) from exc
    session.commit()
    return _policy_out(borough, policies(session)[borough.id])


@router.put("/api/v1/feed/consent/{property_id}", response_model=ConsentOut)
def put_consent(
    property_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    body: ConsentIn,
    ctx: FleetContext = Depends(get_context),
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.REGISTRY_WRITE)),
) -> ConsentOut:
    """Record a tenant's publication consent; withdrawal stops publication at once."""
    result = stewardship.set_consent(
        session, property_id=property_id, state=body.state, principal=principal, note=body.note
    )
    session.commit()
    return ConsentOut(**result.__dict__)


@router.put("/api/v1/feed/properties/{property_id}/location", status_code=204)
def put_location(
    property_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    body: LocationIn,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.REGISTRY_WRITE)),
) -> None:
    """Store a property's exact coordinates; the feed only ever publishes them coarsened."""
    stewardship.set_location(
        session, property_id=property_id, lat=body.lat, lon=body.lon, principal=principal
    )
    session.commit()


def _admin(principal: Principal) -> None:
    if principal.role is not Role.ADMIN:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only administrators can do this")


@router.post("/api/v1/feed/keys/rotate")
def rotate_key(
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.USERS_ADMIN)),
) -> dict[str, int]:
    """Start a new pseudonym key version: published property pseudonyms all change."""
    _admin(principal)
    version = stewardship.rotate_pseudonym_key(session, principal=principal)
    session.commit()
    return {"version": version}


@router.post("/api/v1/feed/purge")
def purge(
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.USERS_ADMIN)),
) -> dict[str, Any]:
    """Run the retention purge now (it also runs on its own every few hours)."""
    _admin(principal)
    report = stewardship.purge_expired(session, principal=principal)
    session.commit()
    return {"deleted": report}


def _day(value: date) -> datetime:
    return datetime.combine(value, time.min, tzinfo=UTC)


@router.get("/feed/v1/export.csv", response_class=StreamingResponse)
@router.head("/feed/v1/export.csv", include_in_schema=False)
def export_csv(
    request: Request,
    borough: str = Query(..., max_length=32, description="Borough code, e.g. hackney"),
    start: date = Query(..., description="First day (UTC), inclusive"),
    end: date = Query(..., description="Last day (UTC), exclusive"),
    ctx: FleetContext = Depends(get_context),
    session: Session = Depends(get_session),
    reader: Principal | None = Depends(feed_reader),
) -> StreamingResponse:
    """Every published reading of a borough in a date range as CSV, streamed."""
    if end <= start:
        raise HTTPException(422, "end must be after start (end is exclusive)")
    if session.scalars(select(Borough.id).where(Borough.code == borough)).first() is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no borough {borough!r}")
    filename = f"{borough}-{start.isoformat()}-{end.isoformat()}.csv"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if request.method == "HEAD":  # the headers a GET sends (no length), without the data
        return StreamingResponse(iter(()), media_type=CSV, headers=headers)
    snapshot.sync_committed(ctx.sessions)
    body = export.export_csv(
        ctx.sessions,
        audience=audience_of(reader),
        borough_code=borough,
        start=_day(start),
        end=_day(end),
    )
    return StreamingResponse(body, media_type=CSV, headers=headers)

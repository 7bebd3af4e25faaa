"""Alerts inbox and lifecycle."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from sqlalchemy.orm import Session

from fleet.access.principal import Principal
from fleet.access.roles import Scope
from fleet.api.deps import get_session, require
from fleet.api.schemas import MAX_ID, AlertOut
from fleet.health import alerts as lifecycle
from fleet.models.base import utcnow

router = APIRouter(prefix="/api/v1", tags=["alerts"])


def _out(alert, device_id: str) -> AlertOut:
    out = AlertOut.model_validate(alert)
    out.device_id = device_id
    return out


@router.get("/alerts", response_model=list[AlertOut])
def list_alerts(
    request: Request,
    response: Response,
    state: list[str] = Query(["open", "acknowledged"]),
    limit: int = Query(200, ge=1, le=1000),
    after: str | None = Query(
        None,
        max_length=64,
        description="Where the previous page ended; follow the Link header's rel=next",
    ),
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.DEVICES_READ)),
) -> list[AlertOut]:
    """Newest first, one page at a time: X-Total-Count says how many match, and a Link
    header with rel="next" is there while more follow."""
    bad = set(state) - {"open", "acknowledged", "resolved"}
    if bad:
        raise HTTPException(422, f"unknown alert state(s): {', '.join(sorted(bad))}")
    try:
        cursor = lifecycle.AlertCursor.parse(after) if after is not None else None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    rows = lifecycle.list_alerts(
        session, principal=principal, states=state, limit=limit + 1, after=cursor
    )
    page = rows[:limit]
    response.headers["X-Total-Count"] = str(
        lifecycle.count_alerts(session, principal=principal, states=state)
    )
    if len(rows) > limit:
        token = lifecycle.AlertCursor.after(page[-1][0]).token()
        response.headers["Link"] = f'<{request.url.include_query_params(after=token)}>; rel="next"'
    return [_out(a, d) for a, d in page]


def _transition(alert_id: int, session: Session, principal: Principal, action: str) -> AlertOut:
    fn = lifecycle.acknowledge if action == "acknowledge" else lifecycle.resolve
    try:
        alert = fn(session, alert_id=alert_id, principal=principal, now=utcnow())
    except lifecycle.AlertNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except lifecycle.AlertStateError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    session.commit()
    return _out(alert, lifecycle.alert_device_id(session, alert))


@router.post("/alerts/{alert_id}/acknowledge", response_model=AlertOut)
def acknowledge(
    alert_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.ALERTS_WRITE)),
) -> AlertOut:
    return _transition(alert_id, session, principal, "acknowledge")


@router.post("/alerts/{alert_id}/resolve", response_model=AlertOut)
def resolve(
    alert_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.ALERTS_WRITE)),
) -> AlertOut:
    return _transition(alert_id, session, principal, "resolve")

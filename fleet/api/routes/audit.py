"""The audit log: entries filtered by action, actor, target and time, as JSON or as CSV."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from fleet.access import audit_search
from fleet.access.principal import Principal
from fleet.access.roles import Scope
from fleet.api.deps import get_context, get_session, require
from fleet.api.schemas import MAX_ID, AuditOut
from fleet.core.context import FleetContext

router = APIRouter(prefix="/api/v1", tags=["audit"])


def audit_filter(
    action: str | None = Query(None, max_length=64, description="e.g. case.step, user.disable"),
    actor: str | None = Query(
        None, max_length=200, description="part of the actor, e.g. an e-mail or `token:7`"
    ),
    target_type: str | None = Query(None, max_length=32, description="e.g. device, case"),
    target_id: str | None = Query(None, max_length=64),
    since: datetime | None = Query(None, description="ISO 8601 with offset, inclusive"),
    until: datetime | None = Query(None, description="ISO 8601 with offset, exclusive"),
) -> audit_search.AuditFilter:
    for label, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_ENTITY, f"{label} needs a UTC offset, e.g. ...Z"
            )
    try:
        return audit_search.AuditFilter(
            action=action,
            actor=actor,
            target_type=target_type,
            target_id=target_id,
            since=since,
            until=until,
        )
    except audit_search.AuditFilterError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(exc)) from exc


@router.get("/audit", response_model=list[AuditOut])
def audit_log(
    wanted: audit_search.AuditFilter = Depends(audit_filter),
    limit: int = Query(200, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_ID),
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.AUDIT_READ)),
) -> list[AuditOut]:
    """Newest first, within your boroughs."""
    rows = audit_search.find(session, principal, wanted, limit=limit, offset=offset)
    return [AuditOut.model_validate(r) for r in rows]


@router.get("/audit/export.csv", response_class=StreamingResponse)
def audit_export(
    wanted: audit_search.AuditFilter = Depends(audit_filter),
    ctx: FleetContext = Depends(get_context),
    principal: Principal = Depends(require(Scope.AUDIT_READ)),
) -> StreamingResponse:
    """Every matching entry within your boroughs, oldest first, streamed as CSV."""
    return StreamingResponse(
        audit_search.stream_csv(ctx.sessions, principal, wanted),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
    )

"""Messages the ingest refused, newest first, for operators."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet.access.principal import Principal
from fleet.access.roles import Scope
from fleet.api.deps import get_session, require
from fleet.api.schemas import RejectOut
from fleet.models import RejectedMessage

router = APIRouter(prefix="/api/v1/rejects", tags=["ingest"])


@router.get("", response_model=list[RejectOut])
def list_rejects(
    device_id: str | None = None,
    reason: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.INGEST_READ)),
) -> list[RejectOut]:
    # Rejects may name devices from any borough (or none), so they are for fleet operators.
    stmt = select(RejectedMessage)
    if device_id:
        stmt = stmt.where(RejectedMessage.device_id == device_id)
    if reason:
        stmt = stmt.where(RejectedMessage.reason == reason)
    rows = session.scalars(stmt.order_by(RejectedMessage.id.desc()).limit(limit)).all()
    return [RejectOut.model_validate(r) for r in rows]

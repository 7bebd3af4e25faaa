"""Messages the ingest refused, for the people who can fix their sender: a device's own on
its page, every one on a page for fleet operators."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet.access.principal import Principal
from fleet.access.roles import Scope
from fleet.api.deps import get_session, page_user
from fleet.dashboard.templating import TEMPLATES
from fleet.ingest.errors import RejectReason
from fleet.models import RejectedMessage

router = APIRouter(include_in_schema=False)
DEVICE_LIMIT = 20
PAGE_LIMIT = 200


def refused_from(session: Session, device_id: str) -> Sequence[RejectedMessage]:
    """The device's latest refused messages. Its topic names it and the broker lets a device
    publish only under its own id, so whoever may see the device may see these."""
    stmt = select(RejectedMessage).where(RejectedMessage.device_id == device_id)
    return session.scalars(stmt.order_by(RejectedMessage.id.desc()).limit(DEVICE_LIMIT)).all()


@router.get("/rejects", response_class=HTMLResponse)
def rejects_page(
    request: Request,
    device_id: str = Query("", max_length=64),
    reason: str = Query("", max_length=64),
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> HTMLResponse:
    # Fleet-wide: rejects may name devices of any borough, or none (an unknown topic).
    user.require(Scope.INGEST_READ)
    device_id, reason = device_id.strip(), reason.strip()
    stmt = select(RejectedMessage)
    if device_id:
        stmt = stmt.where(RejectedMessage.device_id == device_id)
    if reason:
        stmt = stmt.where(RejectedMessage.reason == reason)
    rows = session.scalars(stmt.order_by(RejectedMessage.id.desc()).limit(PAGE_LIMIT)).all()
    return TEMPLATES.TemplateResponse(
        request,
        "rejects.html",
        {
            "user": user,
            "rejects": rows,
            "device_id": device_id,
            "reason": reason,
            "reasons": [r.value for r in RejectReason],
            "limit": PAGE_LIMIT,
        },
    )

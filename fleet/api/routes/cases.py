"""Damp and mould cases with Awaab's Law deadlines.

Reading needs ``devices:read``; opening a case and recording steps are responses to a
hazard, like acting on alerts, so they need ``alerts:write``. Every step is audited.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from fleet.access.principal import Principal
from fleet.access.roles import Scope
from fleet.api.deps import get_session, require
from fleet.api.schemas import MAX_ID
from fleet.cases import service
from fleet.cases.deadlines import CaseStep
from fleet.cases.errors import CaseConflict, CaseNotFound, InvalidStep
from fleet.cases.service import NOTE_CHARS
from fleet.cases.views import case_view
from fleet.core.keyset import Cursor
from fleet.dashboard.risk import render_case_evidence
from fleet.models import Case
from fleet.models.base import utcnow
from fleet.registry import places

router = APIRouter(prefix="/api/v1", tags=["cases"])


class CaseOpen(BaseModel):
    hazard: str = Field(default="significant", pattern=r"^(significant|emergency)$")
    aware_at: datetime | None = Field(default=None, description="Default: now")
    note: str | None = Field(default=None, max_length=NOTE_CHARS)


class StepIn(BaseModel):
    step: CaseStep
    at: datetime | None = Field(default=None, description="When it happened; default: now")
    note: str | None = Field(default=None, max_length=NOTE_CHARS)


class CloseIn(BaseModel):
    note: str | None = Field(default=None, max_length=NOTE_CHARS)


def _case(session: Session, case_id: int, principal: Principal) -> Case:
    try:
        return service.get_case(session, case_id=case_id, principal=principal)
    except CaseNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc


def _refused(exc: Exception) -> HTTPException:
    code = status.HTTP_409_CONFLICT if isinstance(exc, CaseConflict) else 422
    return HTTPException(code, str(exc))


@router.get("/cases")
def list_cases(
    request: Request,
    response: Response,
    borough: str | None = Query(None, max_length=32),
    status_: str | None = Query(None, alias="status", pattern=r"^(open|closed)$"),
    limit: int = Query(200, ge=1, le=1000),
    after: str | None = Query(
        None,
        max_length=64,
        description="Where the previous page ended; follow the Link header's rel=next",
    ),
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.DEVICES_READ)),
) -> list[dict[str, Any]]:
    """Cases in the caller's boroughs, newest first, with deadlines and overdue steps, one
    page at a time: X-Total-Count says how many match, and a Link header with rel="next" is
    there while more follow."""
    borough_id = None
    if borough:
        try:
            borough_id = places.borough_by_code(session, code=borough, principal=principal).id
        except places.NotFound as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    try:
        cursor = Cursor.parse(after, what="case") if after is not None else None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    now = utcnow()
    found = service.list_cases(
        session,
        principal=principal,
        borough_id=borough_id,
        status=status_,
        limit=limit + 1,
        after=cursor,
    )
    page = found[:limit]
    total = service.count_cases(session, principal=principal, borough_id=borough_id, status=status_)
    response.headers["X-Total-Count"] = str(total)
    if len(found) > limit:
        token = service.case_cursor(page[-1]).token()
        response.headers["Link"] = f'<{request.url.include_query_params(after=token)}>; rel="next"'
    return [case_view(session, c, now=now).to_dict() for c in page]


@router.post("/properties/{property_id}/cases", status_code=201)
def open_case(
    property_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    body: CaseOpen,
    response: Response,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.ALERTS_WRITE)),
) -> dict[str, Any]:
    """Open a case (e.g. a tenant report); with a case already open, the report is linked
    to it and the answer is 200 instead of 201. A linked emergency raises the case to
    emergency and an earlier ``aware_at`` moves its awareness back: ``changes`` says what
    the report changed."""
    try:
        prop = places.get_property(session, property_id=property_id, principal=principal)
    except places.NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    now = utcnow()
    try:
        done = service.report(
            session,
            prop=prop,
            principal=principal,
            now=now,
            aware_at=body.aware_at,
            hazard=body.hazard,
            note=body.note,
        )
    except InvalidStep as exc:
        raise _refused(exc) from exc
    session.commit()
    if not done.created:
        response.status_code = status.HTTP_200_OK
    return {**case_view(session, done.case, now=now).to_dict(), "changes": done.changes}


@router.get("/cases/{case_id}")
def get_case(
    case_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.DEVICES_READ)),
) -> dict[str, Any]:
    """The case with deadlines, timeline and the before/after comparison once works exist."""
    case = _case(session, case_id, principal)
    return case_view(session, case, now=utcnow()).to_dict()


@router.post("/cases/{case_id}/steps")
def record_step(
    case_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    body: StepIn,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.ALERTS_WRITE)),
) -> dict[str, Any]:
    """Record a step (investigation, written summary, safety work, further works, works
    completed, a corrected awareness date, or a note)."""
    case = _case(session, case_id, principal)
    now = utcnow()
    try:
        service.record_step(
            session,
            case=case,
            step=body.step,
            at=body.at,
            principal=principal,
            now=now,
            note=body.note,
        )
    except (CaseConflict, InvalidStep) as exc:
        raise _refused(exc) from exc
    session.commit()
    return case_view(session, case, now=now).to_dict()


@router.post("/cases/{case_id}/close")
def close_case(
    case_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    body: CloseIn | None = None,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.ALERTS_WRITE)),
) -> dict[str, Any]:
    case = _case(session, case_id, principal)
    now = utcnow()
    try:
        service.close_case(
            session, case=case, principal=principal, now=now, note=body.note if body else None
        )
    except (CaseConflict, InvalidStep) as exc:
        raise _refused(exc) from exc
    session.commit()
    return case_view(session, case, now=now).to_dict()


@router.get("/cases/{case_id}/evidence", response_class=HTMLResponse)
def case_evidence(
    case_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.DEVICES_READ)),
) -> HTMLResponse:
    """Printable evidence: timeline, deadlines, readings, and risk before and after works."""
    case = _case(session, case_id, principal)
    return HTMLResponse(render_case_evidence(session, case, now=utcnow()))

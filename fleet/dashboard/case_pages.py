"""Case pages: the borough's cases a page at a time, a case with its deadlines and the forms
to record steps and close it, and its printable evidence (all borough-scoped)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from fleet.access.principal import Principal
from fleet.access.roles import Scope
from fleet.api.deps import check_csrf, get_session, page_user
from fleet.cases import service as cases
from fleet.cases.deadlines import STEP_LABELS, CaseStep
from fleet.cases.errors import CaseConflict, CaseNotFound, InvalidStep
from fleet.cases.service import NOTE_CHARS
from fleet.cases.views import case_view
from fleet.core.keyset import Cursor
from fleet.dashboard import case_paging
from fleet.dashboard.refill import NO_REFUSAL, Refused
from fleet.dashboard.risk import CASE_FORM_LIMITS, STEP_CHOICES, render_case_evidence
from fleet.dashboard.templating import TEMPLATES, back_with_notice
from fleet.dashboard.uk_time import UkTimeError, uk_time
from fleet.models import Case, PropertyRisk
from fleet.models.base import utcnow

router = APIRouter(include_in_schema=False)
CASES_PAGE_SIZE = 50
# (words in a refused step's message, the step form's field it is about), first match wins.
STEP_FIELDS: tuple[tuple[str, str | None], ...] = (
    ("is closed", None),
    ("a note needs text", "note"),
    ("record the investigation before", "step"),
    ("already recorded", "step"),
)


def _case(session: Session, case_id: int, user: Principal) -> Case:
    try:
        return cases.get_case(session, case_id=case_id, principal=user)
    except CaseNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc


def _cursor(token: str | None) -> Cursor | None:
    if not token:
        return None
    try:
        return Cursor.parse(token, what="case list")
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc


@router.get("/cases", response_class=HTMLResponse)
def case_list(
    request: Request,
    show: str = Query("open", pattern=r"^(open|overdue|closed|all)$"),
    after: str | None = Query(None, max_length=64),
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> HTMLResponse:
    """Newest first, a page at a time: every case is reached by following Next, and the
    overdue tab gathers the open cases with a deadline passed, wherever they are."""
    now = utcnow()
    listing = case_paging.page_of(
        session, principal=user, show=show, after=_cursor(after), now=now, size=CASES_PAGE_SIZE
    )
    return TEMPLATES.TemplateResponse(
        request,
        "case_list.html",
        {
            "user": user,
            "views": [case_view(session, c, now=now) for c in listing.cases],
            "show": show,
            "listing": listing,
        },
    )


def render_case(
    request: Request,
    session: Session,
    user: Principal,
    case: Case,
    *,
    refused: Refused = NO_REFUSAL,
) -> HTMLResponse:
    """The case page; a refused step comes back filled in."""
    return TEMPLATES.TemplateResponse(
        request,
        "case_detail.html",
        {
            **CASE_FORM_LIMITS,
            "user": user,
            "view": case_view(session, case, now=utcnow()),
            "risk": session.get(PropertyRisk, case.property_id),
            "steps": STEP_CHOICES,
            "can_act": Scope.ALERTS_WRITE in user.scopes and case.status == "open",
            "notice": request.query_params.get("notice"),
            "refused": refused,
        },
        status_code=refused.status_code if refused.form else status.HTTP_200_OK,
    )


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(
    request: Request,
    case_id: int,
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> HTMLResponse:
    return render_case(request, session, user, _case(session, case_id, user))


def step_field(message: str) -> str | None:
    for words, name in STEP_FIELDS:
        if words in message:
            return name
    return "at"  # the other refusals are about when the step happened


@router.post("/cases/{case_id}/steps")
def case_step(
    request: Request,
    case_id: int,
    step: str = Form(""),
    at: str = Form(""),
    clock: str = Form("", max_length=8),
    note: str = Form("", max_length=NOTE_CHARS),
    csrf: str = Form(""),
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> Response:
    check_csrf(user, csrf)
    user.require(Scope.ALERTS_WRITE)
    case = _case(session, case_id, user)
    typed = {"step": step, "at": at, "clock": clock, "note": note}
    if not step:
        said = Refused("step-form", "nothing recorded: choose a step", "step", typed)
        return render_case(request, session, user, case, refused=said)
    try:
        chosen = CaseStep(step)
    except ValueError as exc:
        raise HTTPException(422, f"unknown step {step!r}") from exc
    try:
        cases.record_step(
            session,
            case=case,
            step=chosen,
            at=uk_time(at, field="at", clock=clock),
            principal=user,
            now=utcnow(),
            note=note or None,
        )
    except UkTimeError as exc:
        said = Refused("step-form", str(exc), exc.field, typed)
        return render_case(request, session, user, case, refused=said)
    except (CaseConflict, InvalidStep) as exc:
        code = 409 if isinstance(exc, CaseConflict) else 422
        said = Refused("step-form", str(exc), step_field(str(exc)), typed, code)
        return render_case(request, session, user, case, refused=said)
    session.commit()
    return back_with_notice(f"/cases/{case_id}", f"{STEP_LABELS[chosen]} recorded")


@router.post("/cases/{case_id}/close")
def case_close(
    case_id: int,
    note: str = Form("", max_length=NOTE_CHARS),
    csrf: str = Form(""),
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> Response:
    check_csrf(user, csrf)
    user.require(Scope.ALERTS_WRITE)
    case = _case(session, case_id, user)
    try:
        cases.close_case(session, case=case, principal=user, now=utcnow(), note=note or None)
    except (CaseConflict, InvalidStep) as exc:
        return back_with_notice(f"/cases/{case_id}", str(exc))
    session.commit()
    return back_with_notice(f"/cases/{case_id}", "case closed")


@router.get("/cases/{case_id}/evidence", response_class=HTMLResponse)
def case_evidence(
    case_id: int,
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> HTMLResponse:
    case = _case(session, case_id, user)
    return HTMLResponse(render_case_evidence(session, case, now=utcnow()))

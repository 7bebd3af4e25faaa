"""Your API tokens: make one (for the provisioning CLI, scripts, a data platform), see which
you have and when each was last used, revoke one at once."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from fleet.access import accounts
from fleet.access.principal import Principal
from fleet.access.roles import ROLE_SCOPES, Scope
from fleet.api.deps import check_csrf, get_session, page_user
from fleet.api.schemas import MAX_ID
from fleet.dashboard.templating import TEMPLATES, back_with_notice
from fleet.models import User
from fleet.models.base import utcnow

router = APIRouter(include_in_schema=False)
EXPIRY_DAYS = (30, 90, 365)


def _page(
    request: Request, session: Session, user: Principal, *, new_token: str = "", notice: str = ""
) -> HTMLResponse:
    tokens = accounts.list_tokens(session, user.user_id) if user.user_id is not None else []
    return TEMPLATES.TemplateResponse(
        request,
        "tokens.html",
        {
            "user": user,
            "tokens": tokens,
            "scopes": sorted(s.value for s in ROLE_SCOPES[user.role]),
            "expiry_days": EXPIRY_DAYS,
            "new_token": new_token,
            "notice": notice or request.query_params.get("notice"),
            "now": utcnow(),
        },
    )


@router.get("/tokens", response_class=HTMLResponse)
def tokens_page(
    request: Request,
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> HTMLResponse:
    return _page(request, session, user)


@router.post("/tokens", response_class=HTMLResponse)
def make_token(
    request: Request,
    name: str = Form(""),
    scopes: list[str] = Form(default=[]),
    expires_days: int = Form(90),
    csrf: str = Form(""),
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> Response:
    """The token is shown once, in this response; never in a URL or a log."""
    check_csrf(user, csrf)
    account = session.get(User, user.user_id) if user.user_id is not None else None
    if account is None:
        return back_with_notice("/tokens", "not made: tokens belong to a signed-in user")
    name = name.strip()
    if not name or len(name) > 100:
        return back_with_notice("/tokens", "not made: give the token a name of 1-100 characters")
    if expires_days not in EXPIRY_DAYS:
        return back_with_notice("/tokens", f"not made: expiry must be one of {EXPIRY_DAYS} days")
    try:
        wanted = frozenset(Scope(s) for s in scopes)
        if not wanted:
            raise accounts.AccountError("choose at least one scope")
        token, row = accounts.issue_api_token(
            session,
            account,
            name=name,
            scopes=wanted,
            expires_at=utcnow() + timedelta(days=expires_days),
            principal=user,
        )
    except (ValueError, accounts.AccountError) as exc:
        return back_with_notice("/tokens", f"not made: {exc}")
    session.commit()
    return _page(request, session, user, new_token=token, notice=f"token {row.name} made")


@router.post("/tokens/{token_id}/revoke")
def revoke(
    token_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    csrf: str = Form(""),
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> Response:
    check_csrf(user, csrf)
    try:
        row = accounts.revoke_token(session, user, token_id)
    except accounts.AccountError as exc:
        return back_with_notice("/tokens", f"not revoked: {exc}")
    session.commit()
    return back_with_notice("/tokens", f"token {row.name} revoked")

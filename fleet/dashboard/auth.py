"""Sign in and out with secure session cookies."""

from __future__ import annotations

import math
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from fleet.access import accounts, audit
from fleet.access.principal import Principal
from fleet.access.roles import Role
from fleet.access.throttle import SignInThrottle
from fleet.api.deps import SESSION_COOKIE, check_csrf, get_context, get_session
from fleet.core.context import FleetContext
from fleet.dashboard.templating import TEMPLATES
from fleet.models.base import utcnow

router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str:
    # Only local paths: an attacker-supplied absolute URL must not become an open redirect.
    if not target or urlsplit(target).netloc or not target.startswith("/"):
        return "/"
    return target


def _refused(request: Request, next: str, email: str, error: str, code: int) -> HTMLResponse:
    # The e-mail typed stays filled in; the password is typed again.
    return TEMPLATES.TemplateResponse(
        request,
        "login.html",
        {"next": _safe_next(next), "email": email, "error": error, "user": None},
        status_code=code,
    )


def _minutes(seconds: float) -> str:
    return f"{math.ceil(seconds)} seconds" if seconds < 90 else f"{math.ceil(seconds / 60)} minutes"


def _audit_failure(session: Session, email: str, address: str) -> None:
    """Failed sign-ins are evidence of guessing. Only a known account is named (by id): a
    mistyped e-mail field may hold a password."""
    user_id = accounts.user_id_for(session, email)
    audit.record(
        session,
        Principal(
            actor=f"sign-in from {address}",
            role=Role.READONLY,
            scopes=frozenset(),
            borough_ids=frozenset(),
        ),
        "user.login_failed",
        target_type="user" if user_id is not None else None,
        target_id=user_id,
    )
    session.commit()


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    return TEMPLATES.TemplateResponse(
        request, "login.html", {"next": _safe_next(next), "error": None, "user": None}
    )


@router.post("/login")
def login(
    request: Request,
    email: str = Form(...),
    password: str = Form(...),
    next: str = Form("/"),
    session: Session = Depends(get_session),
    ctx: FleetContext = Depends(get_context),
) -> Response:
    throttle: SignInThrottle = request.app.state.sign_in_throttle
    address = request.client.host if request.client else "unknown"
    wait = throttle.wait_s(email, address)
    if wait > 0:
        return _refused(
            request,
            next,
            email,
            f"Too many failed sign-ins: try again in {_minutes(wait)}.",
            status.HTTP_429_TOO_MANY_REQUESTS,
        )
    user = accounts.authenticate(session, email=email, password=password)
    if user is None:
        throttle.failed(email, address)
        _audit_failure(session, email, address)
        return _refused(
            request, next, email, "Email or password is wrong.", status.HTTP_401_UNAUTHORIZED
        )
    throttle.succeeded(email)
    token, _ = accounts.start_login_session(session, user)
    audit.record(
        session, accounts.principal_for(user), "user.login", target_type="user", target_id=user.id
    )
    session.commit()
    response = RedirectResponse(_safe_next(next), status_code=status.HTTP_303_SEE_OTHER)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(accounts.SESSION_LIFETIME.total_seconds()),
        httponly=True,
        secure=ctx.settings.secure_cookies,
        samesite="lax",
        path="/",
    )
    return response


@router.post("/logout")
def logout(
    request: Request, csrf: str = Form(""), session: Session = Depends(get_session)
) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        principal = accounts.principal_from_session(session, token, now=utcnow())
        if principal is not None:
            # A cross-site form must not be able to sign people out.
            check_csrf(principal, csrf)
        accounts.end_login_session(session, token)
        session.commit()
    response = RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response

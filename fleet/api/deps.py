"""Request dependencies: context, database session, and who is asking (with scope checks)."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request, status
from sqlalchemy.orm import Session

from fleet.access import accounts
from fleet.access.principal import Principal
from fleet.access.roles import Role, Scope
from fleet.core.context import FleetContext
from fleet.models.base import utcnow

SESSION_COOKIE = "fleet_session"
ADMIN_TOKEN_PRINCIPAL = Principal(
    actor="admin-token", role=Role.ADMIN, scopes=frozenset(Scope), borough_ids=None
)


class LoginRequired(Exception):
    """Raised by page dependencies; the app turns it into a redirect to the login page."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


def wake_rollouts(request: Request) -> None:
    """Act on a rollout change now rather than at the rollout engine's next tick."""
    engine = getattr(request.app.state, "ota_engine", None)
    if engine is not None:
        engine.wake()


def get_context(request: Request) -> FleetContext:
    ctx: FleetContext = request.app.state.fleet
    return ctx


def get_session(ctx: FleetContext = Depends(get_context)) -> Iterator[Session]:
    with ctx.sessions() as session:
        yield session


def current_principal(
    request: Request, ctx: FleetContext, session: Session, *, bearer: bool = True
) -> Principal | None:
    """Who is asking: a bearer token (when `bearer`), else the session cookie."""
    auth = request.headers.get("authorization", "") if bearer else ""
    now = utcnow()
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "use 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if hmac.compare_digest(token.encode(), ctx.admin_token.encode()):
            return ADMIN_TOKEN_PRINCIPAL
        principal = accounts.principal_from_api_token(session, token, now=now)
        if principal is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "the token is unknown, expired or revoked",
                headers={"WWW-Authenticate": "Bearer"},
            )
        session.commit()  # last_used_at
        return principal
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return accounts.principal_from_session(session, cookie, now=now)
    return None


def require(scope: Scope) -> Callable[..., Principal]:
    """An API dependency: 401 without credentials, 403 without the scope."""

    def dependency(
        request: Request,
        ctx: FleetContext = Depends(get_context),
        session: Session = Depends(get_session),
    ) -> Principal:
        principal = current_principal(request, ctx, session)
        if principal is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "sign in, or send 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if scope not in principal.scopes:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this needs the {scope.value!r} scope")
        if principal.csrf_token is not None and request.method not in SAFE_METHODS:
            _same_origin(request)
        return principal

    dependency.__name__ = f"require_{scope.name.lower()}"
    return dependency


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _same_origin(request: Request) -> None:
    """A change asked with the session cookie must come from the fleet's own pages: the
    cookie is SameSite=Lax, which a sibling site of the same domain still gets. Browsers
    name the page's origin on every such request; other clients use bearer tokens."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if origin is None:
        return
    # The host only: behind a TLS-terminating proxy the scheme seen here is http.
    if urlsplit(origin).netloc != request.url.netloc:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "a change with the session cookie must come from the fleet's own pages; "
            "other programs use 'Authorization: Bearer <token>'",
        )


def page_user(
    request: Request,
    ctx: FleetContext = Depends(get_context),
    session: Session = Depends(get_session),
) -> Principal:
    """A page dependency: redirects to the login page when nobody is signed in.

    Pages are for people signed in with a session; a bearer token is not taken here, so a
    token limited to the feed cannot read the pages its owner could.
    """
    principal = current_principal(request, ctx, session, bearer=False)
    if principal is None:
        raise LoginRequired(str(request.url.path))
    return principal


def check_csrf(principal: Principal, submitted: str | None) -> None:
    """Forms carry the session's CSRF token; bearer-token clients have none and need none."""
    if principal.csrf_token is None:
        return
    if not submitted or not hmac.compare_digest(submitted, principal.csrf_token):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "the form expired or came from elsewhere; reload the page"
        )

"""Who reads the feed: an optional principal (no token = public level), its rate limit, and
the cross-origin rules that let a browser app on another site read the open data."""

from __future__ import annotations

from fastapi import Depends, HTTPException, Request, status
from sqlalchemy.orm import Session
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from fleet.access.principal import Principal
from fleet.api.deps import current_principal, get_context, get_session
from fleet.core.context import FleetContext
from fleet.feed.ratelimit import RateLimiter, retry_after
from fleet.feed.snapshot import Audience


def limiter(request: Request) -> RateLimiter:
    found = getattr(request.app.state, "feed_limiter", None)
    if found is None:
        found = RateLimiter()
        request.app.state.feed_limiter = found
    return found


def feed_reader(
    request: Request,
    ctx: FleetContext = Depends(get_context),
    session: Session = Depends(get_session),
) -> Principal | None:
    """The caller, or None for anonymous public access; 429 when over the rate limit.

    A token that is present but wrong is refused (401) rather than served the public level,
    so a misconfigured client notices.
    """
    principal = current_principal(request, ctx, session)
    if principal is not None:
        key = f"principal:{principal.actor}"
    else:
        key = f"ip:{request.client.host if request.client else 'unknown'}"
    wait = limiter(request).take(key, authenticated=principal is not None)
    if wait > 0:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "too many feed requests; slow down and retry after the given seconds",
            headers={"Retry-After": retry_after(wait)},
        )
    return principal


def audience_of(principal: Principal | None) -> Audience:
    return Audience.for_principal(principal)


# The read-only open data: SensorThings, the published standard and the CSV export.
PUBLIC_PATHS = ("/sta/", "/standards", "/feed/v1/")


class PublicFeedCors:
    """CORS for the public feed only: any origin may read it, without cookies.

    A bearer token in `Authorization` still works cross-origin; cookies are never sent
    (`allow_credentials` stays off), so the dashboard and the write API keep same-origin rules.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=["*"],
            allow_methods=["GET", "HEAD", "OPTIONS"],
            allow_headers=["Authorization"],
            expose_headers=["Retry-After"],
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope["path"]).startswith(PUBLIC_PATHS):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)

"""Request dependencies: the context, a database session and the admin bearer token."""

from __future__ import annotations

import hmac
from collections.abc import Iterator

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from fleet.core.context import FleetContext

_bearer = HTTPBearer(auto_error=False)


def get_context(request: Request) -> FleetContext:
    ctx: FleetContext = request.app.state.fleet
    return ctx


def get_session(ctx: FleetContext = Depends(get_context)) -> Iterator[Session]:
    with ctx.sessions() as session:
        yield session


def require_admin(
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    ctx: FleetContext = Depends(get_context),
) -> None:
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "this endpoint needs 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not hmac.compare_digest(credentials.credentials.encode(), ctx.admin_token.encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the token is not valid")

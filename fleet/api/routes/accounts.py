"""Users and API tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from fleet.access import accounts
from fleet.access.principal import Principal
from fleet.access.roles import Role, Scope, parse_scopes
from fleet.access.secrets import WeakPassword
from fleet.api.deps import get_session, require
from fleet.api.schemas import MAX_ID
from fleet.models import User

router = APIRouter(prefix="/api/v1", tags=["access"])


class UserCreate(BaseModel):
    email: str = Field(max_length=200)
    name: str = Field(min_length=1, max_length=200)
    role: Role
    password: str | None = Field(default=None, min_length=12, max_length=200)
    boroughs: list[str] = Field(default_factory=list)


class UserOut(BaseModel):
    id: int
    email: str
    name: str
    role: str
    boroughs: list[str]


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] = Field(min_length=1)
    expires_at: datetime | None = None


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str
    scopes: list[str]
    token: str = Field(description="Shown once; only a hash is stored")


class TokenInfo(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str = Field(description="The token's first characters, to tell tokens apart")
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


@router.post("/users", response_model=UserOut, status_code=201)
def create_user(
    body: UserCreate,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.USERS_ADMIN)),
) -> UserOut:
    try:
        user = accounts.create_user(
            session,
            email=body.email,
            name=body.name,
            role=body.role,
            password=body.password,
            borough_codes=body.boroughs,
            principal=principal,
        )
    except (accounts.AccountError, WeakPassword) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(exc)) from exc
    session.commit()
    return UserOut(
        id=user.id,
        email=user.email,
        name=user.name,
        role=user.role,
        boroughs=[b.code for b in user.boroughs],
    )


@router.post("/tokens", response_model=TokenOut, status_code=201)
def create_token(
    body: TokenCreate,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.DEVICES_READ)),
) -> TokenOut:
    """A token for yourself, with at most your own scopes."""
    if principal.user_id is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY, "tokens belong to a user; sign in as one"
        )
    user = session.get(User, principal.user_id)
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "your account no longer exists")
    try:
        token, row = accounts.issue_api_token(
            session,
            user,
            name=body.name,
            scopes=parse_scopes(body.scopes),
            expires_at=body.expires_at,
            principal=principal,
        )
    except (accounts.AccountError, ValueError) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(exc)) from exc
    session.commit()
    return TokenOut(id=row.id, name=row.name, prefix=row.prefix, scopes=row.scopes, token=token)


@router.get("/tokens", response_model=list[TokenInfo])
def list_tokens(
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.DEVICES_READ)),
) -> list[TokenInfo]:
    """Your own API tokens, newest first (never the secrets)."""
    if principal.user_id is None:
        return []
    return [TokenInfo.model_validate(t) for t in accounts.list_tokens(session, principal.user_id)]


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(
    token_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.DEVICES_READ)),
) -> None:
    """Revoke one of your tokens at once (admins: anyone's), e.g. one that may have leaked."""
    try:
        accounts.revoke_token(session, principal, token_id)
    except accounts.AccountError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    session.commit()

"""Users, login sessions and API tokens."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from fleet.access import audit
from fleet.access.principal import Principal
from fleet.access.roles import ROLE_SCOPES, Role, Scope
from fleet.access.secrets import hash_password, new_token, token_hash, verify_password
from fleet.models import ApiToken, Borough, LoginSession, User
from fleet.models.base import utcnow

SESSION_LIFETIME = timedelta(hours=12)


class AccountError(ValueError):
    pass


def create_user(
    session: Session,
    *,
    email: str,
    name: str,
    role: Role,
    password: str | None = None,
    borough_codes: Iterable[str] = (),
    principal: Principal | None = None,
) -> User:
    """A new account; audited when a principal made it."""
    email = email.strip().lower()
    if "@" not in email:
        raise AccountError(f"{email!r} is not an email address")
    if _by_email(session, email) is not None:
        raise AccountError(f"a user with email {email} already exists")
    user = User(
        email=email,
        name=name,
        role=role.value,
        password_hash=hash_password(password) if password else None,
    )
    user.boroughs = _boroughs(session, role, borough_codes)
    session.add(user)
    session.flush()
    if principal is not None:
        audit.record(
            session,
            principal,
            "user.create",
            target_type="user",
            target_id=user.id,
            detail={"role": user.role, "boroughs": sorted(b.code for b in user.boroughs)},
        )
    return user


def _by_email(session: Session, email: str) -> User | None:
    """Emails are kept trimmed and lower-case."""
    return session.scalars(select(User).where(User.email == email.strip().lower())).one_or_none()


def user_id_for(session: Session, email: str) -> int | None:
    user = _by_email(session, email)
    return None if user is None else user.id


def principal_for(user: User, *, scopes: frozenset[Scope] | None = None) -> Principal:
    role = Role(user.role)
    allowed = ROLE_SCOPES[role]
    return Principal(
        actor=f"user:{user.id} {user.email}",
        role=role,
        scopes=allowed if scopes is None else scopes & allowed,
        borough_ids=None if role is Role.ADMIN else frozenset(b.id for b in user.boroughs),
        user_id=user.id,
    )


def authenticate(session: Session, *, email: str, password: str) -> User | None:
    user = _by_email(session, email)
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.active:
        return None
    return user


def start_login_session(session: Session, user: User) -> tuple[str, LoginSession]:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    row = LoginSession(
        token_hash=token_hash(token),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(24),
        created_at=now,
        expires_at=now + SESSION_LIFETIME,
    )
    session.add(row)
    session.flush()
    return token, row


def principal_from_session(session: Session, token: str, *, now: datetime) -> Principal | None:
    row = session.scalars(
        select(LoginSession).where(LoginSession.token_hash == token_hash(token))
    ).one_or_none()
    if row is None or row.expires_at <= now:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    base = principal_for(user)
    return Principal(
        actor=base.actor,
        role=base.role,
        scopes=base.scopes,
        borough_ids=base.borough_ids,
        user_id=base.user_id,
        csrf_token=row.csrf_token,
    )


def end_login_session(session: Session, token: str) -> None:
    session.execute(delete(LoginSession).where(LoginSession.token_hash == token_hash(token)))


def issue_api_token(
    session: Session,
    user: User,
    *,
    name: str,
    scopes: Iterable[Scope],
    expires_at: datetime | None = None,
    principal: Principal | None = None,
) -> tuple[str, ApiToken]:
    """Returns the token once; only its hash is stored. Audited when a principal asked."""
    wanted = frozenset(scopes)
    excess = wanted - ROLE_SCOPES[Role(user.role)]
    if excess:
        raise AccountError(
            f"a {user.role} cannot hold scope(s) {', '.join(sorted(s.value for s in excess))}"
        )
    # A token makes tokens with at most its own scopes: a leaked narrow one (a data
    # platform's feed:public) must not grow into its owner's full rights.
    beyond = wanted - principal.scopes if principal is not None else frozenset()
    if beyond:
        raise AccountError(
            "the credential asking holds no "
            f"{', '.join(sorted(s.value for s in beyond))}: a token can only make tokens "
            "with its own scopes (sign in to make a broader one)"
        )
    _refuse_live_name(session, user, name)
    token = new_token()
    row = ApiToken(
        user_id=user.id,
        name=name,
        prefix=token[:10],
        token_hash=token_hash(token),
        scopes=sorted(s.value for s in wanted),
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    if principal is not None:
        audit.record(
            session,
            principal,
            "token.create",
            target_type="token",
            target_id=row.id,
            detail={"scopes": row.scopes},
        )
    return token, row


def _refuse_live_name(session: Session, user: User, name: str) -> None:
    """Names tell a user's tokens apart, so two live ones may not share one. This also stops a
    re-sent form (a reload after making a token) from quietly making a second secret."""
    now = utcnow()
    clash = session.scalars(
        select(ApiToken.id).where(
            ApiToken.user_id == user.id,
            ApiToken.name == name,
            ApiToken.revoked_at.is_(None),
            or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > now),
        )
    ).first()
    if clash is not None:
        raise AccountError(
            f"you already have a live token named {name!r}: pick another name, or revoke that one "
            "first"
        )


def principal_from_api_token(session: Session, token: str, *, now: datetime) -> Principal | None:
    row = session.scalars(
        select(ApiToken).where(ApiToken.token_hash == token_hash(token))
    ).one_or_none()
    if row is None or row.revoked_at is not None:
        return None
    if row.expires_at is not None and row.expires_at <= now:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    row.last_used_at = now
    base = principal_for(user, scopes=frozenset(Scope(s) for s in row.scopes))
    return Principal(
        actor=f"token:{row.id} ({user.email})",
        role=base.role,
        scopes=base.scopes,
        borough_ids=base.borough_ids,
        user_id=user.id,
    )


def find_user(session: Session, email: str) -> User:
    user = _by_email(session, email)
    if user is None:
        raise AccountError(f"no user with email {email.strip().lower()}")
    return user


def sign_out_everywhere(session: Session, user: User, *, revoke_tokens: bool) -> int:
    """End the user's login sessions, and revoke their API tokens too if asked; returns how
    many tokens were revoked."""
    session.execute(delete(LoginSession).where(LoginSession.user_id == user.id))
    if not revoke_tokens:
        return 0
    live = session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    ).all()
    now = utcnow()
    for token in live:
        token.revoked_at = now
    return len(live)


def set_active(session: Session, user: User, active: bool) -> int:
    """Disable (someone who left) or enable an account. Disabling signs them out everywhere
    and revokes their API tokens at once: returns how many were revoked."""
    user.active = active
    return 0 if active else sign_out_everywhere(session, user, revoke_tokens=True)


def set_password(session: Session, user: User, password: str) -> None:
    """A new password; sessions signed in with the old one end (API tokens stay)."""
    user.password_hash = hash_password(password)
    sign_out_everywhere(session, user, revoke_tokens=False)


def set_boroughs(session: Session, user: User, codes: Iterable[str]) -> None:
    """Replace the boroughs a non-admin account covers; takes effect on its next request."""
    user.boroughs = _boroughs(session, Role(user.role), codes)


def _boroughs(session: Session, role: Role, codes: Iterable[str]) -> list[Borough]:
    wanted = sorted(set(codes))
    if role is not Role.ADMIN and not wanted:
        raise AccountError(f"a {role.value} account needs at least one borough")
    found = session.scalars(select(Borough).where(Borough.code.in_(wanted))).all()
    missing = set(wanted) - {b.code for b in found}
    if missing:
        raise AccountError(f"unknown borough code(s): {', '.join(sorted(missing))}")
    return list(found)


def list_tokens(session: Session, user_id: int) -> Sequence[ApiToken]:
    stmt = select(ApiToken).where(ApiToken.user_id == user_id)
    return session.scalars(stmt.order_by(ApiToken.id.desc())).all()


def revoke_token(session: Session, principal: Principal, token_id: int) -> ApiToken:
    """Revoke one of your own tokens (an admin may revoke anyone's); at once, for good, and
    audited. Someone else's token is as unknown as a missing one."""
    row = session.get(ApiToken, token_id)
    if row is None or (
        row.user_id != principal.user_id and Scope.USERS_ADMIN not in principal.scopes
    ):
        raise AccountError(f"no token {token_id}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    audit.record(session, principal, "token.revoke", target_type="token", target_id=row.id)
    return row

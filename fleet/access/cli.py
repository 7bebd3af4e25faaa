"""`fleet user ...`: accounts and boroughs, run by an operator on the fleet's host.

Offboarding is here too: `disable` signs a leaver out everywhere and revokes their API tokens
at once, and `boroughs` moves someone to another team's boroughs.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet.access import audit
from fleet.access.accounts import AccountError
from fleet.access.principal import SYSTEM
from fleet.access.secrets import WeakPassword
from fleet.cli_common import console, settings_or_exit
from fleet.models import User

user_app = typer.Typer(help="Manage users and boroughs.", no_args_is_help=True)
Email = Annotated[str, typer.Argument(help="The account's email address.")]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input")
]


@contextmanager
def _transaction() -> Iterator[Session]:
    """One committed transaction on the configured database; account errors end the command
    with their message and exit code 1, changing nothing."""
    from fleet.core.context import build_context

    ctx = build_context(settings_or_exit())
    try:
        with ctx.sessions.begin() as session:
            yield session
    except (AccountError, WeakPassword) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    finally:
        ctx.close()


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@user_app.command("add-borough")
def borough_add(
    code: Annotated[str, typer.Argument(help="Short code, e.g. hackney")],
    name: Annotated[str, typer.Option(help="Display name, e.g. 'London Borough of Hackney'")],
) -> None:
    """Create a borough."""
    from fleet.registry.places import Conflict, create_borough

    try:
        with _transaction() as session:
            create_borough(session, code=code, name=name)
    except Conflict as exc:
        console.print(f"[yellow]{exc}[/yellow]")
        raise typer.Exit(1) from None
    console.print(f"created borough {code}")


@user_app.command("add")
def user_add(
    email: Email,
    name: Annotated[str, typer.Option(help="Full name")],
    role: Annotated[str, typer.Option(help="admin, staff, technician or readonly")],
    borough: Annotated[
        list[str] | None, typer.Option("--borough", "-b", help="Borough code (repeatable)")
    ] = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a user. Without --password-stdin you are prompted (input hidden)."""
    from fleet.access.accounts import create_user
    from fleet.access.roles import Role

    try:
        parsed_role = Role(role)
    except ValueError:
        console.print(f"[red]unknown role {role!r}[/red]: use admin, staff, technician or readonly")
        raise typer.Exit(2) from None
    password = _read_password(password_stdin)
    with _transaction() as session:
        create_user(
            session,
            email=email,
            name=name,
            role=parsed_role,
            password=password,
            borough_codes=borough or [],
            principal=SYSTEM,
        )
    console.print(f"created {parsed_role.value} {email}")


@user_app.command("list")
def user_list() -> None:
    """Every account, one per line: email, role, boroughs, active or disabled, live API
    tokens, name. Plain columns on standard output, never cut short."""
    from sqlalchemy import func

    from fleet.models import ApiToken

    with _transaction() as session:
        live = dict(
            session.execute(
                select(ApiToken.user_id, func.count())
                .where(ApiToken.revoked_at.is_(None))
                .group_by(ApiToken.user_id)
            ).all()
        )
        rows = [
            (
                u.email,
                u.role,
                ",".join(sorted(b.code for b in u.boroughs)) or "*",
                "active" if u.active else "disabled",
                f"{live.get(u.id, 0)} token(s)",
                u.name,
            )
            for u in session.scalars(select(User).order_by(User.email))
        ]
    widths = [max((len(r[i]) for r in rows), default=0) for i in range(5)]
    for row in rows:
        typer.echo("  ".join([*(v.ljust(w) for v, w in zip(row, widths, strict=False)), row[5]]))


def _change(email: str, action: str, change: Callable[[Session, User], str]) -> None:
    """Apply `change` to the account, audit it as `action`, and print what it returns."""
    from fleet.access.accounts import find_user

    with _transaction() as session:
        user = find_user(session, email)
        said = change(session, user)
        # The id, as every other user entry has it; the email as well, for a reader.
        audit.record(
            session,
            SYSTEM,
            action,
            target_type="user",
            target_id=user.id,
            detail={"email": user.email},
        )
    console.print(said)


@user_app.command("disable")
def user_disable(email: Email) -> None:
    """Stop an account at once (someone who left): no sign-in, sessions ended, tokens revoked."""
    from fleet.access.accounts import set_active

    def change(session: Session, user: User) -> str:
        revoked = set_active(session, user, False)
        return f"disabled {email}: signed out everywhere, {revoked} API token(s) revoked"

    _change(email, "user.disable", change)


@user_app.command("enable")
def user_enable(email: Email) -> None:
    """Let a disabled account sign in again (its revoked API tokens stay revoked)."""
    from fleet.access.accounts import set_active

    def change(session: Session, user: User) -> str:
        set_active(session, user, True)
        return f"enabled {email}"

    _change(email, "user.enable", change)


@user_app.command("password")
def user_password(email: Email, password_stdin: PasswordStdin = False) -> None:
    """Set a new password; the account's open sessions end. Prompted unless --password-stdin."""
    from fleet.access.accounts import set_password

    password = _read_password(password_stdin)

    def change(session: Session, user: User) -> str:
        set_password(session, user, password)
        return f"new password set for {email}; its sessions were ended"

    _change(email, "user.password", change)


@user_app.command("boroughs")
def user_boroughs(
    email: Email,
    borough: Annotated[
        list[str], typer.Option("--borough", "-b", help="Borough code (repeatable)")
    ],
) -> None:
    """Replace the boroughs an account covers, e.g. when someone moves to another team."""
    from fleet.access.accounts import set_boroughs

    def change(session: Session, user: User) -> str:
        set_boroughs(session, user, borough)
        return f"{email} now covers {', '.join(sorted(set(borough)))}"

    _change(email, "user.boroughs", change)

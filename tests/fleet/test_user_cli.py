"""`fleet user ...` on the service's own database: offboarding takes effect at once, and
mistakes are refused with the reason and change nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from fleet.api.app import create_app
from fleet.cli import app
from fleet.core.context import FleetContext
from fleet.models import AuditEntry, User
from tests.fleet.conftest import PASSWORD, World

STAFF = "staff_hackney@example.org"


@pytest.fixture
def fleet(fleet_ctx: FleetContext, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The API, and `fleet` commands pointed at the same database."""
    monkeypatch.setenv("FLEET_DATABASE_URL", fleet_ctx.settings.database_url)
    monkeypatch.setenv("FLEET_DATA_DIR", str(fleet_ctx.settings.data_dir))
    monkeypatch.setenv("FLEET_ENVIRONMENT", "test")
    with TestClient(create_app(fleet_ctx)) as client:
        yield client


def _fleet(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["user", *args], input=stdin)
    return result.exit_code, " ".join(result.output.split())


def _signed_in(client: TestClient, email: str, password: str = PASSWORD) -> TestClient:
    client.cookies.clear()
    client.post("/login", data={"email": email, "password": password})
    return client


def test_disable_ends_sessions_and_tokens_at_once_and_enable_lets_them_sign_in_again(
    fleet: TestClient, world: World, fleet_ctx: FleetContext
) -> None:
    headers = world.headers("staff_hackney")
    assert fleet.get("/api/v1/devices", headers=headers).status_code == 200
    _signed_in(fleet, STAFF)
    assert fleet.get("/registry").status_code == 200

    code, said = _fleet("disable", STAFF)
    assert code == 0 and f"disabled {STAFF}" in said and "1 API token(s) revoked" in said
    assert fleet.get("/registry", follow_redirects=False).status_code in (303, 401)
    assert fleet.get("/api/v1/devices", headers=headers).status_code == 401
    assert _signed_in(fleet, STAFF).get("/registry", follow_redirects=False).status_code != 200

    code, said = _fleet("enable", STAFF)
    assert code == 0
    assert _signed_in(fleet, STAFF).get("/registry").status_code == 200
    assert fleet.get("/api/v1/devices", headers=headers).status_code == 401  # stays revoked
    with fleet_ctx.sessions() as s:
        staff = s.scalars(select(User).where(User.email == STAFF)).one()
        entries = s.scalars(
            select(AuditEntry).where(
                AuditEntry.target_type == "user",
                AuditEntry.target_id == str(staff.id),
                AuditEntry.action != "user.login",
            )
        ).all()
        assert [(e.action, e.detail) for e in entries] == [
            ("user.disable", {"email": STAFF}),
            ("user.login_failed", None),  # the sign-in tried while disabled
            ("user.enable", {"email": STAFF}),
        ]


def test_a_new_password_ends_the_old_sessions(fleet: TestClient, world: World) -> None:
    _signed_in(fleet, STAFF)
    new = "a much longer new password"
    code, _ = _fleet("password", STAFF, "--password-stdin", stdin=new + "\n")
    assert code == 0
    assert fleet.get("/registry", follow_redirects=False).status_code != 200
    assert (
        _signed_in(fleet, STAFF, PASSWORD).get("/registry", follow_redirects=False).status_code
        != 200
    )
    assert _signed_in(fleet, STAFF, new).get("/registry").status_code == 200


def test_boroughs_move_an_account_to_another_team(
    fleet: TestClient, world: World, fleet_ctx: FleetContext
) -> None:
    headers = world.headers("staff_hackney")
    assert fleet.get("/api/v1/devices/cs-camden-0001", headers=headers).status_code == 404
    code, said = _fleet("boroughs", STAFF, "-b", "camden")
    assert code == 0 and "now covers camden" in said
    assert fleet.get("/api/v1/devices/cs-camden-0001", headers=headers).status_code == 200
    assert fleet.get("/api/v1/devices/cs-hackney-0001", headers=headers).status_code == 404


def test_add_creates_an_account_that_signs_in_and_is_audited(
    fleet: TestClient, world: World, fleet_ctx: FleetContext
) -> None:
    new = "a long enough password"
    args = ["add", "new@example.org", "--name", "New", "--role", "staff", "-b", "camden"]
    code, said = _fleet(*args, "--password-stdin", stdin=new + "\n")
    assert code == 0 and "created staff new@example.org" in said
    assert _signed_in(fleet, "new@example.org", new).get("/registry").status_code == 200
    with fleet_ctx.sessions() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "user.create")).one()
        assert entry.detail == {"role": "staff", "boroughs": ["camden"]}
    assert _fleet(*args, "--password-stdin", stdin=new + "\n") == (
        1,
        "a user with email new@example.org already exists",
    )


def test_mistakes_are_refused_with_the_reason_and_change_nothing(
    fleet: TestClient, world: World, fleet_ctx: FleetContext
) -> None:
    assert _fleet("disable", "nobody@example.org") == (1, "no user with email nobody@example.org")
    assert _fleet("boroughs", STAFF, "-b", "atlantis") == (1, "unknown borough code(s): atlantis")
    code, said = _fleet("password", STAFF, "--password-stdin", stdin="short\n")
    assert code == 1 and said
    with fleet_ctx.sessions() as s:
        user = s.scalars(select(User).where(User.email == STAFF)).one()
        assert user.active and [b.code for b in user.boroughs] == ["hackney"]
    assert _signed_in(fleet, STAFF).get("/registry").status_code == 200  # old password works

    result = CliRunner().invoke(app, ["user", "list"])
    assert result.exit_code == 0
    (row,) = [line for line in result.output.splitlines() if STAFF in line]
    assert row.split() == [STAFF, "staff", "hackney", "active", "1", "token(s)", "staff_hackney"]

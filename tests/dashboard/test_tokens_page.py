"""API tokens on the dashboard and the API: made and shown once, listed without the secret,
revoked at once; more than the account may hold, or someone else's token, is refused."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from fleet.access import accounts
from fleet.access.roles import Scope
from fleet.core.context import FleetContext
from fleet.models import ApiToken, AuditEntry, User
from tests.dashboard.test_ota_pages import client, csrf_of, recorder, sign_in  # noqa: F401
from tests.fleet.conftest import World, fleet_ctx, world  # noqa: F401


def _states(page: str) -> dict[str, str]:
    return dict(re.findall(r'<tr data-token="(\d+)" data-state="(\w+)">', page))


def test_a_technician_makes_uses_and_revokes_a_token(
    client: TestClient,  # noqa: F811
    fleet_ctx: FleetContext,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    sign_in(client, "tech_hackney")
    form = {
        "csrf": csrf_of(client, "/tokens"),
        "name": "provisioning laptop",
        "scopes": ["devices:read", "devices:enrol"],
        "expires_days": "90",
    }
    made = client.post("/tokens", data=form).text
    shown = re.search(r'id="new-token" role="status">.*?<code>([^<]+)</code>', made, re.S)
    assert shown is not None
    secret = shown.group(1)
    with fleet_ctx.sessions() as s:
        row = s.scalars(select(ApiToken).where(ApiToken.name == "provisioning laptop")).one()
        assert row.scopes == ["devices:enrol", "devices:read"] and row.expires_at is not None
        token_id = str(row.id)
    assert secret not in client.get("/tokens").text  # shown once
    assert _states(client.get("/tokens").text)[token_id] == "active"

    api = TestClient(client.app)
    bearer = {"Authorization": f"Bearer {secret}"}
    assert api.get("/api/v1/devices", headers=bearer).status_code == 200
    listed = api.get("/api/v1/tokens", headers=bearer).json()
    assert {t["name"] for t in listed} >= {"provisioning laptop"}
    assert all("token" not in t for t in listed)

    token = csrf_of(client, "/tokens")
    page = client.post(f"/tokens/{token_id}/revoke", data={"csrf": token}).text
    assert "token provisioning laptop revoked" in page and _states(page)[token_id] == "revoked"
    assert api.get("/api/v1/devices", headers=bearer).status_code == 401
    with fleet_ctx.sessions() as s:
        actions = s.scalars(select(AuditEntry.action).where(AuditEntry.target_type == "token"))
        assert sorted(actions) == ["token.create", "token.revoke"]


def test_more_than_the_account_may_hold_or_a_bad_form_is_refused(
    client: TestClient,  # noqa: F811
    fleet_ctx: FleetContext,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    sign_in(client, "tech_hackney")
    good = {"csrf": csrf_of(client, "/tokens"), "name": "x", "scopes": ["devices:read"]}
    for bad, said in (
        ({"scopes": ["users:admin"]}, "a technician cannot hold scope(s) users:admin"),
        ({"scopes": ["root"]}, "&#39;root&#39; is not a valid Scope"),
        ({"scopes": []}, "choose at least one scope"),
        ({"name": " "}, "give the token a name"),
        ({"expires_days": "7"}, "expiry must be one of"),
    ):
        page = client.post("/tokens", data={**good, **bad}).text
        assert f"not made: {said}" in page, page[-1500:]
    with fleet_ctx.sessions() as s:
        assert s.scalars(select(ApiToken).where(ApiToken.name == "x")).first() is None


def test_someone_elses_token_cannot_be_revoked_except_by_an_admin(
    client: TestClient,  # noqa: F811
    fleet_ctx: FleetContext,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    with fleet_ctx.sessions() as s:
        camden = s.scalars(
            select(ApiToken.id).join(User).where(User.email == "staff_camden@example.org")
        ).one()
    hackney = world.headers("staff_hackney")
    admin = world.headers("admin")
    camden_api = world.headers("staff_camden")
    api = TestClient(client.app)

    sign_in(client, "staff_hackney")
    page = client.post(f"/tokens/{camden}/revoke", data={"csrf": csrf_of(client, "/tokens")}).text
    assert f"not revoked: no token {camden}" in page
    assert api.delete(f"/api/v1/tokens/{camden}", headers=hackney).status_code == 404
    assert camden not in {t["id"] for t in api.get("/api/v1/tokens", headers=hackney).json()}
    assert api.get("/api/v1/devices", headers=camden_api).status_code == 200

    assert api.delete(f"/api/v1/tokens/{camden}", headers=admin).status_code == 204
    assert api.get("/api/v1/devices", headers=camden_api).status_code == 401


def test_a_resent_form_does_not_make_a_second_secret(
    client: TestClient,  # noqa: F811
    fleet_ctx: FleetContext,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    """Reloading the page after making a token sends the same form again; a second live token
    of that name is refused, the API says the same, and revoking frees the name."""
    sign_in(client, "tech_hackney")
    form = {"csrf": csrf_of(client, "/tokens"), "name": "laptop", "scopes": ["devices:read"]}
    assert 'id="new-token"' in client.post("/tokens", data=form).text
    again = client.post("/tokens", data=form).text
    assert 'id="new-token"' not in again
    assert "not made: you already have a live token named &#39;laptop&#39;" in again
    api = TestClient(client.app)
    refused = api.post(
        "/api/v1/tokens",
        json={"name": "laptop", "scopes": ["devices:read"]},
        headers=world.headers("tech_hackney"),
    )
    assert refused.status_code == 422 and "live token named 'laptop'" in refused.text
    with fleet_ctx.sessions() as s:
        ids = s.scalars(select(ApiToken.id).where(ApiToken.name == "laptop")).all()
    assert len(ids) == 1

    client.post(f"/tokens/{ids[0]}/revoke", data={"csrf": csrf_of(client, "/tokens")})
    assert 'id="new-token"' in client.post("/tokens", data=form).text


def test_a_narrow_token_neither_grows_nor_reads_the_pages(
    client: TestClient,  # noqa: F811
    fleet_ctx: FleetContext,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    """A leaked feed or read-only token stays what it was made for."""
    with fleet_ctx.sessions.begin() as s:
        staff = s.scalars(select(User).where(User.email == "staff_hackney@example.org")).one()
        secret, _ = accounts.issue_api_token(s, staff, name="reader", scopes=[Scope.DEVICES_READ])
    api = TestClient(client.app, follow_redirects=False)
    bearer = {"Authorization": f"Bearer {secret}"}
    wider = {"name": "wider", "scopes": ["devices:read", "commands:send", "feed:full"]}
    refused = api.post("/api/v1/tokens", json=wider, headers=bearer)
    assert refused.status_code == 422
    assert "holds no commands:send, feed:full: a token can only make tokens" in refused.text
    same = api.post(
        "/api/v1/tokens", json={"name": "same", "scopes": ["devices:read"]}, headers=bearer
    )
    assert same.status_code == 201 and same.json()["scopes"] == ["devices:read"]

    for path in ("/", "/registry", "/cases", "/tokens"):
        assert api.get(path, headers=bearer).status_code == 303, path  # to the sign-in page
    form = {"name": "via page", "scopes": ["commands:send"], "expires_days": "90"}
    assert api.post("/tokens", data=form, headers=bearer).status_code == 303
    with fleet_ctx.sessions() as s:
        names = set(s.scalars(select(ApiToken.name)))
    assert "wider" not in names and "via page" not in names

"""The JSON API, called with the session cookie, takes changes only from the fleet's own
pages: the SameSite=Lax cookie still reaches it from a sibling site of the same domain."""

from __future__ import annotations

from fastapi.testclient import TestClient

from fleet.core.context import FleetContext
from tests.fleet.conftest import PASSWORD, World, fleet_ctx, world  # noqa: F401


def test_a_change_with_the_session_cookie_must_come_from_the_fleets_pages(
    client: TestClient,
    fleet_ctx: FleetContext,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    signed_in = client.post(
        "/login", data={"email": "staff_hackney@example.org", "password": PASSWORD}
    )
    assert signed_in.status_code == 303
    url = "/api/v1/tokens"
    body = {"name": "from a page", "scopes": ["devices:read"]}
    for origin in ("https://evil.example", "http://fleet.hackney.example"):
        forged = client.post(url, json=body, headers={"origin": origin})
        assert forged.status_code == 403 and "the fleet's own pages" in forged.text
    forged = client.post(url, json=body, headers={"referer": "https://evil.example/x"})
    assert forged.status_code == 403
    own = client.post(url, json=body, headers={"origin": "http://testserver"})
    assert own.status_code == 201
    assert client.get("/api/v1/tokens", headers={"origin": "https://evil.example"}).is_success

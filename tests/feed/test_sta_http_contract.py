"""The HTTP contract of the public feed: error shape for every refusal, CORS, read-only."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from fleet.api.app import create_app
from fleet.feed.ratelimit import Limit, RateLimiter
from tests.feed.conftest import FeedWorld

BASE = "/sta/v1.1"
ORIGIN = {"Origin": "https://map.example.org"}


def sta_error(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "type", "message"} and body["code"] == status
    assert body["type"] == "error"
    message: str = body["message"]
    return message


def test_type_mismatches_are_400_on_every_entity_set(client: TestClient) -> None:
    for path in (
        "Things?$filter=name eq 1",
        "Datastreams?$filter=id eq 'x'",
        "HistoricalLocations?$filter=time gt 3",
        "Datastreams?$filter=Thing/name gt 2025-01-01T00:00:00Z",
        "Observations?$filter=result eq 'x'",
    ):
        assert "cannot compare" in sta_error(client.get(f"{BASE}/{path}"), 400), path
    # Free-form properties have no declared type: any comparison is allowed.
    assert client.get(f"{BASE}/Things?$filter=properties/floor eq 1").status_code == 200


def test_every_refusal_names_the_option_at_fault(client: TestClient) -> None:
    """Checks made after parsing (names, types) still say which option they were reading,
    through nested $expand options too, whose positions count from their own value."""
    for path, prefix in (
        ("Things?$orderby=nope", "$orderby: unknown property 'nope'"),
        ("Observations?$orderby=nope", "$orderby: "),
        ("Things?$filter=name eq 1", "$filter: cannot compare"),
        ("Observations?$filter=result eq 'x'", "$filter: cannot compare"),
        ("Things?$expand=Datastreams($filter=nope eq 1)", "$expand=Datastreams($filter): "),
        ("Things?$expand=Datastreams($orderby=nope)", "$expand=Datastreams($orderby): "),
        (
            "Things?$expand=Datastreams($expand=Observations($orderby=zzz))",
            "$expand=Datastreams($expand=Observations($orderby)): unknown property 'zzz'",
        ),
    ):
        message = sta_error(client.get(f"{BASE}/{path}"), 400)
        assert message.startswith(prefix), (path, message)
    nested = sta_error(client.get(f"{BASE}/Things?$expand=Datastreams($filter=name eq 1)"), 400)
    assert nested.endswith("(at position 5)"), nested


def test_writes_are_405_with_allow_in_the_error_shape(client: TestClient) -> None:
    for method, path in (("POST", "Things"), ("DELETE", "Things(1)"), ("PATCH", "")):
        response = client.request(method, f"{BASE}/{path}".rstrip("/"))
        assert "read-only" in sta_error(response, 405)
        assert response.headers["allow"] == "GET, HEAD, OPTIONS"
    options = client.options(f"{BASE}/Things")
    assert options.status_code == 204 and options.headers["allow"] == "GET, HEAD, OPTIONS"


def test_bad_token_and_rate_limit_use_the_error_shape(feed_world: FeedWorld) -> None:
    app = create_app(feed_world.ctx)
    app.state.feed_limiter = RateLimiter(public=Limit(0.001, 1), token=Limit(0.001, 1))
    with TestClient(app) as client:
        wrong = client.get(f"{BASE}/Things", headers={"Authorization": "Bearer wrong"})
        sta_error(wrong, 401)
        assert client.get(f"{BASE}/Things").status_code == 200
        limited = client.get(f"{BASE}/Things")
        assert "slow down" in sta_error(limited, 429)
        assert int(limited.headers["retry-after"]) >= 1


def test_public_feed_answers_other_origins(client: TestClient) -> None:
    response = client.get(f"{BASE}/Things", headers=ORIGIN)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers
    preflight = client.options(
        f"{BASE}/Observations",
        headers={
            **ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "Authorization",
        },
    )
    assert preflight.status_code == 200
    assert "GET" in preflight.headers["access-control-allow-methods"]
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    standard = client.get("/standards/privacy.md", headers=ORIGIN)
    assert standard.headers["access-control-allow-origin"] == "*"


def test_the_rest_of_the_api_stays_same_origin(client: TestClient) -> None:
    response = client.get("/healthz", headers=ORIGIN)
    assert "access-control-allow-origin" not in response.headers
    preflight = client.options(
        "/api/v1/devices", headers={**ORIGIN, "Access-Control-Request-Method": "DELETE"}
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_options_naming_what_a_set_lacks_are_refused_even_with_nothing_to_show(
    client: TestClient,
) -> None:
    """A typo must not answer 200 while the collection (or the expanded one) is empty and
    400 once data arrives."""
    hidden = "?$filter=id eq -1"  # matches nothing: no entity is ever rendered
    for path, prefix in (
        (f"Things{hidden}&$select=nope", "$select: "),
        (f"Things{hidden}&$expand=Nope", "$expand: Things has no navigation property 'Nope'"),
        (f"Things{hidden}&$expand=Datastreams($filter=nope eq 1)", "$expand=Datastreams($filter)"),
        (
            f"Datastreams{hidden}&$expand=Observations($orderby=zz)",
            "$expand=Observations($orderby)",
        ),
        (f"Observations{hidden}&$orderby=zz", "$orderby: "),
        ("Things(1)?$expand=Datastreams($select=nope)", "$expand=Datastreams($select)"),
    ):
        message = sta_error(client.get(f"{BASE}/{path}"), 400)
        assert message.startswith(prefix), (path, message)
    # A well-formed query over nothing is still an empty 200.
    empty = client.get(f"{BASE}/Things{hidden}&$expand=Datastreams($select=name)")
    assert empty.status_code == 200 and empty.json()["value"] == []

"""REST API: registration, listing, history, auth and clear errors."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from fleet.api.app import create_app
from fleet.core.context import FleetContext
from fleet.ingest.handler import IngestHandler
from tests.fleet.packs import telemetry

NOW = float(int(time.time()))


@pytest.fixture
def client(fleet_ctx: FleetContext) -> Iterator[TestClient]:
    with TestClient(create_app(fleet_ctx)) as c:
        yield c


def auth(ctx: FleetContext) -> dict[str, str]:
    return {"Authorization": f"Bearer {ctx.admin_token}"}


def test_register_needs_the_admin_token(client: TestClient, fleet_ctx: FleetContext) -> None:
    body = {"device_id": "cs-api-0001", "name": "Flat 3 bedroom"}
    assert client.post("/api/v1/devices", json=body).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert client.post("/api/v1/devices", json=body, headers=wrong).status_code == 403
    created = client.post("/api/v1/devices", json=body, headers=auth(fleet_ctx))
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "unknown"
    again = client.post("/api/v1/devices", json=body, headers=auth(fleet_ctx))
    assert again.status_code == 409
    assert "already registered" in again.json()["detail"]


def test_invalid_device_id_is_refused_with_the_rule(
    client: TestClient, fleet_ctx: FleetContext
) -> None:
    r = client.post("/api/v1/devices", json={"device_id": "Bad Id!"}, headers=auth(fleet_ctx))
    assert r.status_code == 422
    assert "pattern" in r.text


def test_history_and_latest(client: TestClient, fleet_ctx: FleetContext) -> None:
    client.post("/api/v1/devices", json={"device_id": "cs-api-0002"}, headers=auth(fleet_ctx))
    handler = IngestHandler(fleet_ctx.sessions, clock=lambda: NOW)
    samples = [(0, 20.0, 50.0), (600, 20.5, 51.0), (1200, 21.0, 52.0)]
    handler.handle("cs/v1/d/cs-api-0002/up", telemetry("cs-api-0002", NOW - 1800, samples))

    device = client.get("/api/v1/devices/cs-api-0002").json()
    assert device["latest"]["humidity"]["v"] == 52.0
    history = client.get("/api/v1/devices/cs-api-0002/readings", params={"metric": "temperature"})
    assert [r["value"] for r in history.json()] == [20.0, 20.5, 21.0]
    limited = client.get(
        "/api/v1/devices/cs-api-0002/readings", params={"metric": "humidity", "limit": 2}
    ).json()
    assert [r["value"] for r in limited] == [51.0, 52.0]
    assert client.get("/api/v1/devices/cs-api-0002/readings?metric=radon").status_code == 422
    naive = client.get("/api/v1/devices/cs-api-0002/readings?since=2025-01-01T00:00:00")
    assert naive.status_code == 422
    assert client.get("/api/v1/devices/cs-nope-000/readings").status_code == 404


def test_rejects_listing_is_admin_only(client: TestClient, fleet_ctx: FleetContext) -> None:
    IngestHandler(fleet_ctx.sessions).handle("cs/v1/d/cs-ghost-01/up", b"{")
    assert client.get("/api/v1/rejects").status_code == 401
    rows = client.get("/api/v1/rejects", headers=auth(fleet_ctx)).json()
    assert rows[0]["reason"] == "unknown_device"


def test_openapi_and_dashboard_render(client: TestClient) -> None:
    assert client.get("/openapi.json").json()["info"]["title"] == "City sensor fleet"
    page = client.get("/")
    assert page.status_code == 200
    assert "Fleet overview" in page.text

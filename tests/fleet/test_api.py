"""REST API: registration, listing, history, auth and clear errors."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from fleet.api.app import create_app
from fleet.core.context import FleetContext
from fleet.ingest.handler import IngestHandler
from fleet.models import AuditEntry, Device, Reading
from tests.fleet.conftest import World
from tests.fleet.packs import telemetry

NOW = float(int(time.time()))


@pytest.fixture
def client(fleet_ctx: FleetContext) -> Iterator[TestClient]:
    with TestClient(create_app(fleet_ctx)) as c:
        yield c


def test_register_needs_a_token_with_the_scope(client: TestClient, world: World) -> None:
    body = {"device_id": "cs-api-0001", "name": "Flat 3 bedroom", "borough": "hackney"}
    assert client.post("/api/v1/devices", json=body).status_code == 401
    bad = client.post("/api/v1/devices", json=body, headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    readonly = client.post("/api/v1/devices", json=body, headers=world.headers("readonly_hackney"))
    assert readonly.status_code == 403
    assert "devices:write" in readonly.json()["detail"]
    created = client.post("/api/v1/devices", json=body, headers=world.headers("tech_hackney"))
    assert created.status_code == 201, created.text
    assert created.json()["state"] == "unknown"
    again = client.post("/api/v1/devices", json=body, headers=world.headers("tech_hackney"))
    assert again.status_code == 409
    assert "already registered" in again.json()["detail"]


def test_technician_cannot_register_into_another_borough(client: TestClient, world: World) -> None:
    body = {"device_id": "cs-api-0009", "borough": "camden"}
    r = client.post("/api/v1/devices", json=body, headers=world.headers("tech_hackney"))
    assert r.status_code == 404
    no_borough = client.post(
        "/api/v1/devices", json={"device_id": "cs-api-0010"}, headers=world.headers("tech_hackney")
    )
    assert no_borough.status_code == 422


def test_admin_token_from_settings_still_works(client: TestClient, fleet_ctx: FleetContext) -> None:
    r = client.post(
        "/api/v1/devices",
        json={"device_id": "cs-api-0003"},
        headers={"Authorization": f"Bearer {fleet_ctx.admin_token}"},
    )
    assert r.status_code == 201


def test_invalid_device_id_is_refused_with_the_rule(client: TestClient, world: World) -> None:
    r = client.post(
        "/api/v1/devices", json={"device_id": "Bad Id!"}, headers=world.headers("admin")
    )
    assert r.status_code == 422
    assert "pattern" in r.text


def test_history_and_latest(client: TestClient, world: World, fleet_ctx: FleetContext) -> None:
    handler = IngestHandler(fleet_ctx.sessions, clock=lambda: NOW)
    samples = [(0, 20.0, 50.0), (600, 20.5, 51.0), (1200, 21.0, 52.0)]
    handler.handle("cs/v1/d/cs-hackney-0001/up", telemetry("cs-hackney-0001", NOW - 1800, samples))
    h = world.headers("staff_hackney")
    device = client.get("/api/v1/devices/cs-hackney-0001", headers=h).json()
    assert device["latest"]["humidity"]["v"] == 52.0
    history = client.get(
        "/api/v1/devices/cs-hackney-0001/readings", params={"metric": "temperature"}, headers=h
    )
    assert [r["value"] for r in history.json()] == [20.0, 20.5, 21.0]
    limited = client.get(
        "/api/v1/devices/cs-hackney-0001/readings",
        params={"metric": "humidity", "limit": 2},
        headers=h,
    ).json()
    assert [r["value"] for r in limited] == [51.0, 52.0]
    base = "/api/v1/devices/cs-hackney-0001/readings"
    assert client.get(base + "?metric=radon", headers=h).status_code == 422
    assert client.get(base + "?since=2025-01-01T00:00:00", headers=h).status_code == 422
    assert client.get("/api/v1/devices/cs-nope-000/readings", headers=h).status_code == 404


def test_erasing_deletes_the_devices_readings_and_nothing_else(
    client: TestClient, world: World, fleet_ctx: FleetContext
) -> None:
    handler = IngestHandler(fleet_ctx.sessions, clock=lambda: NOW)
    samples = [(0, 20.0, 50.0), (600, 20.5, 51.0)]
    for device_id in ("cs-hackney-0001", "cs-camden-0001"):
        handler.handle(f"cs/v1/d/{device_id}/up", telemetry(device_id, NOW - 1800, samples))
    gone = client.delete(
        "/api/v1/devices/cs-hackney-0001?erase_readings=true", headers=world.headers("admin")
    )
    assert gone.status_code == 204, gone.text
    # A pack that arrives after the device went is refused, not stored under a dangling key.
    late = handler.handle(
        "cs/v1/d/cs-hackney-0001/up", telemetry("cs-hackney-0001", NOW - 60, samples)
    )
    assert late.reason == "unknown_device"
    with fleet_ctx.sessions() as s:
        per_device = dict(
            s.execute(select(Reading.device_pk, func.count()).group_by(Reading.device_pk)).all()
        )
        camden = s.scalars(select(Device.id).where(Device.device_id == "cs-camden-0001")).one()
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "device.erase")).one()
    assert per_device == {camden: 4}
    assert entry.detail == {"readings_deleted": 4, "certificates_revoked": []}  # never enrolled


def test_device_list_filters_sorts_and_pages(client: TestClient, world: World) -> None:
    h = world.headers("admin")
    for i in range(5):
        client.post(
            "/api/v1/devices",
            json={"device_id": f"cs-page-{i:04d}", "name": f"Flat {i}", "borough": "hackney"},
            headers=h,
        )
    page = client.get("/api/v1/devices?q=page&limit=2&offset=2&sort=-device_id", headers=h).json()
    assert page["total"] == 5
    assert [d["device_id"] for d in page["items"]] == ["cs-page-0002", "cs-page-0001"]
    camden = client.get("/api/v1/devices?borough=camden", headers=h).json()
    assert [d["device_id"] for d in camden["items"]] == ["cs-camden-0001"]
    assert client.get("/api/v1/devices?sort=password", headers=h).status_code == 422


def test_rejects_listing_is_for_operators(
    client: TestClient, world: World, fleet_ctx: FleetContext
) -> None:
    IngestHandler(fleet_ctx.sessions).handle("cs/v1/d/cs-ghost-01/up", b"{")
    assert client.get("/api/v1/rejects").status_code == 401
    assert client.get("/api/v1/rejects", headers=world.headers("staff_hackney")).status_code == 403
    rows = client.get("/api/v1/rejects", headers=world.headers("admin")).json()
    assert rows[0]["reason"] == "unknown_device"


def test_openapi_renders_and_dashboard_needs_login(client: TestClient) -> None:
    assert client.get("/openapi.json").json()["info"]["title"] == "City sensor fleet"
    page = client.get("/", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"].startswith("/login")


def test_metrics_exposes_devices_and_rejects(client: TestClient, world: World) -> None:
    IngestHandler(world.ctx.sessions).handle("cs/v1/d/cs-ghost-01/up", b"{")
    text = client.get("/metrics").text
    assert 'fleet_devices{state="unknown"} 2.0' in text
    assert 'fleet_rejected_messages_total{reason="unknown_device"} 1.0' in text
    assert "fleet_db_query_seconds_bucket" in text


def test_series_buckets_a_range(client: TestClient, world: World, fleet_ctx: FleetContext) -> None:
    handler = IngestHandler(fleet_ctx.sessions, clock=lambda: NOW)
    samples = [(i * 900.0, 20.0, float(40 + i % 4)) for i in range(96)]  # one day, 15 min
    handler.handle("cs/v1/d/cs-hackney-0001/up", telemetry("cs-hackney-0001", NOW - 86400, samples))
    h = world.headers("staff_hackney")
    since = datetime.fromtimestamp(NOW - 86400, UTC).isoformat()
    r = client.get(
        "/api/v1/devices/cs-hackney-0001/series",
        params={"metric": "humidity", "since": since, "points": 24},
        headers=h,
    )
    assert r.status_code == 200, r.text
    points = r.json()
    assert 24 <= len(points) <= 25
    assert sum(p["count"] for p in points) == 96
    assert all(p["low"] <= p["mean"] <= p["high"] for p in points)
    # Full hour buckets hold one cycle 40..43; edge buckets may be partial.
    assert {(p["low"], p["high"]) for p in points if p["count"] == 4} == {(40.0, 43.0)}
    bad = client.get(
        "/api/v1/devices/cs-hackney-0001/series",
        params={"metric": "humidity", "since": since, "until": since},
        headers=h,
    )
    assert bad.status_code == 422


def test_a_wide_bucket_is_drawn_where_its_readings_are(
    client: TestClient, world: World, fleet_ctx: FleetContext
) -> None:
    handler = IngestHandler(fleet_ctx.sessions, clock=lambda: NOW)
    samples = [(i * 900.0, 20.0, 50.0) for i in range(4)]  # the last hour, up to now
    handler.handle("cs/v1/d/cs-hackney-0001/up", telemetry("cs-hackney-0001", NOW - 2700, samples))
    r = client.get(
        "/api/v1/devices/cs-hackney-0001/series",
        params={"metric": "humidity", "since": "2020-01-01T00:00:00Z", "points": 100},
        headers=world.headers("staff_hackney"),
    )
    points = r.json()  # buckets of about 25 days: the readings fill one (or two at an edge)
    assert sum(p["count"] for p in points) == 4
    for point in points:
        assert NOW - 2700 <= datetime.fromisoformat(point["ts"]).timestamp() <= NOW


def test_registry_update_and_delete_rules(client: TestClient, world: World) -> None:
    h = world.headers("staff_hackney")
    estate = client.post("/api/v1/boroughs/hackney/estates", json={"name": "Kings"}, headers=h)
    estate_id = estate.json()["id"]
    prop = client.post(
        "/api/v1/boroughs/hackney/properties",
        json={"reference": "HX-77", "estate_id": estate_id, "address": "7 Private Road"},
        headers=h,
    ).json()
    assert client.delete(f"/api/v1/estates/{estate_id}", headers=h).status_code == 409
    other = client.post("/api/v1/boroughs/hackney/estates", json={"name": "Queens"}, headers=h)
    clash = client.patch(f"/api/v1/estates/{other.json()['id']}", json={"name": "Kings"}, headers=h)
    assert clash.status_code == 409 and "already exists" in clash.json()["detail"]
    r = client.patch(
        f"/api/v1/properties/{prop['id']}", json={"address": "8 Private Road"}, headers=h
    )
    assert r.json()["address"] == "8 Private Road"
    audit = client.get("/api/v1/audit?action=property.update", headers=h).json()
    assert audit[0]["detail"] == {"address": "changed"}  # personal data stays out of the log
    assert client.delete(f"/api/v1/properties/{prop['id']}", headers=h).status_code == 204
    assert client.delete(f"/api/v1/estates/{estate_id}", headers=h).status_code == 204
    tagged = client.patch(
        "/api/v1/devices/cs-hackney-0001", json={"tags": ["pilot", "pilot", "wave-1"]}, headers=h
    )
    assert tagged.json()["tags"] == ["pilot", "wave-1"]
    bad = client.patch("/api/v1/devices/cs-hackney-0001", json={"power_mode": "solar"}, headers=h)
    assert bad.status_code == 422

"""A sensor's history stays with the borough where it was taken: a device in service is never
moved into another borough (its readings, alerts, commands and rollouts would follow it);
it is decommissioned there, keeping its history, and enrolled anew."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from fleet.api.app import create_app
from fleet.core.context import FleetContext
from fleet.models import Device, Placement, Property
from tests.fleet.conftest import World, fleet_ctx, world  # noqa: F401


@pytest.fixture
def client(fleet_ctx: FleetContext) -> Iterator[TestClient]:  # noqa: F811
    with TestClient(create_app(fleet_ctx)) as c:
        yield c


def _placement_in(ctx: FleetContext, borough_id: int) -> int:
    with ctx.sessions() as s:
        return int(
            s.scalars(
                select(Placement.id)
                .join(Property, Property.id == Placement.property_id)
                .where(Property.borough_id == borough_id)
            ).first()
            or 0
        )


def _where(ctx: FleetContext, device_id: str) -> tuple[int | None, int | None]:
    with ctx.sessions() as s:
        device = s.scalars(select(Device).where(Device.current(device_id))).one()
        return device.borough_id, device.placement_id


def test_placing_a_device_in_another_borough_is_refused_even_for_an_admin(
    client: TestClient,
    fleet_ctx: FleetContext,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    before = _where(fleet_ctx, "cs-hackney-0001")
    camden = _placement_in(fleet_ctx, world.borough_ids["camden"])
    answer = client.put(
        "/api/v1/devices/cs-hackney-0001/placement",
        json={"placement_id": camden},
        headers=world.headers("admin"),
    )
    assert answer.status_code == 409
    assert "decommission it" in answer.json()["detail"]
    assert _where(fleet_ctx, "cs-hackney-0001") == before


def test_an_unplaced_device_joins_any_borough_and_moves_within_it(
    client: TestClient,
    fleet_ctx: FleetContext,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    admin = world.headers("admin")
    assert client.post("/api/v1/devices", json={"device_id": "cs-stock-0001"}, headers=admin)
    camden = _placement_in(fleet_ctx, world.borough_ids["camden"])
    placed = client.put(
        "/api/v1/devices/cs-stock-0001/placement", json={"placement_id": camden}, headers=admin
    )
    assert placed.status_code == 200, placed.text
    assert _where(fleet_ctx, "cs-stock-0001") == (world.borough_ids["camden"], camden)


def test_enrolling_a_device_of_another_borough_is_refused_even_for_an_admin(
    client: TestClient,
    fleet_ctx: FleetContext,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    admin = world.headers("admin")
    wifi = client.put(
        "/api/v1/enrolments/wifi-profiles/camden/default",
        json={"ssid": "Estate-IoT", "password": "correct-horse"},
        headers=admin,
    )
    assert wifi.status_code == 200, wifi.text
    with fleet_ctx.sessions.begin() as s:  # in hackney, not installed anywhere yet
        s.scalars(select(Device).where(Device.current("cs-hackney-0001"))).one().placement_id = None
    body = {
        "device_id": "cs-hackney-0001",
        "borough": "camden",
        "property_reference": "CAMDEN-0042",
        "room": "kitchen",
    }
    answer = client.post("/api/v1/enrolments", json=body, headers=admin)
    assert answer.status_code == 409, answer.text
    assert "another borough" in answer.json()["detail"]["message"]
    assert _where(fleet_ctx, "cs-hackney-0001") == (world.borough_ids["hackney"], None)

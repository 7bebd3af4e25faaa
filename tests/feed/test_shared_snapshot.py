"""Feed requests share one snapshot: rebuilt after this process commits a change to what it
holds, or once it is MAX_AGE_S old (another replica's change), never per request."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from fleet.feed import shared
from fleet.models import Device, Property, Reading
from tests.feed.conftest import STEP, T0, FeedWorld


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times the snapshot was loaded."""
    calls: list[int] = []
    real = shared.load

    def counted(session):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(session)

    monkeypatch.setattr(shared, "load", counted)
    monkeypatch.setattr(shared, "MAX_AGE_S", 3600.0)
    return calls


def test_requests_share_it_until_a_change_to_what_it_holds(
    client: TestClient, feed_world: FeedWorld, builds: list[int]
) -> None:
    assert client.get("/sta/v1.1/Things(2)").status_code == 200
    before = len(builds)
    for _ in range(3):
        assert client.get("/sta/v1.1/Things").status_code == 200
        assert client.get("/register").status_code == 200
    assert len(builds) == before  # six requests, no rebuild

    # What readings and liveness change all the time is not in it.
    with feed_world.ctx.sessions.begin() as s:
        device = s.scalars(select(Device).where(Device.device_id == "cs-camden-0001")).one()
        device.last_seen_at = T0
        s.add(
            Reading(device_pk=device.id, metric="temperature", ts=T0 - STEP, value=1.0, unit="Cel")
        )
    client.get("/sta/v1.1/Things")
    assert len(builds) == before

    # A tenant's withdrawal is: the very next request no longer shows the home.
    camden = feed_world.property_ids["camden"]
    staff = feed_world.headers("staff_camden")
    put = client.put(f"/api/v1/feed/consent/{camden}", json={"state": "withdrawn"}, headers=staff)
    assert put.status_code == 200
    assert client.get("/sta/v1.1/Things(2)").status_code == 404
    assert len(builds) == before + 1


def test_a_change_it_cannot_see_shows_once_it_is_old(
    client: TestClient,
    feed_world: FeedWorld,
    builds: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another replica's commit raises no event here: the age bounds how stale it can be."""

    def location() -> object:
        return client.get("/sta/v1.1/Things(1)/Locations").json()["value"][0]["location"]

    first = location()
    with feed_world.ctx.engine.begin() as conn:  # not through this process's ORM session
        hackney = feed_world.property_ids["hackney"]
        conn.execute(update(Property).where(Property.id == hackney).values(postcode="N1 1AA"))
    assert location() == first
    monkeypatch.setattr(shared, "MAX_AGE_S", 0.0)
    assert location()["properties"]["area"] == "N1"

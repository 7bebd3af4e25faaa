"""A device moved to another home: its readings from the move on belong to the new Thing."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from fleet.models import Borough, Device, Reading
from fleet.registry import places
from tests.feed.conftest import FeedWorld

BASE = "/sta/v1.1"
DEVICE = "cs-hackney-0001"


def test_readings_after_a_move_belong_to_the_new_home(
    client: TestClient, feed_world: FeedWorld
) -> None:
    admin = feed_world.headers("admin")
    assert client.get(f"{BASE}/Things", headers=admin).status_code == 200  # Thing 1 is open
    with feed_world.ctx.sessions.begin() as s:
        # Within the borough: a device in service never moves to another one (it is
        # decommissioned there and enrolled anew, tests/security/test_cross_borough_moves.py).
        hackney = s.scalars(select(Borough).where(Borough.code == "hackney")).one()
        prop = places.create_property(
            s, borough=hackney, reference="HACKNEY-0002", address="2 Other Street"
        )
        new_placement = places.create_placement(s, prop=prop, room="kitchen").id

    response = client.put(
        f"/api/v1/devices/{DEVICE}/placement",
        json={"placement_id": new_placement},
        headers=admin,
    )
    assert response.status_code == 200, response.text
    with feed_world.ctx.sessions.begin() as s:
        device = s.scalars(select(Device).where(Device.device_id == DEVICE)).one()
        moved_at = device.placement_changed_at
        assert moved_at is not None
        # Ingest stores readings taken before the feed next looks at placements.
        before = Reading(
            device_pk=device.id,
            metric="temperature",
            ts=moved_at - timedelta(seconds=1),
            value=-5.0,
            unit="Cel",
        )
        after = Reading(
            device_pk=device.id,
            metric="temperature",
            ts=moved_at + timedelta(milliseconds=1),
            value=-7.0,
            unit="Cel",
        )
        s.add_all([before, after])
        s.flush()
        before_id, after_id = before.id, after.id

    owner = client.get(f"{BASE}/Observations({after_id})/Datastream/Thing", headers=admin).json()
    assert owner["@iot.id"] != 1
    assert owner["properties"]["borough"] == "Hackney"
    assert owner["properties"]["propertyReference"] == "HACKNEY-0002"
    earlier = client.get(f"{BASE}/Observations({before_id})/Datastream/Thing", headers=admin)
    assert earlier.json()["@iot.id"] == 1
    # The Thing's HistoricalLocation says when it was really placed.
    historical = client.get(f"{BASE}/HistoricalLocations({owner['@iot.id']})").json()
    assert historical["time"] == moved_at.isoformat().replace("+00:00", "Z")
    # The old home's Datastream does not hold the new tenant's readings.
    old_stream = client.get(
        f"{BASE}/Datastreams(1)/Observations?$filter=id eq {after_id}",
        headers=feed_world.headers("staff_hackney"),
    ).json()
    assert old_stream["value"] == []

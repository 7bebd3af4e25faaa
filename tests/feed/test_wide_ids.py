"""64-bit integers in requests, on SQLite and PostgreSQL alike: reading ids past 2^31 (the
readings table's keys are 64-bit) and out-of-range decimals answered the same way on both."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from fastapi.testclient import TestClient
from sqlalchemy import select

from fleet.feed import snapshot
from fleet.feed.live import NewReading, messages_for
from fleet.models import Device, Reading
from tests.feed.conftest import POINTS, SERVICE_ROOT, STEP, T0, FeedWorld

BASE = "/sta/v1.1"
WIDE_ID = 3_000_000_000  # past int4 (2^31 - 1)
WIDE_TIME = T0 + POINTS * STEP  # after the seeded readings


def wide_reading(world: FeedWorld) -> NewReading:
    """Hackney's temperature reading with an id a 32-bit integer cannot hold."""
    with world.ctx.sessions.begin() as s:
        device = s.scalars(select(Device).where(Device.device_id == "cs-hackney-0001")).one()
        s.add(
            Reading(
                id=WIDE_ID,
                device_pk=device.id,
                metric="temperature",
                ts=WIDE_TIME,
                value=21.25,
                unit="Cel",
            )
        )
        return NewReading(WIDE_ID, device.id, "temperature", WIDE_TIME, 21.25)


def answer(client: TestClient, path: str) -> Any:
    response = client.get(f"{BASE}/{path}")
    assert response.status_code == 200, (path, response.text)
    return response.json()


def ids(body: dict[str, Any]) -> list[int]:
    return [e["@iot.id"] for e in body["value"]]


def test_an_observation_past_2_31_is_served_by_its_self_link(
    client: TestClient, feed_world: FeedWorld
) -> None:
    reading = wide_reading(feed_world)
    # The live feed announces it with a self link; following the link gives the same entity.
    snapshot.sync_committed(feed_world.ctx.sessions)
    with feed_world.ctx.sessions() as s:
        snap = snapshot.load(s)
    messages = dict(messages_for([reading], snap, service_root=SERVICE_ROOT))
    published = json.loads(messages["v1.1/Observations"])
    link = urlsplit(published["@iot.selfLink"]).path
    assert link == f"{BASE}/Observations({WIDE_ID})"
    response = client.get(link)
    assert response.status_code == 200, response.text
    assert response.json() == published
    assert answer(client, f"Observations({WIDE_ID})/Datastream")["@iot.id"] == 1
    assert answer(client, f"Datastreams(1)/Observations({WIDE_ID})")["result"] == 21.25


def test_filters_with_integers_past_2_31(client: TestClient, feed_world: FeedWorld) -> None:
    wide_reading(feed_world)
    name = "Datastream/ObservedProperty/name"
    # Two homes measure temperature: the seeded points of each, and the wide reading.
    temperatures = 2 * POINTS + 1
    for path, expected in (
        (f"Observations?$filter=id eq {WIDE_ID}", [WIDE_ID]),
        ("Observations?$filter=id ge 2147483648", [WIDE_ID]),
        (f"Datastreams(1)/Observations?$filter=id eq {WIDE_ID}", [WIDE_ID]),
        (f"FeaturesOfInterest(1)/Observations?$filter=id gt {WIDE_ID - 1}", [WIDE_ID]),
        (f"Observations?$filter=id div {WIDE_ID} eq 1", [WIDE_ID]),
        (f"Observations?$filter=id mod {WIDE_ID} eq 0", [WIDE_ID]),
        ("Observations?$filter=result gt 3000000000", []),
        (f"Observations?$filter=Datastream/id eq {WIDE_ID}", []),
        (f"Observations?$filter=Datastream/Thing/id eq {WIDE_ID}", []),
    ):
        assert ids(answer(client, f"{path}&$top=1000")) == expected, path
    for path, expected_count in (
        (f"substring({name}, 1, 99999999999) eq 'emperature'", temperatures),
        (f"substring({name}, 1 add 0, 2 mul 5000000000) eq 'emperature'", temperatures),
        (f"substring({name}, 99999999999) eq '' and {name} eq 'temperature'", temperatures),
        # Computed positions: 0 for the seeded readings, 1 for the wide one.
        (f"substring({name}, id div {WIDE_ID}) eq 'temperature'", temperatures - 1),
        (f"substring({name}, id div {WIDE_ID}, 99999999999) eq 'emperature'", 1),
    ):
        body = answer(client, f"Observations?$filter={path}&$count=true&$top=0")
        assert body["@iot.count"] == expected_count, path


def test_decimals_a_double_cannot_hold_are_refused_briefly_on_every_backend(
    client: TestClient,
) -> None:
    huge = "9" * 400
    for path in (
        "Observations?$filter=result gt 1e400",
        "Observations?$filter=result gt -1e400",
        "Observations?$filter=result lt 1e-400",
        f"Observations?$filter=result gt {huge}.5",
        "Things?$filter=id gt 1e400",
    ):
        response = client.get(f"{BASE}/{path}")
        assert response.status_code == 400, (path, response.text)
        message = response.json()["message"]
        assert "out of range" in message and len(message) < 200, message
    # Zero, whatever its exponent, is a value every backend takes.
    for path in ("Observations?$filter=result gt 0e-99999", "Observations?$filter=result gt 1e308"):
        assert client.get(f"{BASE}/{path}").status_code == 200, path

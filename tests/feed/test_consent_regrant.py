"""Consent granted again publishes from that moment on: nothing taken before it, on any path."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from fleet.feed import snapshot
from fleet.feed.live import NewReading, messages_for
from fleet.models import AuditEntry, Device, Reading
from fleet.models.base import utcnow
from tests.feed.conftest import SERVICE_ROOT, FeedWorld

BASE = "/sta/v1.1"
EXPORT = "/feed/v1/export.csv?borough=camden&start=2025-01-01&end=2100-01-01"


def add_reading(world: FeedWorld, ts: datetime, value: float) -> int:
    with world.ctx.sessions.begin() as s:
        device = s.scalars(select(Device).where(Device.device_id == "cs-camden-0001")).one()
        reading = Reading(device_pk=device.id, metric="temperature", ts=ts, value=value, unit="Cel")
        s.add(reading)
        s.flush()
        return reading.id


def consent(client: TestClient, world: FeedWorld, state: str) -> dict[str, Any]:
    response = client.put(
        f"/api/v1/feed/consent/{world.property_ids['camden']}",
        json={"state": state},
        headers=world.headers("staff_camden"),
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def published_ids(client: TestClient, world: FeedWorld) -> set[int]:
    """Reading ids of Camden's temperature (Datastream 4) on every REST path, every level."""
    found: set[int] = set()
    for headers in ({}, world.headers("staff_camden")):
        for path in (
            "Datastreams(4)/Observations?$top=1000",
            "FeaturesOfInterest(2)/Observations?$top=1000&$filter=Datastream/id eq 4",
            "Observations?$top=1000&$filter=Datastream/id eq 4",
            "Observations?$top=1000&$resultFormat=dataArray&$select=id",
        ):
            response = client.get(f"{BASE}/{path}", headers=headers)
            assert response.status_code == 200, response.text
            for entry in response.json()["value"]:
                if "dataArray" in entry:
                    if entry["Datastream@iot.navigationLink"].endswith("Datastreams(4)"):
                        found |= {row[0] for row in entry["dataArray"]}
                else:
                    found.add(entry["@iot.id"])
        nested = "Datastreams($filter=id eq 4;$expand=Observations($top=1000))"
        expanded = client.get(f"{BASE}/Things(2)?$expand={nested}", headers=headers).json()
        found |= {o["@iot.id"] for o in expanded["Datastreams"][0]["Observations"]}
    return found


def test_readings_taken_while_withdrawn_are_never_published(
    client: TestClient, feed_world: FeedWorld
) -> None:
    assert consent(client, feed_world, "withdrawn")["deleted_readings"] > 0
    # The sensor keeps measuring: the landlord's damp and mould duty needs its readings.
    while_withdrawn = add_reading(feed_world, utcnow() - timedelta(microseconds=1), 130.0)
    granted = consent(client, feed_world, "granted")
    assert granted["deleted_readings"] == 0
    after = add_reading(feed_world, utcnow() + timedelta(minutes=1), 131.0)
    # Buffered by the device and delivered only now, but taken while consent was withdrawn.
    late = add_reading(feed_world, utcnow() - timedelta(hours=1), 129.0)

    assert published_ids(client, feed_world) == {after}
    for headers in ({}, feed_world.headers("staff_camden")):
        for reading_id in (while_withdrawn, late):
            assert (
                client.get(f"{BASE}/Observations({reading_id})", headers=headers).status_code == 404
            )
        assert client.get(f"{BASE}/Observations({after})", headers=headers).status_code == 200
        rows = client.get(EXPORT, headers=headers).text.splitlines()[1:]
        assert [row.split(",")[-1] for row in rows] == ["131.0"]

    snapshot.sync_committed(feed_world.ctx.sessions)
    with feed_world.ctx.sessions() as s:
        stored = s.execute(
            select(Reading.id, Reading.device_pk, Reading.metric, Reading.ts, Reading.value)
        ).all()
        snap = snapshot.load(s)
        entry = s.scalars(
            select(AuditEntry).where(AuditEntry.action == "feed.consent_granted")
        ).one()
        kept = s.scalar(select(func.count()).select_from(Reading).where(Reading.value > 100))
    assert kept == 3  # stored for the risk engine, only never published
    assert entry.detail is not None and "published_since" in entry.detail
    messages = messages_for([NewReading(*r) for r in stored], snap, service_root=SERVICE_ROOT)
    values: list[float] = []
    for topic, payload in messages:
        body = json.loads(payload)
        if isinstance(body, list):  # SenML: Camden's temperature Datastream only
            values += [r["v"] for r in body] if topic.endswith("/ds/4") else []
        elif body["@iot.id"] in (while_withdrawn, late, after):
            values.append(body["result"])
    # Three STA topics per Observation, and the public and full SenML packs.
    assert values == [131.0] * 5


def test_readings_kept_internal_stay_unpublished_after_a_new_grant(
    client: TestClient, feed_world: FeedWorld
) -> None:
    client.put(
        "/api/v1/feed/policies/camden",
        json={"withdrawal_action": "keep_internal"},
        headers=feed_world.headers("staff_camden"),
    )
    before = published_ids(client, feed_world)
    assert before
    consent(client, feed_world, "withdrawn")
    consent(client, feed_world, "granted")
    # Kept for the landlord's repair duties only: the Thing is back, its old readings are not.
    assert client.get(f"{BASE}/Things(2)").status_code == 200
    assert published_ids(client, feed_world) == set()
    after = add_reading(feed_world, utcnow() + timedelta(minutes=1), 131.0)
    assert published_ids(client, feed_world) == {after}


def test_a_first_grant_hides_nothing(client: TestClient, feed_world: FeedWorld) -> None:
    before = published_ids(client, feed_world)
    consent(client, feed_world, "granted")
    consent(client, feed_world, "granted")
    assert published_ids(client, feed_world) == before

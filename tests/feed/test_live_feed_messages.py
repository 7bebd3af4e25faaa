"""MQTT Observations are the complete entity, exactly as a GET of it answers."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from fleet.feed.live import NewReading, messages_for
from fleet.feed.snapshot import load, sync_committed
from fleet.models import Reading
from tests.feed.conftest import SERVICE_ROOT, FeedWorld


def test_mqtt_observation_equals_the_rest_entity(client: TestClient, feed_world: FeedWorld) -> None:
    sync_committed(feed_world.ctx.sessions)
    with feed_world.ctx.sessions() as s:
        rows = s.query(
            Reading.id, Reading.device_pk, Reading.metric, Reading.ts, Reading.value
        ).all()
        snap = load(s)
    messages = messages_for([NewReading(*r) for r in rows], snap, service_root=SERVICE_ROOT)
    observations = [json.loads(p) for t, p in messages if t == "v1.1/Observations"]
    assert observations
    for observation in observations:
        rest = client.get(f"/sta/v1.1/Observations({observation['@iot.id']})").json()
        assert observation == rest
        # The Datastream (and its unit) is one link away.
        link = observation["Datastream@iot.navigationLink"].removeprefix("http://testserver")
        assert client.get(link).json()["unitOfMeasurement"]["symbol"] in ("°C", "%")

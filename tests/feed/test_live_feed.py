"""Live feed end to end: virtual devices (real firmware in the VM) → ingest → MQTT feed."""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import paho.mqtt.client as mqtt
import pytest

from fleet.api.routes.sensorthings import MQTT_CONFORMANCE
from fleet.registry import places
from fleet.registry.devices import register_device
from fleet.simulator import VirtualFleet
from tests.firmware.conftest import wait_until
from tests.fleet.server import BACKENDS, RunningFleet, fleet_on_backend

pytestmark = [pytest.mark.vm]


@pytest.fixture(params=BACKENDS)
def fleet(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningFleet]:
    with fleet_on_backend(request, tmp_path) as running:
        yield running


def test_subscriber_receives_observations_from_virtual_devices(
    fleet: RunningFleet, tmp_path: Path
) -> None:
    devices = VirtualFleet(
        1,
        tmp_path / "devices",
        broker_host=fleet.broker.host,
        broker_port=fleet.broker.port,
        sample_interval_s=2,
        health_interval_s=30,
        base_seed=70,
    )
    (device_id,) = devices.device_ids
    with fleet.ctx.sessions.begin() as s:
        borough = places.create_borough(s, code="hackney", name="Hackney")
        prop = places.create_property(
            s, borough=borough, reference="H-LIVE-1", address="2 Secret Row", postcode="E8 1AA"
        )
        placement = places.create_placement(s, prop=prop, room="kitchen")
        device = register_device(s, device_id=device_id, borough_id=borough.id, report_interval_s=2)
        device.placement_id = placement.id

    http = httpx.Client(base_url=fleet.base_url, timeout=10)
    received: queue.Queue[tuple[str, bytes, float]] = queue.Queue()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="feed-subscriber")
    sub.on_message = lambda c, u, msg: received.put((msg.topic, bytes(msg.payload), time.time()))
    # Where the service root says the broker is, as any consumer would find it.
    root = http.get("/sta/v1.1").json()["serverSettings"]
    (endpoint,) = root[MQTT_CONFORMANCE]["endpoints"]
    broker = urlsplit(endpoint)
    assert (broker.hostname, broker.port) == (fleet.broker.host, fleet.broker.port)
    sub.connect(broker.hostname, broker.port)
    sub.loop_start()

    def temperature_datastream() -> int | None:
        # Polled fast, so with a token: anonymous callers have a tighter rate limit.
        response = http.get(
            "/sta/v1.1/Datastreams",
            params={"$filter": "ObservedProperty/name eq 'temperature'"},
            headers={"Authorization": f"Bearer {fleet.ctx.admin_token}"},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        return body["value"][0]["@iot.id"] if body["value"] else None

    try:
        with devices:
            ds_id = wait_until(temperature_datastream, 90, "a temperature Datastream")
            topic = f"v1.1/Datastreams({ds_id})/Observations"
            sub.subscribe(topic, qos=1)
            subscribed = time.time()
            got_topic, payload, arrived = received.get(timeout=20)
        assert got_topic == topic
        assert arrived - subscribed < 20
        observation = json.loads(payload)
        assert set(observation) == {
            "@iot.id",
            "@iot.selfLink",
            "phenomenonTime",
            "resultTime",
            "result",
            "Datastream@iot.navigationLink",
            "FeatureOfInterest@iot.navigationLink",
        }
        assert observation["Datastream@iot.navigationLink"].endswith(
            f"/sta/v1.1/Observations({observation['@iot.id']})/Datastream"
        )
        sampled = datetime.fromisoformat(observation["phenomenonTime"].replace("Z", "+00:00"))
        # Published within seconds of the device taking the sample.
        assert arrived - sampled.timestamp() < 15
        stored = http.get(f"/sta/v1.1/Observations({observation['@iot.id']})").json()
        assert stored["result"] == observation["result"]
        assert (
            http.get(f"/sta/v1.1/Observations({observation['@iot.id']})/Datastream").json()[
                "@iot.id"
            ]
            == ds_id
        )
        assert device_id not in payload.decode()
    finally:
        sub.loop_stop()
        sub.disconnect()
        http.close()

"""The SensorThings service root: conformance claims and where consumers find the broker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from fleet.api.app import create_app
from fleet.broker.url import BrokerAddress
from fleet.core.context import FleetContext
from tests.feed.conftest import FeedWorld

BASE = "/sta/v1.1"
MQTT_CLASS = (
    "http://www.opengis.net/spec/iot_sensing/1.1/req/receive-updates-via-mqtt/receive-updates"
)


@pytest.fixture
def ctx(feed_world: FeedWorld) -> Iterator[FleetContext]:
    yield feed_world.ctx


def endpoints(ctx: FleetContext, broker: BrokerAddress | None = None, **settings: str) -> list[str]:
    ctx.settings = ctx.settings.model_copy(update=settings)
    with TestClient(create_app(ctx, broker=broker)) as client:
        body = client.get(BASE).json()
    found: list[str] = body["serverSettings"][MQTT_CLASS]["endpoints"]
    return found


def test_external_broker_is_given_without_its_credentials(ctx: FleetContext) -> None:
    url = "mqtt://fleet-ingest:S3cretBrokerPass@broker.example.org:1884"
    found = endpoints(ctx, BrokerAddress.parse(url), mqtt_url=url)
    assert found == ["mqtt://broker.example.org:1884"]
    assert "S3cret" not in repr(found) and "fleet-ingest" not in repr(found)


def test_configured_consumer_url_wins_and_is_stripped_of_credentials(ctx: FleetContext) -> None:
    found = endpoints(
        ctx,
        BrokerAddress.parse("mqtt://fleet-ingest:pw@10.0.0.5:1883"),
        mqtt_url="mqtt://fleet-ingest:pw@10.0.0.5:1883",
        feed_mqtt_url="mqtts://reader:pw@mqtt.example.org",
    )
    assert found == ["mqtts://mqtt.example.org:8883"]


def test_embedded_broker_is_given_at_the_port_it_really_listens_on(ctx: FleetContext) -> None:
    # Configured for 1883, but that port was taken and the broker moved to a free one.
    assert ctx.settings.mqtt_url is None
    assert endpoints(ctx, BrokerAddress("127.0.0.1", 44807)) == ["mqtt://127.0.0.1:44807"]


def test_broker_on_every_interface_is_named_by_the_callers_host(ctx: FleetContext) -> None:
    # TestClient calls the API as http://testserver.
    assert endpoints(ctx, BrokerAddress("0.0.0.0", 1883)) == ["mqtt://testserver:1883"]

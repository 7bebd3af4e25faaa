"""Retiring a device clears what the broker keeps for its hardware id: the same sensor,
enrolled again, must not apply the retired device's settings or find its update offer."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest

from fleet.broker.url import BrokerAddress
from fleet.core.context import build_context
from fleet.core.settings import Settings
from fleet.ingest.profile import device_topic
from tests.firmware.conftest import wait_until
from tests.fleet.conftest import World
from tests.fleet.server import running_fleet

pytestmark = pytest.mark.mosquitto
DEV = "cs-hackney-0001"
CONFIG, OTA = device_topic(DEV, "config"), device_topic(DEV, "ota")


def _retained(broker: BrokerAddress, topic: str) -> bytes | None:
    """What a new subscriber finds retained on `topic`: the broker sends it right after the
    subscription, so a marker published after the SUBACK arrives behind it."""
    got: dict[str, bytes] = {}
    marker = f"test/marker/{topic}"
    done = threading.Event()

    def on_message(_c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == marker:
            done.set()
        elif msg.retain:
            got[msg.topic] = bytes(msg.payload)

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_message = on_message
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        client.subscribe([(topic, 1), (marker, 1)])
        wait_until(lambda: client.publish(marker, b"x", qos=1).rc == 0, 10, "the marker sent")
        assert done.wait(10), "the marker never came back"
        return got.get(topic)
    finally:
        client.loop_stop()
        client.disconnect()


def test_retiring_clears_the_ids_retained_settings_and_offer(
    tmp_path: Path, mosquitto: BrokerAddress
) -> None:
    settings = Settings(
        environment="test",
        data_dir=tmp_path / "fleet",
        database_url=f"sqlite:///{tmp_path / 'fleet.sqlite3'}",
        mqtt_url=mosquitto.url,
    )
    ctx = build_context(settings)
    try:
        world = World(ctx)
        with running_fleet(ctx) as running:
            http = httpx.Client(
                base_url=running.base_url, headers=world.headers("staff_hackney"), timeout=30
            )
            changed = http.put(f"/api/v1/devices/{DEV}/config", json={"sample_interval_s": 300})
            assert changed.status_code == 202, changed.text
            stale_offer = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
            stale_offer.connect(mosquitto.host, mosquitto.port)
            stale_offer.loop_start()
            stale_offer.publish(
                OTA, b'{"sv":1,"id":"job-1"}', qos=1, retain=True
            ).wait_for_publish()
            stale_offer.loop_stop()
            wait_until(lambda: _retained(mosquitto, CONFIG), 10, "the settings retained")
            wait_until(lambda: _retained(mosquitto, OTA), 10, "the offer retained")

            assert http.delete(f"/api/v1/devices/{DEV}").status_code == 204
            wait_until(lambda: _retained(mosquitto, CONFIG) is None, 10, "the settings cleared")
            wait_until(lambda: _retained(mosquitto, OTA) is None, 10, "the offer cleared")
    finally:
        ctx.close()

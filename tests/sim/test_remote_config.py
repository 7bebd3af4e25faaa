"""A retained config or a set-config command that would change Wi-Fi or broker settings is
refused by the device itself, with the reason in its answer: it keeps its last good config
and stays connected (a wrong broker would cut it off from the fleet that could correct it)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.publish as publish
import pytest

from fleet.simulator import VirtualDevice
from tests.contracts.schemas import schema_for_topic_leaf
from tests.firmware.conftest import Broker, Subscriber, wait_until

pytestmark = [pytest.mark.vm, pytest.mark.mosquitto]


def test_connection_settings_are_refused_and_the_last_good_config_kept(
    tmp_path: Path,
    micropython_bin: Path,
    test_broker: Broker,
    subscriber: Callable[..., Subscriber],
) -> None:
    dev = VirtualDevice(
        data_dir=tmp_path,
        seed=63,
        broker_host=test_broker.host,
        broker_port=test_broker.port,
        sample_interval_s=60,
        health_interval_s=1,
        heapsize="256K",
    )
    base = f"cs/v1/d/{dev.device_id}"
    sub = subscriber(f"{base}/cmd/ack", f"{base}/health")
    ack_schema = schema_for_topic_leaf("cmd/ack")

    def send(topic: str, payload: object, retain: bool = False) -> None:
        body = json.dumps(payload).encode()
        publish.single(
            topic, body, qos=1, retain=retain, hostname=test_broker.host, port=test_broker.port
        )

    def ack(cid: str) -> dict:
        def find() -> dict | None:
            for m in sub.on(f"{base}/cmd/ack"):
                a = json.loads(m.payload)
                if a["id"] == cid:
                    return a
            return None

        found: dict = wait_until(find, 30, f"the ack of {cid}")
        ack_schema.validate(found)
        return found

    with dev:
        sub.wait_for(f"{base}/health", 1)
        saved = dev.config_path.read_text()
        send(
            f"{base}/config",
            {"version": 5, "mqtt": {"host": "10.255.255.1"}, "wifi": {"ssid": "typo"}},
            retain=True,
        )
        a = ack("config:5")
        assert not a["ok"] and "cannot be changed remotely" in a["error"], a
        assert "keeping version 1" in a["error"]
        send(
            f"{base}/cmd",
            {
                "sv": 1,
                "id": "w1",
                "op": "set-config",
                "args": {"config": {"version": 6, "wifi": {"ssid": "x"}}},
            },
        )
        a = ack("w1")
        assert not a["ok"] and "'wifi' cannot be changed remotely" in a["error"], a
        assert dev.config_path.read_text() == saved
        # Still connected with the provisioned settings, and never restarted.
        seen = len(sub.on(f"{base}/health"))
        sub.wait_for(f"{base}/health", seen + 2)
        assert dev.is_running and dev.boots == 1
    publish.single(
        f"{base}/config", b"", retain=True, hostname=test_broker.host, port=test_broker.port
    )

"""Commands on cmd and desired config on config, answered on cmd/ack, against a running
virtual device. Malformed or unknown input gets an error ack and never stops the node."""

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


def test_commands_and_remote_config(
    tmp_path: Path,
    micropython_bin: Path,
    test_broker: Broker,
    subscriber: Callable[..., Subscriber],
) -> None:
    dev = VirtualDevice(
        data_dir=tmp_path,
        seed=61,
        broker_host=test_broker.host,
        broker_port=test_broker.port,
        sample_interval_s=60,
        health_interval_s=1,
        heapsize="256K",
    )
    base = f"cs/v1/d/{dev.device_id}"
    sub = subscriber(f"{base}/cmd/ack", f"{base}/health", f"{base}/up")
    ack_schema = schema_for_topic_leaf("cmd/ack")

    def send(topic: str, payload: object, retain: bool = False) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        publish.single(
            topic, body, qos=1, retain=retain, hostname=test_broker.host, port=test_broker.port
        )

    def ack(cid: str | None) -> dict:
        def find() -> dict | None:
            for m in sub.on(f"{base}/cmd/ack"):
                a = json.loads(m.payload)
                if a["id"] == cid:
                    return a
            return None

        found: dict = wait_until(find, 30, f"the ack of {cid}")
        ack_schema.validate(found)
        return found

    def health() -> dict:
        return {
            r["n"]: r.get("v", r.get("vs", r.get("vb")))
            for r in json.loads(sub.on(f"{base}/health")[-1].payload)
        }

    with dev:
        sub.wait_for(f"{base}/health", 1)
        send(f"{base}/cmd", {"sv": 1, "id": "c1", "op": "sample-now"})
        a = ack("c1")
        assert a["ok"] and 10 < a["result"]["values"]["temperature"] < 35
        sub.wait_for(f"{base}/up", 1)  # the reading went out at once, not at the next slot

        send(f"{base}/cmd", {"sv": 1, "id": "c2", "op": "self-destruct"})
        assert ack("c2") == {
            "sv": 1,
            "id": "c2",
            "ok": False,
            "error": "unknown op 'self-destruct'",
        }
        send(f"{base}/cmd", b"{not json")
        assert not ack(None)["ok"]
        send(f"{base}/cmd", {"sv": 1, "id": "c3", "op": "identify", "args": {"seconds": 1}})
        assert ack("c3")["ok"]

        # An invalid config is refused with the reason; the device keeps its config.
        send(
            f"{base}/cmd",
            {
                "sv": 1,
                "id": "c4",
                "op": "set-config",
                "args": {"config": {"version": 2, "sample_interval_s": 0}},
            },
        )
        a = ack("c4")
        assert not a["ok"] and "sample_interval_s" in a["error"]
        send(f"{base}/config", {"version": 3, "device_id": "cs-someone-else"}, retain=True)
        a = ack("config:3")
        assert not a["ok"] and "device_id" in a["error"]
        assert health()["config_version"] == 1

        # A valid retained config is applied: saved, acked, and the node restarts with it.
        send(f"{base}/config", {"version": 4, "health_interval_s": 2}, retain=True)
        assert ack("config:4")["ok"]
        wait_until(lambda: health()["config_version"] == 4, 30, "config version 4 in health")
        assert health()["reset_cause"] == "config"
        saved = json.loads(dev.config_path.read_text())
        assert saved["version"] == 4 and saved["health_interval_s"] == 2

        send(f"{base}/cmd", {"sv": 1, "id": "c5", "op": "reboot"})
        assert ack("c5")["ok"]
        wait_until(lambda: health()["reset_cause"] == "command", 30, "a reboot by command")

        send(f"{base}/cmd", {"sv": 1, "id": "c6", "op": "enter-maintenance"})
        assert ack("c6")["ok"]
        wait_until(lambda: "maintenance mode" in dev.log_path.read_text(), 30, "maintenance")
        assert (dev.device_dir / "maintenance").exists()
        assert "Traceback" not in dev.log_path.read_text()

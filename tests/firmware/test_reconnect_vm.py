"""A mains node whose connection dropped serves its inbox again once it is back: a command
sent after the reconnect is answered, whether the broker went away or the access point."""

from __future__ import annotations

import json
from pathlib import Path

import paho.mqtt.publish as publish
import pytest

from fleet.simulator import VirtualDevice
from tests.firmware.conftest import Broker, Subscriber, wait_until
from tests.sim.fleetsink import RestartableBroker

pytestmark = [pytest.mark.vm, pytest.mark.mosquitto]


def _ack(broker: RestartableBroker, device_id: str, cid: str) -> dict:
    """Send a command and wait for its answer on cmd/ack."""
    base = f"cs/v1/d/{device_id}"
    sub = Subscriber(Broker(broker.host, broker.port), (f"{base}/cmd/ack",))
    try:
        body = json.dumps({"sv": 1, "id": cid, "op": "sample-now"}).encode()
        publish.single(f"{base}/cmd", body, qos=1, hostname=broker.host, port=broker.port)

        def find() -> dict | None:
            acks = [json.loads(m.payload) for m in sub.on(f"{base}/cmd/ack")]
            return next((a for a in acks if a["id"] == cid), None)

        found: dict = wait_until(find, 30, f"the answer to command {cid}")
        return found
    finally:
        sub.close()


@pytest.mark.parametrize("drop", ["broker", "wifi"])
def test_commands_answered_after_reconnect(
    tmp_path: Path, micropython_bin: Path, drop: str
) -> None:
    broker = RestartableBroker(tmp_path / "broker")
    broker.start()
    dev = VirtualDevice(
        data_dir=tmp_path,
        seed=71,
        broker_port=broker.port,
        sample_interval_s=60,
        health_interval_s=60,
        heapsize="256K",
    )

    def onlines() -> int:
        return dev.log_path.read_text().count("online as") if dev.log_path.exists() else 0

    try:
        dev.start()
        wait_until(lambda: onlines() == 1, 30, "the device online")
        assert _ack(broker, dev.device_id, "before")["ok"]

        if drop == "broker":
            broker.stop()
        else:
            dev.update_sim(wifi={"fail": True})
        wait_until(lambda: "connection lost" in dev.log_path.read_text(), 30, "the drop noticed")
        if drop == "broker":
            broker.start()
        else:
            dev.update_sim(wifi={"fail": False})
        wait_until(lambda: onlines() == 2, 60, "the device online again")

        answer = _ack(broker, dev.device_id, "after")
        assert answer["ok"] and 10 < answer["result"]["values"]["temperature"] < 35
        assert dev.is_running
        assert "Traceback" not in dev.log_path.read_text()
    finally:
        dev.stop()
        broker.stop()

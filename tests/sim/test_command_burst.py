"""More commands at once than the node's inbox holds: every one is answered, once. A mains
node busy blinking receives a burst; a battery node wakes to a dozen commands queued while
it slept. What the inbox has no room for stays with the broker until a new connection."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.publish as publish
import pytest

from fleet.simulator import VirtualDevice
from tests.firmware.conftest import Broker, Subscriber, wait_until

pytestmark = [pytest.mark.vm, pytest.mark.mosquitto]

BURST = 12  # the inbox holds 8


def _send(broker: Broker, device_id: str, commands: list[dict]) -> None:
    publish.multiple(
        [
            {"topic": f"cs/v1/d/{device_id}/cmd", "payload": json.dumps(c), "qos": 1}
            for c in commands
        ],
        hostname=broker.host,
        port=broker.port,
    )


def _answers(sub: Subscriber, device_id: str, n: int) -> Counter[str]:
    topic = f"cs/v1/d/{device_id}/cmd/ack"

    def ids() -> list[str]:
        return [json.loads(m.payload)["id"] for m in sub.on(topic)]

    wait_until(lambda: len(set(ids())) >= n, 90, f"answers to {n} commands")
    assert all(json.loads(m.payload)["ok"] for m in sub.on(topic))
    return Counter(ids())


def test_a_burst_during_a_blink_is_answered_in_full(
    tmp_path: Path,
    micropython_bin: Path,
    test_broker: Broker,
    subscriber: Callable[..., Subscriber],
) -> None:
    dev = VirtualDevice(
        data_dir=tmp_path,
        seed=103,
        broker_host=test_broker.host,
        broker_port=test_broker.port,
        sample_interval_s=60,
        health_interval_s=600,
    )
    base = f"cs/v1/d/{dev.device_id}"
    sub = subscriber(f"{base}/cmd/ack", f"{base}/health")
    with dev:
        sub.wait_for(f"{base}/health", 1)
        blink = {"sv": 1, "id": "blink", "op": "identify", "args": {"seconds": 3}}
        burst = [{"sv": 1, "id": f"s{i}", "op": "sample-now"} for i in range(BURST)]
        _send(test_broker, dev.device_id, [blink, *burst])
        answers = _answers(sub, dev.device_id, BURST + 1)
        log = dev.log_path.read_text()
    assert answers == Counter(["blink"] + [f"s{i}" for i in range(BURST)])
    # Those held back came with a new connection, asked for once the node had caught up.
    assert "held messages: reconnecting" in log
    assert [line.split()[-1] for line in log.splitlines() if "] command " in line] == ["blink"] + [
        f"s{i}" for i in range(BURST)
    ]


def test_commands_queued_during_sleep_are_all_run_at_the_next_uplink(
    tmp_path: Path,
    micropython_bin: Path,
    test_broker: Broker,
    subscriber: Callable[..., Subscriber],
) -> None:
    dev = VirtualDevice(
        data_dir=tmp_path,
        seed=104,
        broker_host=test_broker.host,
        broker_port=test_broker.port,
        board="firebeetle-sht41-ds18b20-2aa",
        sample_interval_s=900,
        health_interval_s=3600,
        time_scale=300,
    )
    base = f"cs/v1/d/{dev.device_id}"
    sub = subscriber(f"{base}/cmd/ack", f"{base}/health", f"{base}/status")

    def asleep() -> bool:
        st = sub.on(f"{base}/status")
        return bool(st) and json.loads(st[-1].payload)["state"] == "sleeping"

    with dev:
        wait_until(asleep, 60, "the first sleep")
        uplinks = len(sub.on(f"{base}/health"))
        cmds = [
            {"sv": 1, "id": f"b{i}", "op": "identify", "args": {"seconds": 1}} for i in range(BURST)
        ]
        _send(test_broker, dev.device_id, cmds)
        answers = _answers(sub, dev.device_id, BURST)
        # All at one uplink (the next one), which ended as usual: asleep, not offline.
        assert len(sub.on(f"{base}/health")) == uplinks + 1
        wait_until(asleep, 30, "sleep after the uplink")
        log = dev.log_path.read_text()
    assert answers == Counter(f"b{i}" for i in range(BURST))
    assert "reconnecting for 4 held commands" in log

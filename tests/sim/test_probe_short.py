"""A wall probe whose cable is shorted to GND (water in a damp wall) is a sensor fault on
the battery board with the probe: flagged in health, never a 0.0 degC surface reading that
would make the fleet compute condensation on the wall."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from fleet.simulator import VirtualDevice
from tests.firmware.conftest import Broker, Subscriber, wait_until

pytestmark = [pytest.mark.vm, pytest.mark.mosquitto]


def _faults(payload: bytes) -> str:
    return next(r["vs"] for r in json.loads(payload) if r["n"] == "sensor_faults")


def test_a_shorted_probe_is_flagged_and_sends_no_surface_reading(
    tmp_path: Path,
    micropython_bin: Path,
    test_broker: Broker,
    subscriber: Callable[..., Subscriber],
) -> None:
    dev = VirtualDevice(
        data_dir=tmp_path,
        seed=64,
        board="firebeetle-sht41-ds18b20-2aa",
        broker_host=test_broker.host,
        broker_port=test_broker.port,
        sample_interval_s=900,
        time_scale=9000,
        config={"uplink_every": 1},
        faults={"ds18b20": "short"},
        heapsize="256K",
    )
    health = f"cs/v1/d/{dev.device_id}/health"
    up = f"cs/v1/d/{dev.device_id}/up"
    sub = subscriber(health, up)

    def surface() -> list[float]:
        return [
            r["v"]
            for m in sub.on(up)
            for r in json.loads(m.payload)
            if r["n"] == "surface_temperature"
        ]

    with dev:
        wait_until(lambda: len(sub.on(health)) >= 3, 60, "three uplinks with the probe shorted")
        assert all(_faults(m.payload) == "ds18b20:nack" for m in sub.on(health))
        wait_until(lambda: [r for m in sub.on(up) for r in json.loads(m.payload)], 30, "readings")
        assert surface() == []  # the air sensor's readings went out; the probe's did not
        dev.set_faults({})  # the cable is dried out or replaced
        wait_until(lambda: _faults(sub.on(health)[-1].payload) == "", 60, "the flag to clear")
        wait_until(surface, 30, "surface readings again")
        assert dev.is_running, dev.log_path.read_text()[-2000:]
    assert 0.0 not in surface()

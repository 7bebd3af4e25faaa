"""NTP on virtual devices: a mains node that missed NTP at boot sets its clock while it
stays connected (and its held readings go out with the right times), then corrects the
clock daily; a battery node corrects it on uplink wakes, at most every six hours."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from fleet.ingest.senml import decode_health
from fleet.simulator import VirtualDevice
from tests.firmware.conftest import Broker, Subscriber, wait_until

pytestmark = [pytest.mark.vm, pytest.mark.mosquitto]

DAY = 86400


def _records(payload: bytes) -> list[tuple[str, float, object]]:
    pack = json.loads(payload)
    bt = pack[0].get("bt", 0)
    return [(r["n"], bt + r.get("t", 0), r.get("v", r.get("vs", r.get("vb")))) for r in pack]


def _health(payload: bytes) -> dict[str, object]:
    return {n: v for n, _, v in _records(payload)}


def _log(dev: VirtualDevice) -> str:
    return dev.log_path.read_text() if dev.log_path.exists() else ""


def test_a_mains_node_that_missed_ntp_sets_its_clock_online_and_resyncs_daily(
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
        sample_interval_s=900,
        health_interval_s=3600,
        speed=1440,
        clock_start=time.time() - DAY - 3600,  # the day ends before now
        heapsize="256K",
    )
    dev.prepare()
    dev.update_sim(ntp={"fail": True})  # the NTP server is away at power-on
    base = f"cs/v1/d/{dev.device_id}"
    sub = subscriber(f"{base}/health", f"{base}/up")
    with dev:
        (first,) = sub.wait_for(f"{base}/health", 1)
        assert _health(first.payload)["clock_synced"] is False
        # The fleet takes it, dated on receipt, so staff see the clock alert.
        now = time.time()
        health = decode_health(first.payload, dev.device_id, now=now)
        assert health.values["clock_synced"] is False and health.sampled_at == now
        # Readings taken meanwhile wait on flash: they have no date yet.
        wait_until(lambda: dev.readings(), 30, "a reading before the clock is set")
        assert not sub.on(f"{base}/up")
        dev.update_sim(ntp={"fail": False})  # back, while the broker connection never dropped
        wait_until(lambda: "clock set" in _log(dev), 30, "the clock to be set")
        early = next(r for r in dev.readings() if r["sensor"] == "sht4x")
        ups = sub.wait_for(f"{base}/up", 1)
        wait_until(
            lambda: _health(sub.on(f"{base}/health")[-1].payload)["clock_synced"] is True,
            30,
            "health with the clock set",
        )
        # Corrected once a day, not more.
        wait_until(lambda: "clock corrected" in _log(dev), 120, "a daily NTP correction")
        ups = sub.on(f"{base}/up")
        assert dev.is_running, _log(dev)[-2000:]
    log = _log(dev)
    assert log.count("clock set") == 1 and log.count("clock corrected") == 1, log[-3000:]
    assert dev.boots == 1, log[-2000:]
    # The reading taken before the clock was set went out, dated with the room's time.
    temps = [t for m in ups for n, t, _ in _records(m.payload) if n == "temperature"]
    assert min(abs(t - early["ts"]) for t in temps) <= 30, (early, temps[:3])


def test_a_battery_node_corrects_its_clock_on_uplink_wakes_every_six_hours(
    tmp_path: Path,
    micropython_bin: Path,
    test_broker: Broker,
    subscriber: Callable[..., Subscriber],
) -> None:
    dev = VirtualDevice(
        data_dir=tmp_path,
        seed=62,
        board="firebeetle-sht41-ds18b20-2aa",
        broker_host=test_broker.host,
        broker_port=test_broker.port,
        sample_interval_s=900,
        time_scale=9000,
        config={"uplink_every": 4, "rh_uplink_above": 101},  # an uplink an hour
        heapsize="256K",
    )
    topic = f"cs/v1/d/{dev.device_id}/health"
    sub = subscriber(topic)
    with dev:
        wait_until(lambda: "clock corrected" in _log(dev), 120, "an NTP correction")
        uplinks = len(sub.on(topic))
        assert dev.is_running, _log(dev)[-2000:]
    log = _log(dev)
    assert log.count("clock set") == 1 and log.count("clock corrected") == 1, log[-3000:]
    # The first uplink set the clock; the first uplink six hours later corrected it.
    assert 6 <= uplinks <= 8, uplinks

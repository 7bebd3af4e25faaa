"""Battery mode over a simulated day: 15-minute samples, an uplink every 4th wake (hourly),
time accelerated 9000x (sim.json time_scale). The radio may be used on uplink wakes only,
and every reading must reach the fleet with its true UTC time."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fleet.simulator import VirtualDevice
from fleet.simulator.paths import DEFAULT_HEAPSIZE
from tests.firmware.conftest import wait_until
from tests.sim.fleetsink import FleetSink, RestartableBroker, last_finished_uplink, match_served

pytestmark = [pytest.mark.vm, pytest.mark.mosquitto]

BOARD = "firebeetle-sht41-ds18b20-2aa"
DAY = 86400


BATTERY_HEAP_GAP = (
    "64K not met: on the 64-bit unix port a battery wake needs 140-144 KB (`fleet bench firmware`, "
    "<board>.heap_peak_bytes): each wake loads the sensors' drivers, the queue and, on uplink "
    "wakes, the MQTT and Wi-Fi code into one fresh heap, with the simulated board beside them"
)


@pytest.mark.parametrize(
    # The virtual devices' default: the 140-144 KB a wake needs (fleet bench firmware) and a
    # margin.
    "heapsize",
    [
        DEFAULT_HEAPSIZE,
        pytest.param("64K", marks=pytest.mark.xfail(reason=BATTERY_HEAP_GAP, strict=True)),
    ],
)
def test_a_day_on_batteries(tmp_path: Path, micropython_bin: Path, heapsize: str) -> None:
    broker = RestartableBroker(tmp_path / "broker")
    broker.start()
    start = time.time() - DAY - 600  # the day ends just before now: the fleet refuses the future
    dev = VirtualDevice(
        data_dir=tmp_path,
        seed=41,
        board=BOARD,
        broker_port=broker.port,
        sample_interval_s=900,
        health_interval_s=3600,
        time_scale=9000,
        clock_start=start,
        config={"uplink_every": 4, "rh_uplink_above": 101},
        heapsize=heapsize,
    )
    sink = FleetSink(tmp_path, broker, [dev.device_id])
    try:
        dev.start()
        wait_until(
            lambda: dev.room_time() >= start + DAY or not dev.is_running, 90, "a simulated day"
        )
        assert dev.is_running, dev.log_path.read_text()[-3000:]
        dev.stop()
        log = dev.log_path.read_text()
        uplinks = log.count("uplink: fw")
        served = [r for r in dev.readings() if r["precision"] != "heater" and "fault" not in r]
        wakes = log.count("] sleep ")

        def arrived() -> bool:
            missing, _ = match_served(
                [r for r in served if r["ts"] < last_finished_uplink(dev)],
                sink.readings(dev.device_id),
                ("temperature", "humidity", "surface_temperature", "battery_voltage"),
            )
            return not missing

        wait_until(arrived, 20, "every reading up to the last uplink in the fleet")
    finally:
        dev.stop()
        sink.close()
        broker.stop()

    assert 95 <= wakes <= 99, wakes  # one wake per 15 minutes
    # Radio on only for uplinks: the first boot, then every 4th wake.
    assert dev.radio_uses() == uplinks
    assert 24 <= uplinks <= 26, uplinks
    assert "uplink failed" not in log
    assert "memory allocation failed" not in log and "app crashed" not in log, log[-2000:]
    stored = sink.readings(dev.device_id)
    metrics = {m for m, _, _ in stored}
    assert metrics == {
        "temperature",
        "humidity",
        "surface_temperature",
        "battery_voltage",
        "battery",
    }
    # Samples sit on the UTC quarter-hour grid (to the second the RTC resolves), in the day.
    stamps = sorted({ts.timestamp() for m, ts, _ in stored if m == "temperature"})
    assert all(start - 1 <= t <= start + DAY + 900 for t in stamps)
    # A wake's sample lands after its grid point by the node's own boot and sampling time
    # (the simulator starts the woken VM's clock where the sleep ended, so the host's restart
    # of the VM does not count): 0-1 s here, more on a loaded machine. A node that slept a
    # fixed interval instead would drift by its awake time every wake: tens of seconds or
    # more over the day.
    off_grid = [t for t in stamps[1:] if min(t % 900, 900 - t % 900) > 3]  # [0]: first boot
    assert off_grid == []
    # Health came with every uplink and shows a healthy battery node.
    h = sink.health[-1]
    assert h["queue_depth"] == 0 and h["evicted"] == 0 and h["sensor_faults"] == ""
    assert h["reset_cause"] == "deep_sleep" and h["wake_reason"] == "timer"
    assert h["clock_synced"] is True and 3.0 < h["battery_voltage"] < 3.4 and h["battery"] > 50
    assert sink.rejects == []

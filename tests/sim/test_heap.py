"""The mains node's heap over time: a simulated day without a memory error or a leak, and a
node whose heap a leak has filled resets itself instead of lingering online but mute."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import pytest

from fleet.simulator import VirtualDevice
from tests.firmware.conftest import wait_until
from tests.sim.fleetsink import (
    FleetSink,
    RestartableBroker,
    assert_stored_once,
    quick_mains,
    wait_all_stored,
)

pytestmark = [pytest.mark.vm, pytest.mark.mosquitto]

METRICS = ("temperature", "humidity")
DAY = 86400
HEAP_GAP = (
    "64K not met: on the 64-bit unix port the mains node keeps ~110 KB live after connecting "
    "(free heap after a collection) and needs 124-128 KB to run a day "
    "(`fleet bench firmware`, heap_peak_bytes): ~50 KB of loaded firmware .mpy code and its "
    "objects, ~30 KB simulated board (stand-ins for built-in modules, the flash image, the "
    "SHT41 and room models), ~9 KB asyncio"
)


def _served(dev: VirtualDevice) -> list[dict[str, Any]]:
    return [r for r in dev.readings() if r["sensor"] == "sht4x" and r["precision"] == "high"]


def _log(dev: VirtualDevice) -> str:
    return dev.log_path.read_text() if dev.log_path.exists() else ""


def _no_memory_errors(dev: VirtualDevice) -> None:
    if "memory allocation failed" in _log(dev):
        raise AssertionError(f"device ran out of heap at {dev.heapsize}:\n{_log(dev)[-2000:]}")


@pytest.mark.parametrize(
    # 144K: the 124-128 KB the mains node needs (fleet bench firmware) and a margin for its growth.
    "heapsize",
    ["144K", pytest.param("64K", marks=pytest.mark.xfail(reason=HEAP_GAP, strict=True))],
)
def test_a_day_on_mains_without_a_memory_error(
    tmp_path: Path, micropython_bin: Path, heapsize: str
) -> None:
    """24 h of 15-minute samples and hourly health at 1440x (a minute of host time)."""
    broker = RestartableBroker(tmp_path / "broker")
    broker.start()
    start = time.time() - DAY - 1200  # the day ends before now: the fleet refuses the future
    dev = VirtualDevice(
        data_dir=tmp_path,
        seed=77,
        broker_port=broker.port,
        sample_interval_s=900,
        health_interval_s=3600,
        speed=1440,
        clock_start=start,
        heapsize=heapsize,
    )
    sink = FleetSink(tmp_path, broker, [dev.device_id])
    try:
        dev.start()

        def a_day() -> bool:
            _no_memory_errors(dev)
            return dev.room_time() >= start + DAY or not dev.is_running

        wait_until(a_day, 120, "a simulated day")
        assert dev.is_running, _log(dev)[-2000:]
        served = [r for r in _served(dev) if r["ts"] < dev.room_time() - 600]
        wait_all_stored(sink, dev.device_id, served, METRICS, 60, "the day's readings")
    finally:
        dev.stop()
        sink.close()
        broker.stop()
    _no_memory_errors(dev)
    log = _log(dev)
    assert dev.boots == 1 and "Task exception" not in log, log[-2000:]
    assert_stored_once(sink.readings(dev.device_id))
    # A day of 15-minute samples, 96 of them; at 1440x a host stall of 0.6 s (a loaded
    # machine) is a whole interval of room time, and the sampler keeps to the grid by
    # skipping the slot it slept through.
    assert len(served) >= 72
    # No leak: the live heap (free after a collection, in each hourly health report) ends
    # the day where it stood after the first hours. Medians: a report that meets a passing
    # task (the OTA check loads its code every ten minutes) dips once; a leak lowers all.
    free = [h["heap_free"] for h in sink.health]
    assert len(free) >= 16, sink.health
    settled = statistics.median(free[1:6])
    assert statistics.median(free[-6:]) >= settled - 2048, free


# The squeeze leaves the heap in holes only if nothing larger is in use at that instant: on
# a core shared with other tests the node may be mid-packet then, and keep working.
@pytest.mark.serial
@pytest.mark.parametrize(
    ("leave", "wifi", "noticed"),
    [
        # Fragmented, not full: its connects, or the connections it makes, run out of heap.
        (6144, "up", "memory allocation failed"),
        (1024, "down", "heap nearly full"),  # full, and connects fail for Wi-Fi instead
    ],
)
def test_a_node_whose_heap_fills_up_resets_itself(
    tmp_path: Path, micropython_bin: Path, leave: int, wifi: str, noticed: str
) -> None:
    """A leak or fragmentation leaves `leave` bytes of the heap free in small holes, and the
    node resets (reason `heap`), comes back with a clean heap and delivers what it queued.
    Fragmented, it notices when its connects, or the connections it makes, keep running out
    of heap (a health pack that never fits); full, by the free heap it checks every minute,
    even while its connects fail for another reason."""
    broker = RestartableBroker(tmp_path / "broker")
    broker.start()
    dev = quick_mains(tmp_path, broker, seed=78, heapsize="128K")
    sink = FleetSink(tmp_path, broker, [dev.device_id])
    try:
        dev.start()
        wait_until(lambda: sink.readings(dev.device_id), 30, "first readings in the fleet")
        if wifi == "down":
            dev.update_sim(wifi={"fail": True})
            wait_until(lambda: "connection lost" in _log(dev), 30, "the node offline")
        squeezed_at = dev.room_time()
        dev.set_faults({"heap_squeeze": leave})
        wait_until(lambda: "reset heap" in _log(dev), 60, "the node to reset for its heap")
        reset_at = dev.room_time()
        if wifi == "down":
            dev.update_sim(wifi={"fail": False})
        wait_until(lambda: _log(dev).count("online as") >= 2, 30, "the node back online")
        wait_until(lambda: any(h.get("reset_cause") == "heap" for h in sink.health), 30, "health")
        wait_until(lambda: dev.room_time() > reset_at + 300, 30, "five minutes after the reset")
        served = _served(dev)
        # Readings taken while the heap was full may have failed; all others must arrive.
        kept = [r for r in served if not squeezed_at <= r["ts"] <= reset_at]
        wait_all_stored(sink, dev.device_id, kept, METRICS, 5, "readings outside the leak")
    finally:
        dev.stop()
        sink.close()
        broker.stop()
    log = _log(dev)
    assert "SIM: heap squeezed" in log and "Task exception" not in log, log[-3000:]
    assert dev.boots == 2, log[-3000:]
    assert noticed in log, log[-3000:]
    assert_stored_once(sink.readings(dev.device_id))
    assert len([r for r in kept if r["ts"] > reset_at]) >= 5

"""The mains node's watchdog: a sensor transaction that never returns stops the whole node
(the event loop included), the watchdog the supervisor no longer feeds resets it, and it
comes back reporting why, with nothing it had queued lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.firmware.conftest import wait_until
from tests.sim.fleetsink import (
    FleetSink,
    RestartableBroker,
    assert_stored_once,
    quick_mains,
    wait_all_stored,
)

pytestmark = [pytest.mark.vm, pytest.mark.mosquitto]


def test_a_hung_node_is_reset_by_its_watchdog(tmp_path: Path, micropython_bin: Path) -> None:
    broker = RestartableBroker(tmp_path / "broker")
    broker.start()
    # 256K: behaviour here; the heap has its own tests (test_heap.py).
    dev = quick_mains(tmp_path, broker, seed=79, heapsize="256K")
    sink = FleetSink(tmp_path, broker, [dev.device_id])
    log = lambda: dev.log_path.read_text() if dev.log_path.exists() else ""  # noqa: E731
    try:
        dev.start()
        wait_until(lambda: sink.readings(dev.device_id), 30, "first readings in the fleet")
        dev.set_faults({"sht4x": "hang"})
        wait_until(lambda: "holds the bus" in log(), 30, "the sensor to hang the node")
        wait_until(lambda: dev.boots >= 2, 30, "the watchdog to reset the node")
        wait_until(
            lambda: any(h.get("reset_cause") == "watchdog" for h in sink.health), 30, "health"
        )
        back_at = dev.room_time()
        wait_until(lambda: dev.room_time() > back_at + 300, 30, "five minutes after the reset")
        served = [r for r in dev.readings() if r["precision"] == "high"]
        metrics = ("temperature", "humidity")
        wait_all_stored(sink, dev.device_id, served, metrics, 5, "readings around the hang")
    finally:
        dev.stop()
        sink.close()
        broker.stop()
    assert dev.boots == 2, log()[-3000:]
    assert "reset watchdog" in log(), log()[-3000:]
    assert_stored_once(sink.readings(dev.device_id))
    assert len([r for r in served if r["ts"] > back_at]) >= 5

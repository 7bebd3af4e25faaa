"""A node whose app dies at every boot backs off instead of resetting as fast as it boots
(a flat battery, a broker hammered by reconnects), and forgives the crashes once it runs."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from fleet.simulator import VirtualDevice
from tests.firmware.conftest import wait_until
from tests.sim.fleetsink import FleetSink, RestartableBroker, quick_mains

pytestmark = [pytest.mark.vm, pytest.mark.mosquitto]

FAILING_BOOTS = 5


def _backed_off(text: str) -> list[int]:
    """The sleeps the crash loop took: none for the first two crashes, then doubling."""
    assert text.count("app crashed: OSError") == FAILING_BOOTS, text[-3000:]
    sleeps = [int(s) for s in re.findall(r"crashes in a row: sleeping (\d+) s", text)]
    assert sleeps == [60, 120, 240], text[-3000:]
    return sleeps


def test_a_node_that_crashes_at_every_boot_backs_off(tmp_path: Path, micropython_bin: Path) -> None:
    broker = RestartableBroker(tmp_path / "broker")
    broker.start()
    dev = quick_mains(tmp_path, broker, seed=81, heapsize="256K")
    # The watchdog fails to start at the first boots: the app dies before it samples.
    dev.faults = {"wdt_init": FAILING_BOOTS}
    sink = FleetSink(tmp_path, broker, [dev.device_id])
    log = lambda: dev.log_path.read_text() if dev.log_path.exists() else ""  # noqa: E731
    rtc = tmp_path / dev.device_id / "rtc_memory.bin"
    try:
        dev.start()
        started = dev.room_time()
        wait_until(lambda: "online as" in log(), 60, "the node to start once the watchdog does")
        online_at = dev.room_time()
        wait_until(lambda: sink.health, 30, "a health report")
        assert json.loads(rtc.read_bytes())["crashes"] == FAILING_BOOTS
        # Ten minutes up: the crashes are forgiven, so the next one resets at once again.
        wait_until(lambda: dev.room_time() > online_at + 660, 30, "ten minutes up")
        wait_until(lambda: "crashes" not in json.loads(rtc.read_bytes()), 10, "the count cleared")
    finally:
        dev.stop()
        sink.close()
        broker.stop()
    sleeps = _backed_off(log())
    assert dev.boots == FAILING_BOOTS + 1
    assert online_at - started >= sum(sleeps)
    assert sink.health[0]["reset_cause"] == "crash", sink.health[0]
    assert sink.readings(dev.device_id)


def test_a_battery_node_backs_off_too_and_forgives_after_a_wake(
    tmp_path: Path, micropython_bin: Path
) -> None:
    broker = RestartableBroker(tmp_path / "broker")
    broker.start()
    dev = VirtualDevice(
        data_dir=tmp_path,
        seed=82,
        board="firebeetle-sht41-ds18b20-2aa",
        broker_port=broker.port,
        sample_interval_s=900,
        time_scale=9000,
        clock_start=time.time() - 6 * 3600,
        config={"uplink_every": 4},
        faults={"wdt_init": FAILING_BOOTS},
        heapsize="256K",
    )
    sink = FleetSink(tmp_path, broker, [dev.device_id])
    log = lambda: dev.log_path.read_text() if dev.log_path.exists() else ""  # noqa: E731
    rtc = tmp_path / dev.device_id / "rtc_memory.bin"
    try:
        dev.start()
        wait_until(lambda: "] sleep " in log(), 60, "a whole wake once the watchdog starts")
        wait_until(lambda: sink.readings(dev.device_id), 30, "the first uplink's readings")
        # The first wake after the crashes goes up at once (not a timer wake) and says why.
        wait_until(lambda: sink.health, 30, "a health report")
        assert sink.health[0]["reset_cause"] == "crash", sink.health[0]
        wait_until(lambda: "crashes" not in json.loads(rtc.read_bytes()), 10, "the count cleared")
    finally:
        dev.stop()
        sink.close()
        broker.stop()
    _backed_off(log())
    assert "uplink: fw 0.1.0 reset crash" in log(), log()[-3000:]

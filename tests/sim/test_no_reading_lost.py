"""Store-and-forward end to end: the real firmware in the VM, a Mosquitto that goes away,
Wi-Fi that drops, power cut at random moments; the fleet's own ingest and database at
the far end. Every reading the simulated sensor served must be in the fleet exactly once,
except the one being taken at the instant of a power cut."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from fleet.simulator import VirtualDevice
from tests.firmware.conftest import wait_until
from tests.sim.fleetsink import FleetSink, RestartableBroker, match_served

pytestmark = [pytest.mark.vm, pytest.mark.mosquitto]

METRICS = ("temperature", "humidity")


def _served(dev: VirtualDevice) -> list[dict]:
    return [r for r in dev.readings() if r["sensor"] == "sht4x" and r["precision"] == "high"]


def test_outages_and_power_cuts_lose_nothing(tmp_path: Path, micropython_bin: Path) -> None:
    rng = random.Random(7)
    broker = RestartableBroker(tmp_path / "broker")
    broker.start()
    dev = VirtualDevice(
        data_dir=tmp_path,
        seed=31,
        broker_port=broker.port,
        sample_interval_s=1,
        health_interval_s=3,
        heapsize="256K",  # correctness here; the heap budget has its own test
    )
    sink = FleetSink(tmp_path, broker, [dev.device_id])
    cuts: list[float] = []  # room time of each power cut
    try:
        dev.start()
        wait_until(lambda: sink.readings(dev.device_id), 30, "first readings in the fleet")

        # The broker goes away; meanwhile the access point drops twice and power is cut.
        broker.stop()
        for _ in range(2):
            time.sleep(rng.uniform(1.0, 2.5))
            dev.update_sim(wifi={"fail": True})
            time.sleep(rng.uniform(1.0, 2.5))
            dev.update_sim(wifi={"fail": False})
        time.sleep(rng.uniform(0.2, 1.5))
        cuts.append(dev.room_time())
        dev.kill()
        dev.start()
        time.sleep(rng.uniform(2.0, 4.0))
        broker.start()

        # Power cuts at random moments while the backlog drains and sampling goes on.
        for _ in range(3):
            time.sleep(rng.uniform(0.3, 2.5))
            cuts.append(dev.room_time())
            dev.kill()
            dev.start()
        time.sleep(3)
        served = _served(dev)

        def all_arrived() -> bool:
            missing, _ = match_served(served, sink.readings(dev.device_id), METRICS)
            return len(missing) <= len(cuts)

        wait_until(all_arrived, 60, "the backlog to reach the fleet")
        assert dev.is_running, dev.log_path.read_text()[-2000:]
    finally:
        dev.stop()
        sink.close()
        broker.stop()

    served = _served(dev)
    stored = sink.readings(dev.device_id)
    missing, extra = match_served(served, stored, METRICS)
    # A reading can be lost only if the power was cut while it was being taken: it is then
    # the last reading served before that cut.
    for rec in missing:
        before = [c for c in cuts if c >= rec["ts"]]
        assert before, f"reading at {rec['ts']} lost without a power cut"
        later = [r for r in served if rec["ts"] < r["ts"] <= before[0]]
        assert not later, f"reading at {rec['ts']} lost, but later ones before the cut survived"
    # Exactly once: nothing stored that the sensor did not serve, and no duplicates.
    assert extra == []
    assert len(stored) == len({(m, ts) for m, ts, _ in stored})
    assert len(served) >= 10
    log = dev.log_path.read_text()
    assert "connect failed" in log and log.count("online as") >= 3
    assert sink.rejects == []
    assert all(ts.year >= 2020 for _, ts, _ in stored)  # readings before NTP were re-dated

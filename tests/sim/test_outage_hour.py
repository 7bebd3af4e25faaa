"""A mains device through a simulated hour without its broker, its room clock running 120x
faster than the host's (sim.json "speed": the firmware's ticks, sleeps and timeouts follow
it). Meanwhile the access point drops again and again and the power is cut at random
moments; afterwards every reading taken is in the fleet exactly once. With a deliberately
small flash queue the same outage overfills it: the fleet then receives everything except
exactly the readings the device reports as evicted, and those are the oldest of the backlog.
"""

from __future__ import annotations

import itertools
import random
import statistics
import time
from pathlib import Path
from typing import Any

import pytest

from fleet.simulator import VirtualDevice
from tests.firmware.conftest import wait_until
from tests.sim.fleetsink import FleetSink, RestartableBroker, match_served

pytestmark = [pytest.mark.vm, pytest.mark.mosquitto]

METRICS = ("temperature", "humidity")
SPEED = 120.0  # a simulated hour takes 30 s
# At 120x a 40 ms host scheduling delay between taking a reading and stamping it is 5 s of
# room time; kept under half the sampling interval, so a reading never pairs with another's.
SLACK_S = 5.0
HOUR = 3600


def _served(dev: VirtualDevice) -> list[dict[str, Any]]:
    return [r for r in dev.readings() if r["sensor"] == "sht4x" and r["precision"] == "high"]


def _device(
    tmp_path: Path, broker: RestartableBroker, seed: int, interval: int, **config: Any
) -> VirtualDevice:
    return VirtualDevice(
        data_dir=tmp_path,
        seed=seed,
        broker_port=broker.port,
        sample_interval_s=interval,
        health_interval_s=300,
        speed=SPEED,
        # The run ends about an hour before now: the fleet refuses readings from the future.
        clock_start=time.time() - 3 * HOUR,
        config=config,
        heapsize="256K",  # correctness here; the heap budget has its own test
    )


def _until_room(dev: VirtualDevice, when: float) -> None:
    wait_until(
        lambda: dev.room_time() >= when, (when - dev.room_time()) / SPEED + 10, "simulated time"
    )


def test_an_hour_without_broker_loses_nothing(tmp_path: Path, micropython_bin: Path) -> None:
    rng = random.Random(11)
    broker = RestartableBroker(tmp_path / "broker")
    broker.start()
    dev = _device(tmp_path, broker, seed=57, interval=60)
    sink = FleetSink(tmp_path, broker, [dev.device_id])
    cuts: list[float] = []  # room time of each power cut

    def cut() -> None:
        cuts.append(dev.room_time())
        dev.kill()
        dev.start()

    try:
        dev.start()
        wait_until(lambda: sink.readings(dev.device_id), 30, "first readings in the fleet")

        broker.stop()
        down = dev.room_time()
        # Within the hour: the access point drops three times for 2-8 minutes, and the
        # power is cut three times, all at random moments.
        events: list[tuple[float, str]] = []
        for _ in range(3):
            at = rng.uniform(60, HOUR - 600)
            events += [(at, "wifi down"), (at + rng.uniform(120, 480), "wifi up")]
            events.append((rng.uniform(60, HOUR - 60), "cut"))
        for at, what in sorted(events):
            _until_room(dev, down + at)
            if what == "cut":
                cut()
            else:
                dev.update_sim(wifi={"fail": what == "wifi down"})
        _until_room(dev, down + HOUR)
        broker.start()
        up = dev.room_time()

        # Two more power cuts while the backlog drains.
        for _ in range(2):
            time.sleep(rng.uniform(0.2, 1.5))
            cut()
        _until_room(dev, dev.room_time() + 180)
        served = _served(dev)

        def all_arrived() -> bool:
            missing, _ = match_served(served, sink.readings(dev.device_id), METRICS, SLACK_S)
            return len(missing) <= len(cuts)

        wait_until(all_arrived, 60, "the backlog to reach the fleet")
        assert dev.is_running, dev.log_path.read_text()[-2000:]
    finally:
        dev.stop()
        sink.close()
        broker.stop()

    served = _served(dev)
    stored = sink.readings(dev.device_id)
    missing, extra = match_served(served, stored, METRICS, SLACK_S)
    # A reading can be lost only if the power was cut while it was being taken: it is then
    # the last reading served before that cut.
    for rec in missing:
        before = [c for c in cuts if c >= rec["ts"]]
        assert before, f"reading at {rec['ts']} lost without a power cut"
        later = [r for r in served if rec["ts"] < r["ts"] <= before[0]]
        assert not later, f"reading at {rec['ts']} lost, but later ones before the cut survived"
    assert extra == []
    assert len(stored) == len({(m, ts) for m, ts, _ in stored})  # exactly once
    assert sink.rejects == []
    # The outage really was an hour of the device's time, sampled on its 1-minute grid.
    assert up - down >= HOUR
    during = [r for r in served if down <= r["ts"] <= up]
    assert len(during) >= 50
    gaps = [b["ts"] - a["ts"] for a, b in itertools.pairwise(served)]
    assert abs(statistics.median(gaps) - 60) < 2
    log = dev.log_path.read_text()
    assert "connect failed" in log and log.count("online as") >= 3


def test_overfilled_queue_loses_exactly_the_evicted(tmp_path: Path, micropython_bin: Path) -> None:
    broker = RestartableBroker(tmp_path / "broker")
    broker.start()
    # Two 2 KB segments hold about 110 readings; an hour at 15-second samples is 240.
    dev = _device(tmp_path, broker, seed=58, interval=15, queue_segments=2)
    sink = FleetSink(tmp_path, broker, [dev.device_id])
    try:
        dev.start()
        wait_until(lambda: sink.readings(dev.device_id), 30, "first readings in the fleet")
        broker.stop()
        down = dev.room_time()
        _until_room(dev, down + HOUR)
        broker.start()
        up = dev.room_time()

        def drained() -> dict[str, Any] | None:
            reports = [h for h in sink.health if h["bt"] > up and h["queue_depth"] == 0]
            return reports[0] if reports else None

        wait_until(drained, 60, "a health report with the queue drained")
        report = drained()
        assert report is not None
        served = _served(dev)
        before = [r for r in served if r["ts"] < report["bt"] - 1]

        def delivered() -> bool:
            missing, _ = match_served(before, sink.readings(dev.device_id), METRICS, SLACK_S)
            return len(missing) <= report["evicted"]

        wait_until(delivered, 30, "the readings before that report in the fleet")
    finally:
        dev.stop()
        sink.close()
        broker.stop()

    stored = sink.readings(dev.device_id)
    assert report["evicted"] > 0
    missing, _ = match_served(before, stored, METRICS, SLACK_S)
    assert len(missing) == report["evicted"]
    # Whole oldest segments go: the lost readings are one run at the start of the backlog.
    idx = [before.index(r) for r in missing]
    assert idx == list(range(idx[0], idx[0] + len(idx)))
    assert all(down - 60 <= r["ts"] <= up for r in missing)
    # Everything stored was served, once.
    _, extra = match_served(_served(dev), stored, METRICS, SLACK_S)
    assert extra == []
    assert len(stored) == len({(m, ts) for m, ts, _ in stored})
    assert sink.rejects == []

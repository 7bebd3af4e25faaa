"""Injected sensor faults show up as `sensor_faults` flags in health and clear with the
fault; the node keeps running and keeps sending what the healthy sensors measure."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from fleet.simulator import VirtualDevice
from tests.firmware.conftest import Broker, Subscriber, wait_until

pytestmark = [pytest.mark.vm, pytest.mark.mosquitto]

CASES = [
    # board, device settings, [(sensor, injected fault, expected flag)]
    (
        "devkitc-sht41",
        {"sample_interval_s": 1, "health_interval_s": 1},
        [
            ("sht4x", "nack", "sht4x:nack"),
            ("sht4x", "crc", "sht4x:crc"),
            ("sht4x", "range", "sht4x:range"),
            ("sht4x", "busy", "sht4x:nack"),  # reads NACKed: the driver cannot tell them apart
            ("sht4x", "stuck", "sht4x:stuck"),
        ],
    ),
    (
        "firebeetle-sht41-ds18b20-2aa",
        {
            "sample_interval_s": 900,
            "health_interval_s": 900,
            "time_scale": 9000,
            "config": {"uplink_every": 1},
        },
        [
            ("ds18b20", "nack", "ds18b20:nack"),
            ("ds18b20", "crc", "ds18b20:crc"),
            ("ds18b20", "range", "ds18b20:range"),
        ],
    ),
    (
        "devkitc-scd41",
        {"sample_interval_s": 1, "health_interval_s": 1, "time_scale": 10},
        [
            ("scd4x", "nack", "scd4x:nack"),
            ("scd4x", "crc", "scd4x:crc"),
            ("scd4x", "range", "scd4x:range"),
        ],
    ),
]


def _device(tmp_path: Path, broker: Broker, board: str, seed: int, settings: dict) -> VirtualDevice:
    return VirtualDevice(
        data_dir=tmp_path,
        seed=seed,
        board=board,
        broker_host=broker.host,
        broker_port=broker.port,
        heapsize="256K",
        **settings,
    )


def _faults(msg_payload: bytes) -> str:
    return next(r["vs"] for r in json.loads(msg_payload) if r["n"] == "sensor_faults")


def _wait_health(
    sub: Subscriber, topic: str, ok: Callable[[str], bool], what: str, timeout: float = 30
) -> None:
    """Wait for a health pack published after now whose sensor_faults satisfies `ok`."""
    seen = len(sub.on(topic))
    wait_until(lambda: [m for m in sub.on(topic)[seen:] if ok(_faults(m.payload))], timeout, what)


@pytest.mark.parametrize(("board", "settings", "steps"), CASES, ids=[c[0] for c in CASES])
def test_faults_are_flagged_and_clear(
    tmp_path: Path,
    micropython_bin: Path,
    test_broker: Broker,
    subscriber: Callable[..., Subscriber],
    board: str,
    settings: dict,
    steps: list[tuple[str, str, str]],
) -> None:
    dev = _device(tmp_path, test_broker, board, 51, settings)
    topic = f"cs/v1/d/{dev.device_id}/health"
    sub = subscriber(topic, f"cs/v1/d/{dev.device_id}/up")
    with dev:
        wait_until(
            lambda: [m for m in sub.on(topic) if _faults(m.payload) == ""], 30, "a clean health"
        )
        for sensor, fault, flag in steps:
            dev.set_faults({sensor: fault})
            _wait_health(sub, topic, lambda faults, f=flag: f in faults, f"{flag} in health")
            dev.set_faults({})
            _wait_health(sub, topic, lambda faults: faults == "", f"{flag} to clear")
        assert dev.is_running, dev.log_path.read_text()[-2000:]
    # Corrupt or impossible readings never reach the fleet. (A stuck chip's first repeats
    # look like a steady room until the repeat count says otherwise, so they may.)
    skip = ("ts", "sensor", "precision", "fault")
    bad = {
        (int(r["ts"]), metric)
        for r in dev.readings()
        if r.get("fault") in ("crc", "range")
        for metric in r
        if metric not in skip
    }
    for msg in sub.on(f"cs/v1/d/{dev.device_id}/up"):
        pack = json.loads(msg.payload)
        bt = pack[0]["bt"]
        assert not {(bt + r.get("t", 0), r["n"]) for r in pack} & bad


BUS_CASES = [
    ("devkitc-sht41", {"sample_interval_s": 1, "health_interval_s": 1}),
    (
        "firebeetle-sht41-ds18b20-2aa",
        {
            "sample_interval_s": 900,
            "health_interval_s": 900,
            "time_scale": 9000,
            "config": {"uplink_every": 1},
        },
    ),
]


@pytest.mark.parametrize(("board", "settings"), BUS_CASES, ids=[c[0] for c in BUS_CASES])
def test_a_bus_that_does_not_start_is_a_sensor_fault_not_a_crash(
    tmp_path: Path,
    micropython_bin: Path,
    test_broker: Broker,
    subscriber: Callable[..., Subscriber],
    board: str,
    settings: dict,
) -> None:
    # The I2C driver fails to install the first three times the node starts it.
    dev = _device(tmp_path, test_broker, board, 52, {**settings, "faults": {"i2c_init": 3}})
    topic = f"cs/v1/d/{dev.device_id}/health"
    up = f"cs/v1/d/{dev.device_id}/up"
    sub = subscriber(topic, up)

    def names() -> set[str]:
        return {r["n"] for m in sub.on(up) for r in json.loads(m.payload)}

    with dev:
        _wait_health(sub, topic, lambda faults: faults == "sht4x:bus", "sht4x:bus in health")
        if "ds18b20" in board:  # the probe on its own bus reports meanwhile
            wait_until(lambda: "surface_temperature" in names(), 30, "the probe's readings")
        assert "humidity" not in names()
        # Retried with the sensor backoff (after 1, 2, 4 samples): the bus starts at the
        # fourth try, the flag clears and the SHT41's readings arrive.
        _wait_health(sub, topic, lambda faults: faults == "", "the flag to clear", timeout=60)
        wait_until(lambda: "humidity" in names(), 30, "the SHT41's readings")
        assert dev.is_running, dev.log_path.read_text()[-2000:]
    log = dev.log_path.read_text()
    assert "app crashed" not in log, log[-3000:]
    if settings.get("time_scale") is None:
        assert dev.boots == 1  # a mains node: never reset
    assert log.count("sensor fault: sht4x bus") == 1, log[-3000:]
    assert json.loads((tmp_path / dev.device_id / "sim.json").read_text())["faults"] == {}

"""Whole virtual devices: the launcher runs the real firmware in the VM against Mosquitto."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from fleet.simulator import VirtualDevice, VirtualFleet, device_id_for_seed
from fleet.simulator.paths import SimulatorError
from tests.firmware.conftest import Broker, Subscriber, wait_until

pytestmark = [pytest.mark.vm, pytest.mark.mosquitto]

# SHT4x words carry 175/65535 degC and 125/65535 %RH; the firmware sends 2 decimals.
T_TOL = 0.005 + 175 / 65535 / 2
RH_TOL = 0.005 + 125 / 65535 / 2


def _samples(pack: list[dict]) -> dict[int, dict[str, float]]:
    """{time: {"temperature": v, "humidity": v}} from a telemetry pack."""
    bt = pack[0]["bt"]
    out: dict[int, dict[str, float]] = {}
    for r in pack:
        out.setdefault(bt + r.get("t", 0), {})[r["n"]] = r["v"]
    return out


def _served(when: int, sample: dict[str, float], readings: list[dict]) -> dict | None:
    """The reading the sensor served for this sample: same second (the device stamps
    whole seconds just after the measurement) and both values within resolution."""
    for r in readings:
        if "fault" in r or not when - 1 <= r["ts"] < when + 1:
            continue
        if (
            abs(r["temperature"] - sample["temperature"]) <= T_TOL
            and abs(r["humidity"] - sample["humidity"]) <= RH_TOL
        ):
            return r
    return None


def _no_memory_errors(dev: VirtualDevice) -> None:
    log = dev.log_path.read_text() if dev.log_path.exists() else ""
    if "memory allocation failed" in log:
        raise AssertionError(f"device ran out of heap at {dev.heapsize}:\n{log[-2000:]}")


def test_device_publishes_what_the_sensor_measured(
    tmp_path: Path,
    micropython_bin: Path,
    test_broker: Broker,
    subscriber: Callable[..., Subscriber],
) -> None:
    dev = VirtualDevice(
        data_dir=tmp_path,
        seed=11,
        broker_host=test_broker.host,
        broker_port=test_broker.port,
        heapsize="128K",  # the heap's budget over a day: tests/sim/test_heap.py
        sample_interval_s=1,
        health_interval_s=2,
    )
    base = f"cs/v1/d/{dev.device_id}"
    sub = subscriber(f"{base}/#")
    with dev:

        def two_packs() -> object:
            _no_memory_errors(dev)
            ups = sub.on(f"{base}/up")
            return ups if len(ups) >= 2 else None

        ups = wait_until(two_packs, 30, "two telemetry packs")
        (health, *_) = sub.wait_for(f"{base}/health", 1, timeout=30)
        late = subscriber(f"{base}/status")  # retained: a newcomer gets it at once
        (status,) = late.wait_for(f"{base}/status", 1, timeout=10)
        assert status.retain and json.loads(status.payload) == {"sv": 1, "state": "online"}
        assert dev.is_running, dev.log_path.read_text()
    assert not dev.is_running and dev.pid is None
    readings = dev.readings()
    for msg in ups:
        pack = json.loads(msg.payload)
        assert msg.qos == 1
        assert pack[0]["bn"] == f"urn:dev:cs:{dev.device_id}:" and pack[0]["sv"] == 1
        assert pack[0]["bt"] > 1577836800
        for when, sample in _samples(pack).items():
            assert set(sample) == {"temperature", "humidity"}
            assert _served(when, sample, readings), (when, sample, readings)

    h = {r["n"]: r for r in json.loads(health.payload)}
    assert h["fw_version"]["vs"] == "0.1.0" and h["config_version"]["v"] == 1
    assert h["reset_cause"]["vs"] == "power_on" and h["clock_synced"]["vb"] is True
    assert 0 < h["heap_min_free"]["v"] <= h["heap_free"]["v"]  # the low-water mark
    assert h["sensor_faults"]["vs"] == "" and "rssi" in h and h["uptime"]["u"] == "s"


def test_sensor_faults_are_reported_not_fatal(
    tmp_path: Path,
    micropython_bin: Path,
    test_broker: Broker,
    subscriber: Callable[..., Subscriber],
) -> None:
    dev = VirtualDevice(
        data_dir=tmp_path,
        seed=12,
        broker_host=test_broker.host,
        broker_port=test_broker.port,
        sample_interval_s=1,
        health_interval_s=2,
        faults={"sht4x": "crc"},
        heapsize="256K",  # behaviour here; the heap budget has its own test (test_heap.py)
    )
    base = f"cs/v1/d/{dev.device_id}"
    sub = subscriber(f"{base}/health", f"{base}/up")
    with dev:

        def faulty() -> object:
            return [m for m in sub.on(f"{base}/health") if b"sht4x:crc" in m.payload]

        wait_until(faulty, 30, "a health pack reporting sht4x:crc")
        assert sub.on(f"{base}/up") == []
        dev.set_faults({})  # the sensor recovers; readings flow again
        sub.wait_for(f"{base}/up", 1, timeout=30)
        assert dev.is_running


def test_reconnects_after_the_broker_goes_away(
    tmp_path: Path, micropython_bin: Path, subscriber: Callable[..., Subscriber]
) -> None:
    import shutil
    import socket
    import subprocess

    mosq = shutil.which("mosquitto")
    if mosq is None:
        pytest.skip("needs the mosquitto binary to stop and restart a broker")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = tmp_path / "m.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")

    def broker() -> subprocess.Popen[bytes]:
        p = subprocess.Popen([mosq, "-c", str(conf)], stderr=subprocess.DEVNULL)
        wait_until(lambda: _open(port), 10, "broker up")
        return p

    proc = broker()
    dev = VirtualDevice(
        data_dir=tmp_path,
        seed=13,
        broker_port=port,
        sample_interval_s=1,
        health_interval_s=60,
        heapsize="256K",
    )
    try:
        with dev:
            wait_until(lambda: "online as" in dev.log_path.read_text(), 30, "first connect")
            proc.terminate()
            proc.wait(10)
            wait_until(lambda: "connection lost" in dev.log_path.read_text(), 30, "loss seen")
            proc = broker()
            sub = Subscriber(Broker("127.0.0.1", port), (f"cs/v1/d/{dev.device_id}/up",))
            try:
                sub.wait_for(f"cs/v1/d/{dev.device_id}/up", 1, timeout=60)
            finally:
                sub.close()
            assert dev.log_path.read_text().count("online as") >= 2
    finally:
        proc.terminate()
        proc.wait(10)


def _open(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_fleet_start_stop_leaves_no_processes(
    tmp_path: Path, micropython_bin: Path, test_broker: Broker
) -> None:
    fleet = VirtualFleet(
        3, tmp_path, broker_port=test_broker.port, sample_interval_s=60, base_seed=100
    )
    assert fleet.device_ids == [device_id_for_seed(100 + i) for i in range(3)]
    with fleet:
        wait_until(lambda: all(d.pid for d in fleet), 10, "three VMs")
        pids = [d.pid for d in fleet]
        wait_until(
            lambda: all("online as" in d.log_path.read_text() for d in fleet), 30, "all online"
        )
    for pid in pids:
        assert pid is not None
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert fleet.running() == []
    cfg = json.loads((tmp_path / fleet.device_ids[0] / "config.json").read_text())
    assert cfg["device_id"] == fleet.device_ids[0] and cfg["mqtt"]["port"] == test_broker.port


def test_one_device_folder_runs_one_device_at_a_time(
    tmp_path: Path, micropython_bin: Path, test_broker: Broker
) -> None:
    def device() -> VirtualDevice:
        return VirtualDevice(data_dir=tmp_path, seed=12, broker_port=test_broker.port)

    first, second = device(), device()
    with first:
        with pytest.raises(SimulatorError, match=f"launcher with pid {os.getpid()}"):
            second.start()
        assert first.pid is not None and not second.is_running
    with second:
        assert second.pid is not None


# Starts a device, reports its VM's pid, then waits to be killed.
LAUNCHER = """
import sys, threading
from fleet.simulator import VirtualDevice
dev = VirtualDevice(data_dir=sys.argv[1], seed=13, broker_port=int(sys.argv[2]))
dev.start()
print(dev.pid, flush=True)
threading.Event().wait()
"""


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's exit is reaped by whoever adopted it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def test_a_killed_launcher_takes_its_vm_with_it(
    tmp_path: Path, micropython_bin: Path, test_broker: Broker
) -> None:
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, str(tmp_path), str(test_broker.port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert launcher.stdout is not None
    vm = int(launcher.stdout.readline())
    # Once the VM runs, the wrapper that arms its parent-death signal has done so (a
    # launcher killed within the wrapper's first instants leaves it to the folder lock).
    wait_until(lambda: _command(vm) == "micropython", 10, "the VM running")
    launcher.kill()  # as `kill -9` of `fleet demo`: no clean-up code runs
    launcher.wait()
    wait_until(lambda: not _running(vm), 10, "the VM ended with its launcher")
    with VirtualDevice(data_dir=tmp_path, seed=13, broker_port=test_broker.port) as dev:
        assert dev.pid is not None  # the folder is free again


def test_changed_launcher_settings_bump_the_config_version(tmp_path: Path) -> None:
    dev = VirtualDevice("cs-sim-0001", tmp_path, broker_port=1883, sample_interval_s=900)
    dev.prepare()
    again = VirtualDevice("cs-sim-0001", tmp_path, broker_port=1884, sample_interval_s=900)
    again.prepare()
    cfg = json.loads(again.config_path.read_text())
    assert cfg["mqtt"]["port"] == 1884 and cfg["version"] == 2
    sim = json.loads(again.sim_path.read_text())
    assert sim["mac"] and sim["seed"] == dev.seed

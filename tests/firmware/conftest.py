"""Fixtures for firmware and virtual-device tests: the MicroPython VM, a Mosquitto broker,
and an MQTT subscriber that waits on conditions (never on fixed sleeps).

tests/sim/conftest.py re-exports these.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from fleet.simulator.paths import (
    BOARDS_DIR,
    FIRMWARE_DIR,
    FROZEN_PATH,
    SIM_DIR,
    SimulatorError,
    find_micropython,
)
from tests.conftest import DEADLINE_SCALE

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(reason: str) -> None:
    """Skip on a laptop without the tool; in CI a missing tool is a failure."""
    if IN_CI:
        pytest.fail(f"required tool missing in CI: {reason}")
    pytest.skip(reason)


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `predicate` until it returns something truthy, or fail after `timeout` s (times
    DEADLINE_SCALE under parallel workers)."""
    timeout *= DEADLINE_SCALE
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def micropython_bin() -> Path:
    try:
        return find_micropython()
    except SimulatorError as e:
        need(str(e))
        raise


@dataclass
class VM:
    """Runs MicroPython scripts against the firmware and sim sources in a device folder."""

    binary: Path
    device_dir: Path

    def write_sim(self, **sim: Any) -> None:
        data = {"seed": 42, "mac": "02cc000000aa", "faults": {}}
        data.update(sim)
        (self.device_dir / "sim.json").write_text(json.dumps(data))

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["MICROPYPATH"] = os.pathsep.join([str(SIM_DIR), str(FIRMWARE_DIR), FROZEN_PATH])
        return env

    def popen(self, code: str, heapsize: str = "512K") -> subprocess.Popen[str]:
        script = self.device_dir / "_test_script.py"
        script.write_text(code)
        return subprocess.Popen(
            [str(self.binary), "-X", f"heapsize={heapsize}", str(script)],
            cwd=self.device_dir,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def run(self, code: str, heapsize: str = "512K", timeout: float = 60) -> str:
        proc = self.popen(code, heapsize)
        try:
            out, _ = proc.communicate(timeout=timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if proc.returncode != 0:
            raise AssertionError(f"VM script failed ({proc.returncode}):\n{out}")
        return out

    def results(self, out: str) -> list[Any]:
        """JSON values the script printed on lines starting with 'RESULT '."""
        return [json.loads(line[7:]) for line in out.splitlines() if line.startswith("RESULT ")]

    def readings(self) -> list[dict[str, Any]]:
        path = self.device_dir / "sim_readings.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def vm(micropython_bin: Path, tmp_path: Path) -> VM:
    device_dir = tmp_path / "device"
    device_dir.mkdir()
    (device_dir / "boards").mkdir()
    shutil.copy(BOARDS_DIR / "devkitc-sht41.json", device_dir / "boards")
    v = VM(micropython_bin, device_dir)
    v.write_sim()
    return v


# -- broker -----------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class Broker:
    host: str
    port: int


@pytest.fixture(scope="session")
def test_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A private Mosquitto on a free port; else the one on 127.0.0.1:1883."""
    binary = shutil.which("mosquitto")
    if binary is None:
        if _port_open("127.0.0.1", 1883):
            yield Broker("127.0.0.1", 1883)
            return
        need("no mosquitto binary and no broker on 127.0.0.1:1883")
    port = _free_port()
    conf = tmp_path_factory.mktemp("mosquitto") / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen(
        [str(binary), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_until(lambda: _port_open("127.0.0.1", port), 10, "mosquitto to listen")
        yield Broker("127.0.0.1", port)
    finally:
        proc.terminate()
        proc.wait(10)


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool
    qos: int
    at: float


@dataclass
class Subscriber:
    """A paho client that records every message on its filters."""

    broker: Broker
    filters: tuple[str, ...]
    messages: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_connect = lambda c, *a: c.subscribe([(f, 1) for f in self.filters])
        self.client.connect(self.broker.host, self.broker.port)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise AssertionError("subscriber: no SUBACK")

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(
                Received(msg.topic, bytes(msg.payload), bool(msg.retain), msg.qos, time.time())
            )

    def on(self, topic: str) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if m.topic == topic]

    def wait_for(self, topic: str, count: int = 1, timeout: float = 30) -> list[Received]:
        return wait_until(
            lambda: self.on(topic) if len(self.on(topic)) >= count else None,
            timeout,
            f"{count} message(s) on {topic}",
        )

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def subscriber(test_broker: Broker) -> Iterator[Callable[..., Subscriber]]:
    made: list[Subscriber] = []

    def make(*filters: str) -> Subscriber:
        sub = Subscriber(test_broker, filters)
        made.append(sub)
        return sub

    yield make
    for sub in made:
        sub.close()

"""The firmware in the MicroPython VM: heap, awake time per battery wake, bytes on the
wire per reading, and the battery life each battery board profile gets from them.

Runs real virtual devices against a private Mosquitto: a mains device for heap and
payload sizes, mains devices through accelerated days to find the smallest heap the app
runs in, and each battery profile's device through accelerated deep-sleep cycles
(15-minute samples, an uplink every 4th wake) for awake times. The VM runs the firmware
much faster than an ESP32 does, so the power budget converts VM time to device time with
CPU_FACTOR and adds what the VM cannot show (boot, sensor conversions, Wi-Fi join) from
the board profile and datasheets; every input is returned with the result.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from fleet.simulator import VirtualDevice
from fleet.simulator.paths import BOARDS_DIR, SimulatorError

HEAPSIZE = 128 * 1024
HEAP_SPEED = 1440  # a simulated day of a mains node in a minute
HEAP_LOW_KB, HEAP_HIGH_KB, HEAP_STEP_KB = 64, 192, 4
HEAP_TRIAL_HOURS = 6
HEAP_WAKES = 9  # battery: wakes 1, 5 and 9 go up (the first boot, then every 4th)
SAMPLE_S = 900
UPLINK_EVERY = 4  # hourly at 15-minute samples
WAKES = 25
CPU_FACTOR = 20.0  # ESP32 at 160 MHz vs the x86 VM for MicroPython bytecode (estimate)
# Sensor conversion time per wake (datasheets): SHT41 high precision, DS18B20 at 11 bits.
CONVERSION_MS = {"sht4x": 10, "ds18b20": 375, "battery": 1, "scd4x": 5000, "bme280": 10}
# The chip's own supply current while converting (datasheets, typical): SHT4x 0.32 mA
# during a measurement, DS18B20 1 mA active, SCD41 single shot 18 mA average at 3.3 V,
# BME280 forced mode 0.7 mA. Small next to a CPU at 40 mA, not next to a light-sleeping one.
CONVERSION_MA = {"sht4x": 0.32, "ds18b20": 1.0, "scd4x": 18.0, "bme280": 0.7}
_AWAKE = re.compile(r"sleep \d+ ms \(awake (\d+) ms, light (\d+) ms\)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Broker:
    def __init__(self, folder: Path) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            raise SimulatorError("the firmware benchmark needs the mosquitto binary")
        self.port = _free_port()
        conf = folder / "mosquitto.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n")
        self.proc = subprocess.Popen(
            [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise SimulatorError("mosquitto did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class _Capture:
    def __init__(self, port: int, device_id: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(f"cs/v1/d/{device_id}/#", 1)
        self.client.loop_start()

    def _on(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def on(self, leaf: str) -> list[tuple[str, bytes]]:
        with self._lock:
            return [m for m in self.messages if m[0].endswith("/" + leaf)]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _wait(cond: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise SimulatorError("the virtual device did not get there in time")
        time.sleep(0.1)


def _health(msgs: list[tuple[str, bytes]]) -> list[dict[str, Any]]:
    return [{r["n"]: r.get("v", r.get("vs")) for r in json.loads(p)} for _, p in msgs]


def _mains(folder: Path, port: int) -> dict[str, Any]:
    dev = VirtualDevice(
        data_dir=folder,
        seed=3,
        broker_port=port,
        heapsize="128K",
        sample_interval_s=1,
        health_interval_s=2,
    )
    cap = _Capture(port, dev.device_id)
    try:
        with dev:
            _wait(lambda: len(cap.on("health")) >= 6, 60)
        ups = cap.on("up")
        health = _health(cap.on("health"))
    finally:
        cap.close()
    values = sum(len(json.loads(p)) for _, p in ups)
    samples = sum(len({r.get("t", 0) for r in json.loads(p)}) for _, p in ups)
    # PUBLISH on the wire: fixed header (2), topic length (2) + topic, packet id (2), payload.
    wire = sum(6 + len(t) + len(p) for t, p in ups)
    return {
        "heap_bytes": HEAPSIZE,
        # The device's low-water mark of free heap after collections: the live peak it saw.
        "heap_live_peak_bytes": HEAPSIZE - min(h["heap_min_free"] for h in health),
        "heap_steady_bytes": HEAPSIZE - round(statistics.median(h["heap_free"] for h in health)),
        "wire_bytes_per_sample": round(wire / samples, 1),
        "wire_bytes_per_value": round(wire / values, 1),
        "values_per_pack": round(values / len(ups), 1),
    }


def _runs_clean(folder: Path, port: int, heap_kb: int, hours: float) -> bool:
    """Whether a mains node runs `hours` of simulated time (15-minute samples, hourly health,
    1440x) in a `heap_kb` heap without a memory error, and without resetting itself for it."""
    start = time.time() - hours * 3600 - 600
    dev = VirtualDevice(
        data_dir=folder / f"heap-{heap_kb}-{hours:g}",
        seed=5,
        broker_port=port,
        heapsize=f"{heap_kb}K",
        sample_interval_s=SAMPLE_S,
        health_interval_s=3600,
        speed=HEAP_SPEED,
        clock_start=start,
    )

    def failed() -> bool:
        log = dev.log_path.read_text() if dev.log_path.exists() else ""
        return "memory allocation failed" in log or dev.boots > 1

    with dev:
        end = start + hours * 3600
        _wait(lambda: dev.room_time() >= end or failed(), hours * 3600 / HEAP_SPEED + 30)
        return not failed()


def _heap_needed(folder: Path, port: int) -> int:
    """The smallest heap (in HEAP_STEP_KB steps) that runs a simulated day clean: the app's
    real peak, which free-heap samples cannot give (they count garbage not yet collected).
    Bisected over a few hours a trial, then confirmed over a whole day."""
    if not _runs_clean(folder, port, HEAP_HIGH_KB, 24):
        raise SimulatorError(f"the mains node does not run a day in {HEAP_HIGH_KB} KB")
    high = _bisect_kb(lambda kb: _runs_clean(folder, port, kb, HEAP_TRIAL_HOURS), HEAP_HIGH_KB)
    while not _runs_clean(folder, port, high, 24):
        high += HEAP_STEP_KB
    return high * 1024


def _bisect_kb(runs: Callable[[int], bool], high: int) -> int:
    """The smallest heap in KB (in HEAP_STEP_KB steps, above HEAP_LOW_KB: the 64 KB budget,
    which fails) in which `runs`, given that `high` does."""
    low = HEAP_LOW_KB
    while high - low > HEAP_STEP_KB:
        mid = (low + high) // 2 // HEAP_STEP_KB * HEAP_STEP_KB
        if runs(mid):
            high = mid
        else:
            low = mid
    return high


def _wakes_clean(folder: Path, port: int, board: str, heap_kb: int) -> bool:
    """Whether a battery node runs HEAP_WAKES wakes (three of them uplinks: the first boot's,
    which also syncs the clock and subscribes, and two routine ones) in a `heap_kb` heap
    without a memory error: each wake is a fresh VM, so a few wakes show every peak."""
    dev = VirtualDevice(
        data_dir=folder / f"heap-{heap_kb}",
        seed=6,
        board=board,
        broker_port=port,
        heapsize=f"{heap_kb}K",
        sample_interval_s=SAMPLE_S,
        health_interval_s=3600,
        time_scale=9000,
        clock_start=time.time() - (HEAP_WAKES + 4) * SAMPLE_S,  # readings end before now
        config={"uplink_every": UPLINK_EVERY},
    )

    def log() -> str:
        return dev.log_path.read_text() if dev.log_path.exists() else ""

    def failed() -> bool:
        text = log()
        return any(s in text for s in ("memory allocation failed", "app crashed", "uplink failed"))

    with dev:
        _wait(
            lambda: log().count("] sleep") >= HEAP_WAKES or failed() or dev.boots > 3 * HEAP_WAKES,
            60,
        )
    return not failed()


def _battery_heap_needed(folder: Path, port: int, board: str) -> int:
    """The smallest heap (in HEAP_STEP_KB steps) in which a battery node's wakes run clean."""
    high = 2 * HEAP_HIGH_KB
    if not _wakes_clean(folder, port, board, high):
        raise SimulatorError(f"the battery node {board} does not run in {high} KB")
    return _bisect_kb(lambda kb: _wakes_clean(folder, port, board, kb), high) * 1024


def _battery(folder: Path, port: int, board: str, profile: dict[str, Any]) -> dict[str, Any]:
    dev = VirtualDevice(
        data_dir=folder,
        seed=4,
        board=board,
        broker_port=port,
        heapsize="256K",
        sample_interval_s=SAMPLE_S,
        health_interval_s=3600,
        time_scale=9000,
        clock_start=time.time() - (WAKES + 4) * SAMPLE_S,  # readings end before now
        config={"uplink_every": UPLINK_EVERY},
    )
    dev.prepare()
    dev.update_sim(wifi={"rssi": -60, "join_ms": 0})  # the profile's join time is added below
    with dev:
        # 25 wakes: the median of ~18 sample-only wakes steadies the few-ms VM figures
        # on a shared machine.
        _wait(
            lambda: dev.log_path.exists() and dev.log_path.read_text().count("] sleep") >= WAKES, 90
        )
    sample_ms: list[int] = []  # VM time with the CPU running (light sleep taken out)
    uplink_ms: list[int] = []
    light_ms: list[int] = []  # light sleep per wake, as the firmware chose it
    uplink = False
    for line in dev.log_path.read_text().splitlines():
        if "uplink: fw" in line:
            uplink = True
        m = _AWAKE.search(line)
        if m:
            slept = int(m.group(2))
            (uplink_ms if uplink else sample_ms).append(int(m.group(1)) - slept)
            light_ms.append(slept)
            uplink = False
    uplink_ms = uplink_ms[1:]  # the first boot also syncs the clock and subscribes
    power = profile["power"]
    kinds = [s["type"] for s in profile["sensors"]]
    conv = sum(CONVERSION_MS.get(k, 0) for k in kinds)
    # The chips' own conversion energy (mA*ms), whatever the CPU does meanwhile.
    conv_mams = sum(CONVERSION_MA.get(k, 0.0) * CONVERSION_MS.get(k, 0) for k in kinds)
    light = float(statistics.median(light_ms))
    vm_sample = statistics.median(sample_ms)
    vm_uplink = statistics.median(uplink_ms)
    # Conversions the CPU did not sleep through keep it awake.
    cpu_ms = power["boot_ms"] + max(0, conv - light) + vm_sample * CPU_FACTOR
    radio_ms = power["wifi_join_ms"] + (vm_uplink - vm_sample) * CPU_FACTOR
    wake_mams = (
        power["awake_current_ma"] * cpu_ms
        + power.get("light_sleep_current_ma", 0) * light
        + conv_mams
    )
    wakes = 86400 // SAMPLE_S
    uplinks = wakes // UPLINK_EVERY
    mas_day = (
        power["sleep_current_ua"] / 1000 * 86400
        + wakes * wake_mams / 1000
        + uplinks * power["radio_current_ma"] * radio_ms / 1000
    )
    mah_day = mas_day / 3600
    usable = power["capacity_mah"] * power["usable_fraction"]
    return {
        "vm_awake_ms_sample_wake": vm_sample,
        "vm_awake_ms_uplink_wake": vm_uplink,
        "device_awake_ms_sample_wake": round(cpu_ms),
        "device_awake_ms_uplink_wake": round(cpu_ms + radio_ms),
        "device_light_sleep_ms_per_wake": light,
        "mah_per_day": round(mah_day, 3),
        "battery_life_years": round(usable / mah_day / 365, 1),
        "radio_uses": dev.radio_uses(),
        "wakes": len(sample_ms) + len(uplink_ms) + 1,
    }


def run() -> dict[str, Any]:
    profiles = {p.stem: json.loads(p.read_text()) for p in sorted(BOARDS_DIR.glob("*.json"))}
    battery = {n: p for n, p in profiles.items() if p["power"]["source"] == "battery"}
    with tempfile.TemporaryDirectory(prefix="fw-bench-") as tmp:
        folder = Path(tmp)
        broker = _Broker(folder)
        try:
            out = _mains(folder / "mains", broker.port)
            out["heap_peak_bytes_mains"] = _heap_needed(folder / "heap", broker.port)
            per_board = {n: _battery(folder / n, broker.port, n, p) for n, p in battery.items()}
            for n, r in per_board.items():
                r["heap_peak_bytes"] = _battery_heap_needed(folder / n / "heap", broker.port, n)
        finally:
            broker.stop()
    out["battery_life_years"] = {n: r["battery_life_years"] for n, r in per_board.items()}
    # The app's peak is its hungriest mode's: the mains day's or a battery wake's.
    out["heap_peak_bytes"] = max(
        [out["heap_peak_bytes_mains"]] + [r["heap_peak_bytes"] for r in per_board.values()]
    )
    for name, r in per_board.items():
        for key, value in r.items():
            if key != "battery_life_years":
                out[f"{name}.{key}"] = value
    out["assumed_cpu_factor"] = CPU_FACTOR
    out["sample_interval_s"] = SAMPLE_S
    out["uplink_every_n_wakes"] = UPLINK_EVERY
    return out

"""The simulated board's stand-ins for machine, network and esp32, run in the VM."""

from __future__ import annotations

import os
import time

import pytest

from tests.firmware.conftest import VM

pytestmark = pytest.mark.vm


def test_persistent_state_survives_a_restart(vm: VM) -> None:
    first = """
import json, machine, esp32
machine.RTC().memory(b"boot-flag")
nvs = esp32.NVS("cs")
nvs.set_i32("boots", 7)
nvs.set_blob("token", b"abc")
nvs.commit()
run = esp32.Partition(esp32.Partition.RUNNING)
nxt = run.get_next_update()
nxt.writeblocks(1, b"\\x01" * 4096)
try:
    nxt.set_boot()  # refused, as by ESP-IDF: the slot holds no valid app image
    refused = False
except OSError:
    refused = True
esp32.Partition.mark_app_valid_cancel_rollback()
pwron = machine.reset_cause() == machine.PWRON_RESET
print("RESULT", json.dumps([pwron, run.info()[4], nxt.info()[4], refused]))
"""
    second = """
import json, machine, esp32
nvs = esp32.NVS("cs")
buf = bytearray(8)
n = nvs.get_blob("token", buf)
try:
    nvs.get_i32("missing")
    missing = False
except OSError:
    missing = True
blk = bytearray(4096)
esp32.Partition("ota_1").readblocks(1, blk)
print("RESULT", json.dumps([machine.RTC().memory().decode(), nvs.get_i32("boots"),
      bytes(buf[:n]).decode(), missing, blk[0], blk[-1]]))
"""
    (r1,) = vm.results(vm.run(first))
    assert r1 == [True, "ota_0", "ota_1", True]
    (r2,) = vm.results(vm.run(second))
    assert r2 == ["boot-flag", 7, "abc", True, 1, 1]


def test_reset_and_deepsleep_record_the_cause(vm: VM) -> None:
    proc = vm.popen("import machine\nmachine.deepsleep(1234)\n")
    proc.communicate(timeout=30)
    assert proc.returncode == 101
    assert (vm.device_dir / ".sim_reset").read_text().split() == ["4", "4", "1234"]
    out = vm.run(
        "import json, machine\n"
        "print('RESULT', json.dumps([machine.reset_cause(), machine.wake_reason()]))\n"
    )
    assert vm.results(out) == [[4, 4]]  # DEEPSLEEP_RESET, TIMER_WAKE
    assert not (vm.device_dir / ".sim_reset").exists()  # the next boot is a power-on again


def test_a_boot_after_deep_sleep_starts_its_clocks_where_the_sleep_ended(vm: VM) -> None:
    """The chip's RTC runs through the sleep and no longer: a host that took an hour to start
    the next VM (here: the clock file moved an hour on) does not show in the device's time."""
    proc = vm.popen(
        "import machine, time\n"
        "time.set_rtc(1800000000)\n"
        "print('RESULT', time.true_time())\n"
        "machine.deepsleep(600000)\n"
    )
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 101
    (slept_at,) = vm.results(out)
    clock = vm.device_dir / ".sim_clock"
    offset, skew = clock.read_text().split()
    clock.write_text(f"{float(offset) + 3600!r} {skew}")  # a very slow host restart

    woke = vm.run(
        "import json, time\nprint('RESULT', json.dumps([time.time(), time.true_time()]))\n"
    )
    ((rtc, room),) = vm.results(woke)
    assert 1800000600 <= rtc < 1800000600 + 60  # not 1800004200: the host's hour is not counted
    assert slept_at + 600 <= room < slept_at + 600 + 60
    assert not (vm.device_dir / ".sim_wake").exists()  # used once
    again = vm.run("import json, time\nprint('RESULT', json.dumps(time.time()))\n")
    assert rtc <= vm.results(again)[0] < rtc + 60  # later boots (a reset) keep that time


def test_wifi_pins_adc_and_identity(vm: VM) -> None:
    vm.write_sim(mac="02cc000000aa", wifi={"rssi": -61, "join_ms": 0}, adc={"34": 1100000})
    code = """
import json, time, machine, network
w = network.WLAN(network.STA_IF)
w.active(True)
w.connect("sim", "sim")
while not w.isconnected():
    time.sleep_ms(10)
p = machine.Pin(2, machine.Pin.OUT, value=1)
adc = machine.ADC(machine.Pin(34))
print("RESULT", json.dumps([w.status("rssi"), w.config("mac").hex(), machine.unique_id().hex(),
      p.value(), adc.read_uv(), w.ifconfig()[0]]))
"""
    (res,) = vm.results(vm.run(code))
    assert res == [-61, "02cc000000aa", "02cc000000aa", 1, 1100000, "10.0.0.170"]


def test_a_room_change_reaches_the_running_sim(vm: VM) -> None:
    # sim.json from a moment ago: the rewrite below gets a later mtime (whole seconds in the VM).
    sim = vm.device_dir / "sim.json"
    os.utime(sim, (time.time() - 5, time.time() - 5))
    code = """
import json
from simdev import state
t = 1763850000
before = state.room().air(t)
with open("sim.json") as f:
    sim = json.load(f)
sim["room"] = {"rh_base": 30.0, "rh_amp": 0.0, "noise": 0.0, "events": []}
with open("sim.json", "w") as f:
    json.dump(sim, f)
after = state.room().air(t)
print("RESULT", json.dumps([before, after, state.room() is state.room()]))
"""
    (res,) = vm.results(vm.run(code))
    before, after, cached = res
    assert before[1] != 30.0 and after[1] == 30.0  # the new humidity, from the next reading on
    assert cached  # and the model is rebuilt only when the file changes


def test_room_model_is_deterministic_per_seed(vm: VM) -> None:
    code = """
import json
from simdev.room import Room
a, b, c = Room(5), Room(5), Room(6)
ts = [1763850000 + i * 900 for i in range(96)]
print("RESULT", json.dumps([[m.air(t) for t in ts] for m in (a, b, c)]))
print("RESULT", json.dumps([[a.surface(t), a.co2(t)] for t in ts]))
"""
    res, other = vm.results(vm.run(code, heapsize="4M"))
    a, b, c = res
    assert a == b and a != c
    temps = [t for t, _ in a]
    rhs = [rh for _, rh in a]
    assert 12 < min(temps) < max(temps) < 30 and max(temps) - min(temps) > 1.5
    assert all(1 <= rh <= 99 for rh in rhs)
    assert max(rhs) - min(rhs) > 10  # moisture events (shower, cooking) show up
    # The wall is colder than the air (f_Rsi < 1 with a cold outdoors); CO2 rises at night.
    assert all(s < t for (s, _), (t, _) in zip(other, a, strict=True))
    co2 = [c for _, c in other]
    assert min(co2) >= 420 and max(co2) > 900

"""The real DS18B20 driver in the VM against the simulated 1-Wire bus: a probe whose line is
shorted, or whose scratchpad cannot be a DS18B20's, is a fault, never a reading."""

from __future__ import annotations

import pytest

from tests.firmware.conftest import VM

pytestmark = pytest.mark.vm

PROBE = [{"type": "ds18b20", "pin": 4, "rom": "28ff641e0f160301"}]

READ = """
import json, machine, onewire
from cs.drivers import SensorError
from cs.drivers.ds18b20 import DS18B20
dev = DS18B20(onewire.OneWire(machine.Pin(4)))
for _ in range(2):
    try:
        print("RESULT", json.dumps(dev.read()))
    except SensorError as e:
        print("RESULT", json.dumps({"kind": e.kind, "msg": str(e)}))
"""

# A bus that answers resets and then clocks out a fixed scratchpad (the conversion is done).
FIXED_PAD = """
import json
import onewire
from cs.drivers import SensorError
from cs.drivers.ds18b20 import DS18B20

class Bus:
    def __init__(self, pad):
        self.pad = pad
    def reset(self, required=False):
        return True
    def writebyte(self, b):
        pass
    def write(self, b):
        pass
    def readbit(self):
        return 1
    def readinto(self, buf):
        buf[:] = self.pad
    def crc8(self, data):
        return onewire.crc8(data)

def pad(first8):
    b = bytearray(first8)
    b.append(onewire.crc8(b))
    return bytes(b)

cases = {
    "ones": b"\\xff" * 9,
    "zeros": bytes(9),
    "reserved": pad(b"\\x50\\x01\\x4b\\x46\\x5f\\x00\\x0c\\x10"),
    "cfgbits": pad(b"\\x50\\x01\\x4b\\x46\\x00\\xff\\x0c\\x10"),
    "good": pad(b"\\x50\\x01\\x4b\\x46\\x5f\\xff\\x0c\\x10"),
    "reloaded": pad(b"\\x50\\x01\\x4b\\x46\\x7f\\xff\\x0c\\x10"),
}
for name, p in cases.items():
    dev = DS18B20(Bus(p))
    try:
        out = dev.read()
        print("RESULT", json.dumps({"case": name, "value": out, "configured": dev._configured}))
    except SensorError as e:
        print("RESULT", json.dumps({"case": name, "kind": e.kind}))
"""


def test_a_healthy_probe_reads_the_room(vm: VM) -> None:
    vm.write_sim(sensors=PROBE)
    results = vm.results(vm.run(READ))
    assert len(results) == 2
    for r in results:
        assert -10 < r["surface_temperature"] < 40


def test_a_line_shorted_to_ground_is_a_fault_not_zero_degrees(vm: VM) -> None:
    # The line reads low: resets look answered, the conversion never ends, pads read 0x00.
    vm.write_sim(sensors=PROBE, faults={"ds18b20": "short"})
    results = vm.results(vm.run(READ))
    assert [r["kind"] for r in results] == ["nack", "nack"], results
    assert "held low" in results[0]["msg"]


def test_scratchpads_no_ds18b20_sends_are_faults(vm: VM) -> None:
    got = {r["case"]: r for r in vm.results(vm.run(FIXED_PAD))}
    assert got["ones"]["kind"] == "nack"
    assert got["zeros"]["kind"] == "nack"  # CRC-valid, and still no reading
    assert got["reserved"]["kind"] == "crc"
    assert got["cfgbits"]["kind"] == "crc"
    assert got["good"]["value"] == {"surface_temperature": 21.0}
    assert got["good"]["configured"] is True
    # A probe that lost power reports 12 bits: still a reading, and 11 bits are set again.
    assert got["reloaded"]["value"] == {"surface_temperature": 21.0}
    assert got["reloaded"]["configured"] is False

"""The real SHT4x driver in the VM against the simulated chip's I2C transactions."""

from __future__ import annotations

import pytest

from tests.firmware.conftest import VM

pytestmark = pytest.mark.vm

MEASURE = """
import json, machine
from cs.drivers import sht4x
i2c = machine.I2C(0, scl=machine.Pin(22), sda=machine.Pin(21), freq=100000)
dev = sht4x.SHT4x(i2c, 0x44)
print("RESULT", json.dumps({"scan": i2c.scan()}))
for p in (sht4x.HIGH, sht4x.MEDIUM, sht4x.LOW):
    t, rh = dev.measure(p)
    print("RESULT", json.dumps({"t": t, "rh": rh}))
print("RESULT", json.dumps({"serial": dev.serial_number()}))
dev.soft_reset()
"""

ERROR = """
import json, machine
from cs.drivers import sht4x
dev = sht4x.SHT4x(machine.I2C(0), 0x44)
try:
    dev.measure()
    print("RESULT", json.dumps({"kind": None}))
except sht4x.SHT4xError as e:
    print("RESULT", json.dumps({"kind": e.kind, "msg": str(e)}))
"""


def test_measure_decodes_what_the_chip_encoded(vm: VM) -> None:
    results = vm.results(vm.run(MEASURE))
    assert results[0] == {"scan": [0x44]}
    served = vm.readings()
    assert [r["precision"] for r in served] == ["high", "medium", "low"]
    for got, chip in zip(results[1:4], served, strict=True):
        # Same 16-bit words, same formula: identical up to float rounding.
        assert got["t"] == pytest.approx(chip["temperature"], abs=1e-6)
        assert got["rh"] == pytest.approx(chip["humidity"], abs=1e-6)
        assert 10 < got["t"] < 35 and 0 <= got["rh"] <= 100
    assert isinstance(results[4]["serial"], int)


def test_crc_corruption_is_a_clear_error(vm: VM) -> None:
    vm.write_sim(faults={"sht4x": "crc"})
    (result,) = vm.results(vm.run(ERROR))
    assert result["kind"] == "crc"
    assert "CRC mismatch" in result["msg"]
    assert vm.readings()[0]["fault"] == "crc"


def test_missing_ack_is_a_clear_error(vm: VM) -> None:
    vm.write_sim(faults={"sht4x": "nack"})
    (result,) = vm.results(vm.run(ERROR))
    assert result["kind"] == "nack"
    assert "did not acknowledge" in result["msg"] and "0x44" in result["msg"]
    assert vm.readings() == []


def test_absent_chip_nacks(vm: VM) -> None:
    vm.write_sim(sensors=[])
    (result,) = vm.results(vm.run(ERROR))
    assert result["kind"] == "nack"


def test_crc8_and_conversions(vm: VM) -> None:
    code = """
import json
from cs.drivers import sht4x
print("RESULT", json.dumps([sht4x.crc8(b"\\xbe\\xef"), sht4x.to_celsius(0), sht4x.to_celsius(65535),
      sht4x.to_rh(0), sht4x.to_rh(65535), sht4x.to_rh(32768)]))
"""
    (res,) = vm.results(vm.run(code))
    crc, t_min, t_max, rh_low, rh_high, rh_mid = res
    assert crc == 0x92  # datasheet example: CRC(0xBEEF) = 0x92
    assert t_min == pytest.approx(-45.0) and t_max == pytest.approx(130.0)
    assert rh_low == 0.0 and rh_high == 100.0  # clipped, not -6 / 119
    assert rh_mid == pytest.approx(-6 + 125 * 32768 / 65535)


MAKE_FAILS = """
import json
from cs.sensors import Sensors

class Board:  # its I2C bus cannot be made, for the reason the test names
    def i2c(self):
        raise %s

profile = {"sensors": [{"type": "sht4x", "addr": 0x44}]}
sensors = Sensors(Board(), profile, False, {})
print("RESULT", json.dumps({"values": sensors.sample(), "faults": sensors.faults()}))
"""


@pytest.mark.parametrize(
    ("raised", "flag"),
    [
        ("OSError(-1)", "sht4x:bus"),  # ESP_FAIL: the I2C driver did not install
        ("MemoryError()", "sht4x:error"),  # no heap for the driver: not a wiring fault
    ],
)
def test_a_driver_that_cannot_be_made_is_flagged_by_why(vm: VM, raised: str, flag: str) -> None:
    (result,) = vm.results(vm.run(MAKE_FAILS % raised))
    assert result == {"values": {}, "faults": flag}

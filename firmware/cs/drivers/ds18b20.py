"""Maxim DS18B20 1-Wire temperature probe (the wall-surface probe for surface RH).

Takes a `onewire.OneWire` bus (built by the board layer). Convert T (0x44), then
read the 9-byte scratchpad (0xBE) with its Dallas CRC-8. 11-bit resolution
(0.125 degC, 375 ms) is set once: a quarter of the 12-bit conversion energy for
a surface reading that changes slowly. 85.0 degC is the power-on value a failed
conversion leaves behind and is reported as a range fault. A line held low (a probe
cable shorted to GND) answers every reset with what looks like a presence pulse and
reads all zeros, whose CRC is valid: a conversion that never ends, an all-0x00 or
all-0xFF scratchpad, or one whose fixed bytes are wrong are faults, never readings.
"""

import time

from micropython import const

from cs.drivers import SensorError

_CONVERT = const(0x44)
_READ = const(0xBE)
_WRITE = const(0x4E)
_CFG_11BIT = const(0x5F)
_CONVERT_MS = const(375)  # 11-bit conversion, datasheet maximum
_POLLS = const(80)  # 10 ms polls: covers a 12-bit conversion (750 ms) after a probe reset
_LOW = b"\x00" * 9
_HIGH = b"\xff" * 9


class DS18B20:
    def __init__(self, ow, rom=None, nap=None) -> None:
        """`nap(ms)` waits out the conversion (a battery board light-sleeps through it)."""
        self._ow = ow
        self._nap = nap
        self.rom = rom
        self._configured = False
        self.raw = 0

    def _select(self) -> None:
        if not self._ow.reset():
            raise SensorError("nack", "DS18B20: no presence pulse on the 1-Wire bus: check the probe and its pull-up")
        if self.rom is None:
            self._ow.writebyte(0xCC)  # skip ROM: the only probe on this pin
        else:
            self._ow.writebyte(0x55)
            self._ow.write(self.rom)

    def read(self) -> dict:
        if not self._configured:
            self._select()
            self._ow.write(bytes((_WRITE, 0x4B, 0x46, _CFG_11BIT)))
            self._configured = True
        self._select()
        self._ow.writebyte(_CONVERT)
        if self._nap is not None:
            self._nap(_CONVERT_MS)  # the CPU sleeps instead of polling the bus
        for _ in range(_POLLS):  # the probe holds read slots low until the conversion ends
            if self._ow.readbit():
                break
            time.sleep_ms(10)
        else:
            # A line shorted to GND (water in the probe cable) looks like a probe present and
            # forever converting; its scratchpad would read as a valid 0.0 degC.
            raise SensorError("nack", "DS18B20 conversion never finished: 1-Wire line held low (shorted probe cable?)")
        self._select()
        self._ow.writebyte(_READ)
        pad = bytearray(9)
        self._ow.readinto(pad)
        if pad == _LOW or pad == _HIGH:  # all 0x00 passes the CRC; nobody drove the line
            raise SensorError("nack", "DS18B20 scratchpad reads all 0x%02x: shorted or open 1-Wire line" % pad[0])
        if self._ow.crc8(pad[:8]) != pad[8]:
            raise SensorError("crc", "DS18B20 scratchpad CRC mismatch: long cable or missing pull-up")
        if pad[5] != 0xFF or (pad[4] & 0x9F) != 0x1F:  # reserved byte, fixed config bits
            raise SensorError("crc", "DS18B20 scratchpad malformed: not a DS18B20, or a corrupted read")
        if pad[4] != _CFG_11BIT:
            self._configured = False  # the probe lost power and reloaded 12 bits: set 11 again
        raw = pad[0] | (pad[1] << 8)
        if raw & 0x8000:
            raw -= 65536
        if raw == 0x0550:
            raise SensorError("range", "DS18B20 reads 85.0 degC, the power-on value: conversion failed")
        self.raw = raw
        return {"surface_temperature": raw / 16.0}

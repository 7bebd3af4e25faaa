"""Maxim DS18B20 1-Wire temperature probe (the wall-surface probe for surface RH).

Takes a `onewire.OneWire` bus (built by the board layer). Convert T (0x44), then
read the 9-byte scratchpad (0xBE) with its Dallas CRC-8. 11-bit resolution
(0.125 degC, 375 ms) is set once: a quarter of the 12-bit conversion energy for
a surface reading that changes slowly. 85.0 degC is the power-on value a failed
conversion leaves behind and is reported as a range fault.
"""

import time

from micropython import const

from cs.drivers import SensorError

_CONVERT = const(0x44)
_READ = const(0xBE)
_WRITE = const(0x4E)
_CFG_11BIT = const(0x5F)
_CONVERT_MS = const(375)  # 11-bit conversion, datasheet maximum


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
        for _ in range(100):  # the probe holds read slots low until the conversion ends
            if self._ow.readbit():
                break
            time.sleep_ms(10)
        self._select()
        self._ow.writebyte(_READ)
        pad = bytearray(9)
        self._ow.readinto(pad)
        if self._ow.crc8(pad[:8]) != pad[8]:
            raise SensorError("crc", "DS18B20 scratchpad CRC mismatch: long cable or missing pull-up")
        raw = pad[0] | (pad[1] << 8)
        if raw & 0x8000:
            raw -= 65536
        if raw == 0x0550:
            raise SensorError("range", "DS18B20 reads 85.0 degC, the power-on value: conversion failed")
        self.raw = raw
        return {"surface_temperature": raw / 16.0}

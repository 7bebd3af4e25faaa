"""Sensirion SCD40/41 CO2 sensor over I2C.

16-bit commands; replies (and arguments) are words + CRC-8 (0x31, init 0xFF).
CO2 = word0 ppm; T = -45 + 175*w1/65535 degC; RH = 100*w2/65535 %RH.
Mains boards run periodic measurement (a reading every 5 s, read when ready);
battery boards use single shot (SCD41 only: 5 s, then the chip idles).
The temperature offset corrects the board's self-heating of the chip.
"""

import struct
import time

from micropython import const

from cs.drivers import SensorError, crc8, words

ADDR = const(0x62)
_START_PERIODIC = const(0x21B1)
_SINGLE_SHOT = const(0x219D)
_READ = const(0xEC05)
_STOP = const(0x3F86)
_READY = const(0xE4B8)
_SET_T_OFFSET = const(0x241D)


class SCD4x:
    def __init__(self, i2c, addr: int = ADDR, periodic: bool = True, t_offset: float = 4.0) -> None:
        self._i2c = i2c
        self.addr = addr
        self.periodic = periodic
        self.t_offset = t_offset
        self._started = False
        self._buf = bytearray(9)
        self.raw = 0

    def _cmd(self, cmd: int, arg=None, read: int = 0, wait_ms: int = 1):
        data = struct.pack(">H", cmd)
        if arg is not None:
            a = struct.pack(">H", arg)
            data += a + bytes((crc8(a),))
        try:
            self._i2c.writeto(self.addr, data)
            if not read:
                time.sleep_ms(wait_ms)
                return None
            time.sleep_ms(wait_ms)
            buf = memoryview(self._buf)[: 3 * read]
            self._i2c.readfrom_into(self.addr, buf)
        except OSError as e:
            raise SensorError("nack", "SCD4x at 0x%02x did not acknowledge 0x%04x (%r)" % (self.addr, cmd, e))
        return words(buf, read, "SCD4x")

    def start(self) -> None:
        """Idle -> measuring. Stop first: after a soft reboot the chip may still measure."""
        self._cmd(_STOP, wait_ms=500)
        self._cmd(_SET_T_OFFSET, int(self.t_offset * 65535 / 175 + 0.5))
        if self.periodic:
            self._cmd(_START_PERIODIC)
        self._started = True

    def ready(self) -> bool:
        return bool(self._cmd(_READY, read=1)[0] & 0x07FF)

    def read(self) -> dict:
        """A measurement, or {} while none is ready (periodic mode: every 5 s)."""
        if not self._started:
            self.start()
        if not self.periodic:
            self._cmd(_SINGLE_SHOT)
            for _ in range(60):  # 5 s typical; poll instead of a fixed sleep
                time.sleep_ms(100)
                if self.ready():
                    break
        if not self.ready():
            return {}
        co2, tw, hw = self._cmd(_READ, read=3)
        if not 250 <= co2 <= 40000:
            raise SensorError("range", "SCD4x CO2 %d ppm is outside 250..40000" % co2)
        self.raw = (co2 << 32) | (tw << 16) | hw
        return {"co2": co2, "temperature": -45.0 + 175.0 * tw / 65535.0, "humidity": 100.0 * hw / 65535.0}

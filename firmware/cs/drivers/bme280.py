"""Bosch BME280 temperature, humidity and pressure sensor over I2C (0x76/0x77, chip id 0x60).

Forced mode (one conversion, then sleep: right for both power modes at minutes
between readings) with x1 oversampling. The raw ADC values go through the
datasheet's integer compensation using the chip's factory trimming (0x88.., 0xE1..).
"""

import struct
import time

from micropython import const

from cs.drivers import SensorError

_ID = const(0xD0)
_CTRL_HUM = const(0xF2)
_STATUS = const(0xF3)
_CTRL_MEAS = const(0xF4)
_DATA = const(0xF7)


class BME280:
    def __init__(self, i2c, addr: int = 0x76) -> None:
        self._i2c = i2c
        self.addr = addr
        self._cal: "tuple | None" = None
        self.raw = 0

    def _rd(self, reg: int, n: int) -> bytes:
        try:
            return self._i2c.readfrom_mem(self.addr, reg, n)
        except OSError as e:
            raise SensorError("nack", "BME280 at 0x%02x did not acknowledge (%r)" % (self.addr, e))

    def _wr(self, reg: int, val: int) -> None:
        try:
            self._i2c.writeto_mem(self.addr, reg, bytes((val,)))
        except OSError as e:
            raise SensorError("nack", "BME280 at 0x%02x did not acknowledge (%r)" % (self.addr, e))

    def _trim(self) -> tuple:
        if self._rd(_ID, 1)[0] != 0x60:
            raise SensorError("id", "chip at 0x%02x is not a BME280" % self.addr)
        a = struct.unpack("<HhhHhhhhhhhh", self._rd(0x88, 24))
        h1 = self._rd(0xA1, 1)[0]
        e = self._rd(0xE1, 7)
        h4 = (e[3] << 4) | (e[4] & 0x0F)
        h5 = (e[5] << 4) | (e[4] >> 4)
        h2, h6 = struct.unpack("<h", e[0:2])[0], struct.unpack("<b", e[6:7])[0]
        return a + (h1, h2, e[2], h4 - 4096 if h4 > 2047 else h4, h5 - 4096 if h5 > 2047 else h5, h6)

    def read(self) -> dict:
        if self._cal is None:
            self._cal = self._trim()
        c: tuple = self._cal
        self._wr(_CTRL_HUM, 0x01)
        self._wr(_CTRL_MEAS, 0x25)  # T x1, P x1, forced
        for _ in range(20):
            time.sleep_ms(2)
            if not self._rd(_STATUS, 1)[0] & 0x08:
                break
        d = self._rd(_DATA, 8)
        adc_p = (d[0] << 12) | (d[1] << 4) | (d[2] >> 4)
        adc_t = (d[3] << 12) | (d[4] << 4) | (d[5] >> 4)
        adc_h = (d[6] << 8) | d[7]
        if adc_t == 0x80000 or adc_h == 0x8000:
            raise SensorError("range", "BME280 returned the 'skipped' pattern: measurement not done")
        t1, t2, t3, p1, p2, p3, p4, p5, p6, p7, p8, p9, h1, h2, h3, h4, h5, h6 = c
        v1 = (((adc_t >> 3) - (t1 << 1)) * t2) >> 11
        v2 = (((((adc_t >> 4) - t1) * ((adc_t >> 4) - t1)) >> 12) * t3) >> 14
        tf = v1 + v2
        temp = ((tf * 5 + 128) >> 8) / 100.0
        v1 = tf - 128000
        v2 = v1 * v1 * p6 + ((v1 * p5) << 17) + (p4 << 35)
        v1 = ((v1 * v1 * p3) >> 8) + ((v1 * p2) << 12)
        v1 = (((1 << 47) + v1) * p1) >> 33
        pa = 0.0
        if v1:
            p = 1048576 - adc_p
            p = (((p << 31) - v2) * 3125) // v1
            v1 = (p9 * (p >> 13) * (p >> 13)) >> 25
            v2 = (p8 * p) >> 19
            pa = (((p + v1 + v2) >> 8) + (p7 << 4)) / 256.0
        x = tf - 76800
        x = ((((adc_h << 14) - (h4 << 20) - (h5 * x)) + 16384) >> 15) * (
            ((((((x * h6) >> 10) * (((x * h3) >> 11) + 32768)) >> 10) + 2097152) * h2 + 8192) >> 14
        )
        x -= ((((x >> 15) * (x >> 15)) >> 7) * h1) >> 4
        x = 0 if x < 0 else 419430400 if x > 419430400 else x
        rh = (x >> 12) / 1024.0
        if not -40.0 <= temp <= 85.0 or not 30000.0 <= pa <= 110000.0:
            raise SensorError("range", "BME280 reads %.1f degC, %.0f Pa: outside its range" % (temp, pa))
        self.raw = (adc_t << 36) | (adc_p << 16) | adc_h
        return {"temperature": temp, "humidity": rh, "pressure": pa}

"""Simulated Bosch BME280 (chip id 0x60) answering register reads and writes.

Holds a typical part's factory trimming; a forced-mode write to ctrl_meas (0xF4)
makes a conversion whose raw ADC values are found by bisection so that the
datasheet's own compensation gives the room's T, RH and pressure. Faults:
"nack", "range" (the 0x80000 'skipped' pattern), "stuck".
"""

import struct

from simdev import state

_T = (27504, 26435, -1000)
_P = (36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000)
_H = (75, 362, 0, 324, 50, 30)


def _t_fine(adc_t):
    t1, t2, t3 = _T
    v1 = (((adc_t >> 3) - (t1 << 1)) * t2) >> 11
    v2 = (((((adc_t >> 4) - t1) * ((adc_t >> 4) - t1)) >> 12) * t3) >> 14
    return v1 + v2


def _p(adc_p, tf):
    p1, p2, p3, p4, p5, p6, p7, p8, p9 = _P
    v1 = tf - 128000
    v2 = v1 * v1 * p6 + ((v1 * p5) << 17) + (p4 << 35)
    v1 = ((v1 * v1 * p3) >> 8) + ((v1 * p2) << 12)
    v1 = (((1 << 47) + v1) * p1) >> 33
    p = 1048576 - adc_p
    p = (((p << 31) - v2) * 3125) // v1
    return (((p + ((p9 * (p >> 13) * (p >> 13)) >> 25) + ((p8 * p) >> 19)) >> 8) + (p7 << 4)) / 256.0


def _h(adc_h, tf):
    h1, h2, h3, h4, h5, h6 = _H
    x = tf - 76800
    x = ((((adc_h << 14) - (h4 << 20) - (h5 * x)) + 16384) >> 15) * (
        ((((((x * h6) >> 10) * (((x * h3) >> 11) + 32768)) >> 10) + 2097152) * h2 + 8192) >> 14
    )
    x -= ((((x >> 15) * (x >> 15)) >> 7) * h1) >> 4
    x = 0 if x < 0 else 419430400 if x > 419430400 else x
    return (x >> 12) / 1024.0


def _bisect(f, want, lo, hi, rising=True):
    while lo < hi:
        mid = (lo + hi) // 2
        if (f(mid) < want) == rising:
            lo = mid + 1
        else:
            hi = mid
    return lo


class BME280:
    name = "bme280"

    def __init__(self, addr, room):
        self.addr = addr
        self.room = room
        self.regs = bytearray(256)
        self.regs[0xD0] = 0x60
        self.regs[0x88:0xA0] = struct.pack("<Hhh", *_T) + struct.pack("<Hhhhhhhhh", *_P)
        h1, h2, h3, h4, h5, h6 = _H
        self.regs[0xA1] = h1
        self.regs[0xE1:0xE8] = struct.pack("<hB", h2, h3) + bytes(
            ((h4 >> 4) & 0xFF, (h4 & 0x0F) | ((h5 & 0x0F) << 4), (h5 >> 4) & 0xFF, h6 & 0xFF)
        )
        self._ptr = 0
        self._stuck = None

    def write(self, data):
        if state.fault(self.name) == "nack" or not data:
            raise OSError(19)
        self._ptr = data[0]
        if len(data) > 1:
            self.regs[data[0]] = data[1]
            if data[0] == 0xF4 and data[1] & 3 == 1:
                self._convert()

    def read(self, n):
        if state.fault(self.name) == "nack":
            raise OSError(19)
        out = bytes(self.regs[self._ptr : self._ptr + n])
        self._ptr += n
        return out

    def _convert(self):
        import time

        fault = state.fault(self.name)
        now = time.true_time()
        t, rh = self.room.air(now)
        pa = self.room.pressure(now)
        adc_t = _bisect(lambda a: ((_t_fine(a) * 5 + 128) >> 8) / 100.0, t, 0, 0xFFFFF)
        tf = _t_fine(adc_t)
        adc_p = _bisect(lambda a: _p(a, tf), pa, 0, 0xFFFFF, False)
        adc_h = _bisect(lambda a: _h(a, tf), rh, 0, 0xFFFF)
        if fault == "stuck":
            if self._stuck is None:
                self._stuck = (adc_t, adc_p, adc_h)
            adc_t, adc_p, adc_h = self._stuck
        else:
            self._stuck = None
        if fault == "range":
            adc_t = 0x80000
        self.regs[0xF7:0xFF] = bytes(
            (adc_p >> 12, (adc_p >> 4) & 0xFF, (adc_p & 0xF) << 4, adc_t >> 12, (adc_t >> 4) & 0xFF, (adc_t & 0xF) << 4, adc_h >> 8, adc_h & 0xFF)
        )
        state.log_reading(
            now, self.name, fault, "forced",
            temperature=((tf * 5 + 128) >> 8) / 100.0, humidity=_h(adc_h, tf), pressure=_p(adc_p, tf),
        )

"""Less-used `machine` classes, loaded on first use (see machine.__getattr__).

Kept out of machine.py so the simulated board costs the VM heap little, as the
real built-in module costs the ESP32 heap nothing.
"""

import time

from machine import Pin
from simdev import state


def lightsleep(time_ms=0):
    """Sleeps like deep sleep does in the sim: sim.json "time_scale" shortens it in host
    time while the board's clocks (ticks, RTC, room) advance by all of it."""
    ms = int(time_ms)
    real = ms / state.sim().get("time_scale", 1)
    time.sleep(real / 1000)
    time.passed_ms(ms - real)


def idle():
    time.sleep_ms(1)


class Signal:
    def __init__(self, pin, invert=False):
        self._pin = pin
        self._invert = invert

    def value(self, v=None):
        if v is None:
            return self._pin.value() ^ self._invert
        self._pin.value(bool(v) ^ self._invert)
        return None

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)


class ADC:
    ATTN_0DB = 0
    ATTN_2_5DB = 1
    ATTN_6DB = 2
    ATTN_11DB = 3
    WIDTH_12BIT = 3

    def __init__(self, pin, atten=ATTN_11DB):
        self.pin = pin
        self._atten = atten

    def atten(self, a):
        self._atten = a

    def width(self, w):
        pass

    def read_uv(self):
        sim = state.sim()
        pid = self.pin.id if isinstance(self.pin, Pin) else self.pin
        for s in sim["sensors"]:
            if s["type"] == "battery" and s.get("pin") == pid:
                # The divider scales the cell voltage into the ADC's range.
                uv = int(s.get("volts", 3.3) * 1e6 / s.get("divider", 2.0))
                state.log_reading(time.true_time(), "battery", None, "adc", battery_voltage=uv * s.get("divider", 2.0) / 1e6)
                return uv
        return int(sim.get("adc", {}).get(str(pid), 1650000))

    def read_u16(self):
        return min(65535, self.read_uv() * 65535 // 3300000)

    def read(self):
        return self.read_u16() >> 4


class Timer:
    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, id=-1, **kw):
        pass

    def init(self, **kw):
        pass

    def deinit(self):
        pass

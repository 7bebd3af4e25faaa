"""Less-used `machine` classes, loaded on first use (see machine.__getattr__).

Kept out of machine.py so the simulated board costs the VM heap little, as the
real built-in module costs the ESP32 heap nothing.
"""

import sys
import time

from machine import DEEPSLEEP_RESET, HARD_RESET, SOFT_RESET, TIMER_WAKE, WDT_RESET, Pin
from simdev import state

_RTC_FILE = "rtc_memory.bin"


def _restart(cause, code, wake=0, sleep_ms=0):
    state.write_bytes(state.RESET_FILE, ("%d %d %d" % (cause, wake, sleep_ms)).encode())
    sys.exit(code)


def reset():
    _restart(HARD_RESET, state.EXIT_RESET)


def soft_reset():
    _restart(SOFT_RESET, state.EXIT_RESET)


def deepsleep(time_ms=0):
    # The launcher reads the sleep time from the reset file and restarts us after it.
    _restart(DEEPSLEEP_RESET, state.EXIT_DEEPSLEEP, TIMER_WAKE, int(time_ms))


def lightsleep(time_ms=0):
    time.sleep_ms(int(time_ms))


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
        adc = state.sim().get("adc", {})
        pid = self.pin.id if isinstance(self.pin, Pin) else self.pin
        return int(adc.get(str(pid), 1650000))

    def read_u16(self):
        return min(65535, self.read_uv() * 65535 // 3300000)

    def read(self):
        return self.read_u16() >> 4


# -- RTC and watchdog -----------------------------------------------------------------
class RTC:
    def __init__(self, id=0):
        pass

    def datetime(self, dt=None):
        if dt is not None:
            return None  # the VM follows the host clock
        tm = time.localtime()
        return (tm[0], tm[1], tm[2], tm[6], tm[3], tm[4], tm[5], 0)

    def init(self, dt=None):
        pass

    def memory(self, data=None):
        """Up to 2048 bytes that survive resets and deep sleep (lost on power-on)."""
        if data is None:
            return state.read_bytes(_RTC_FILE) or b""
        if len(data) > 2048:
            raise ValueError("RTC memory is 2048 bytes")
        state.write_bytes(_RTC_FILE, bytes(data))
        return None


class WDT:
    """Watchdog that cannot be stopped. Without a hardware timer in the VM, a feed that
    comes later than the timeout resets the device, as the real one would have."""

    def __init__(self, id=0, timeout=5000):
        self.timeout = max(1, int(timeout))
        self._last = time.ticks_ms()

    def feed(self):
        now = time.ticks_ms()
        if time.ticks_diff(now, self._last) > self.timeout:
            print("WDT: not fed for %d ms, resetting" % time.ticks_diff(now, self._last))
            _restart(WDT_RESET, state.EXIT_RESET)
        self._last = now


class Timer:
    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, id=-1, **kw):
        pass

    def init(self, **kw):
        pass

    def deinit(self):
        pass

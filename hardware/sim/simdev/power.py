"""machine.RTC, WDT, reset() and deepsleep() for the simulated board, loaded on first use.

Kept apart from the rarely used classes (simdev.machine_extra) because every node
needs these: the VM heap pays only for what the firmware touches.
"""

import sys
import time

from machine import DEEPSLEEP_RESET, HARD_RESET, SOFT_RESET, TIMER_WAKE, WDT_RESET
from simdev import state

_RTC_FILE = "rtc_memory.bin"


def _restart(cause, code, wake=0, sleep_ms=0):
    heapfault = sys.modules.get("simdev.heapfault")
    if heapfault is not None:
        heapfault.release()
    state.write_bytes(state.RESET_FILE, ("%d %d %d" % (cause, wake, sleep_ms)).encode())
    sys.exit(code)


def reset():
    _restart(HARD_RESET, state.EXIT_RESET)


def soft_reset():
    _restart(SOFT_RESET, state.EXIT_RESET)


def deepsleep(time_ms=0):
    # The launcher reads the sleep time from the reset file and restarts us after it. The
    # next boot's clocks start where the sleep ends, however long the host takes to end this
    # VM and start the next (a chip's RTC does not count a host's process start).
    state.write_bytes(state.WAKE_FILE, repr(time.true_time() + int(time_ms) / 1000).encode())
    _restart(DEEPSLEEP_RESET, state.EXIT_DEEPSLEEP, TIMER_WAKE, int(time_ms))


# -- RTC and watchdog -----------------------------------------------------------------
class RTC:
    def __init__(self, id=0):
        pass

    def datetime(self, dt=None):
        if dt is not None:
            time.set_rtc(time.mktime((dt[0], dt[1], dt[2], dt[4], dt[5], dt[6], 0, 0)))
            return None
        tm = time.gmtime()
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


_WDT_FILE = ".sim_wdt"
WDT_HOST_FLOOR_MS = 1000  # see WDT_HOST_FLOOR_S in fleet/simulator/device.py


class WDT:
    """Watchdog that cannot be stopped. The launcher plays the hardware timer: it
    watches `.sim_wdt` (the timeout, rewritten on every feed) and resets a device whose
    feeds stop. A feed later than the timeout also resets, as the timer would have."""

    def __init__(self, id=0, timeout=5000):
        if state.count_down("wdt_init"):  # sim.json faults "wdt_init": N: fails at N boots
            raise OSError(-1)  # ESP_FAIL, as check_esp_err raises it
        self.timeout = max(1, int(timeout))
        self._last = time.ticks_ms()
        self._host = time.host_ms()
        self._beat()

    def _beat(self):
        with open(_WDT_FILE, "w") as f:
            f.write(str(self.timeout))

    def feed(self):
        now = time.ticks_ms()
        host = time.host_ms()
        # Room time and host time both past their limits: with "speed" the room's clock
        # magnifies a host scheduling delay, which is no hang of the device's own.
        late = time.ticks_diff(now, self._last) > self.timeout
        if late and time.ticks_diff(host, self._host) > WDT_HOST_FLOOR_MS:
            print("WDT: not fed for %d ms, resetting" % time.ticks_diff(now, self._last))
            _restart(WDT_RESET, state.EXIT_RESET)
        self._last = now
        self._host = host
        self._beat()

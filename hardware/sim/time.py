"""Stand-in for `time` with the board's real-time clock (the rest is the host's `time`).

Two clocks: `true_time()` is the room's UTC time, the host clock (times sim.json
"speed") plus an offset the launcher advances while a device sleeps faster than real
time (sim.json "time_scale"). `time()` is the RTC: like the ESP32's it keeps running
through deep sleep and resets but starts again at 2000-01-01 on power-on, until
`ntptime.settime()` sets it. Both persist in `.sim_clock` ("offset skew"); a missing
skew means power-on. A boot after a deep sleep starts both from the time the sleep ends
(`.sim_wake`), not from the host's clock, which also counted the VM's restart.

With "speed" > 1 the whole room runs that much faster than the host, awake or asleep:
`ticks_ms()`/`ticks_us()` count simulated time and `sleep*()` take simulated durations,
so the firmware's own timing (and asyncio's, through `simdev/fastpoll.py`) follows.
"""

import sys

_p = sys.path
sys.path = []  # import the built-in module, not this file
import time as _t  # noqa: E402

sys.path = _p
del _p

_CLOCK = ".sim_clock"
_Y2000 = 946684800
_st = None  # [offset, skew]


def _speed():
    from simdev.state import sim

    return float(sim().get("speed", 1))


SPEED = _speed()


def _host():
    return _t.time() * SPEED


def _clock():
    global _st
    if _st is None:
        from simdev.state import WAKE_FILE, read_bytes, remove

        raw = read_bytes(_CLOCK)
        p = raw.split() if raw else ()
        _st = [float(p[0]) if p else 0.0, 0.0]
        wake = read_bytes(WAKE_FILE)
        if wake:  # after a deep sleep: the room and the RTC read where the sleep ended
            _st[0] = float(wake) - _host()
        if len(p) > 1:
            _st[1] = float(p[1])
        else:
            _st[1] = _Y2000 - (_host() + _st[0])
        if wake or len(p) < 2:
            _save()
            remove(WAKE_FILE)
    return _st


def _save():
    from simdev.state import write_bytes

    write_bytes(_CLOCK, ("%r %r" % (_st[0], _st[1])).encode())


def host_ms():
    """The host's own clock in ms (ticks arithmetic), whatever the room's speed."""
    return _t.ticks_ms()


def true_time():
    return _host() + _clock()[0]


def set_rtc(unix):
    """What ntptime.settime() does: the RTC reads `unix` now."""
    c = _clock()
    c[1] = unix - (_host() + c[0])
    _save()


def time():
    c = _clock()
    return int(_host() + c[0] + c[1])  # whole seconds, as on the ESP32


_skip_ms = 0  # room time the host did not wait for (accelerated light sleep)


def passed_ms(ms):
    """The board was away `ms` more than the host waited: its clocks jump ahead by it."""
    global _skip_ms
    if ms <= 0:
        return
    c = _clock()
    c[0] += ms / 1000
    _save()
    _skip_ms += ms
    if SPEED == 1 and "ticks_ms" not in globals():
        # Ticks that include the jumps, installed on first use (deep sleep needs none).
        globals()["ticks_ms"] = lambda: _t.ticks_add(_t.ticks_ms(), int(_skip_ms))
        globals()["ticks_us"] = lambda: _t.ticks_add(_t.ticks_us(), int(_skip_ms * 1000))


def gmtime(secs=None):
    return _t.gmtime(time() if secs is None else secs)


localtime = gmtime


if SPEED != 1:
    _MASK = _t.ticks_add(0, -1)  # the ticks period minus one

    def ticks_ms():
        # From the microsecond counter: the host's milliseconds would be too coarse.
        return int(_t.ticks_us() * SPEED / 1000 + _skip_ms) & _MASK

    def ticks_us():
        return int(_t.ticks_us() * SPEED + _skip_ms * 1000) & _MASK

    def sleep(s):
        _t.sleep(s / SPEED)

    def sleep_ms(ms):
        _t.sleep(ms / 1000 / SPEED)

    def sleep_us(us):
        _t.sleep(us / 1000000 / SPEED)

    from simdev import fastpoll

    sys.modules["select"] = fastpoll  # before asyncio imports it


def __getattr__(name):
    return getattr(_t, name)

"""Stand-in for the ESP32's frozen `ntptime`: sets the simulated RTC to the room's UTC time.

Fails like the real one (OSError ETIMEDOUT) when sim.json says the access point or the
NTP server is away: "wifi": {"fail": true} or "ntp": {"fail": true}.
"""

import time as _time

from simdev import state

host = "pool.ntp.org"
timeout = 1


def time():
    sim = state.sim()
    if sim["wifi"].get("fail") or sim.get("ntp", {}).get("fail"):
        raise OSError(110)  # ETIMEDOUT
    return _time.true_time()


def settime():
    _time.set_rtc(time())

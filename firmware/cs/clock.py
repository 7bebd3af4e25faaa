"""Wall-clock helpers: every timestamp that leaves the device is UTC seconds since 1970."""

import time

# The ESP32 port counts from 2000-01-01, the unix port from 1970-01-01.
EPOCH_OFFSET = 946684800 if time.gmtime(0)[0] == 2000 else 0

# Anything earlier means the clock was never set (the fleet refuses such times).
MIN_VALID_UNIX = 1577836800  # 2020-01-01T00:00:00Z


def unix_time() -> int:
    return int(time.time()) + EPOCH_OFFSET


def is_synced() -> bool:
    return unix_time() >= MIN_VALID_UNIX


class Uptime:
    """Seconds since boot that survive ticks_ms() wrap-around, if polled at least daily."""

    def __init__(self) -> None:
        self._last = time.ticks_ms()
        self._ms = 0

    def seconds(self) -> int:
        now = time.ticks_ms()
        self._ms += time.ticks_diff(now, self._last)
        self._last = now
        return self._ms // 1000

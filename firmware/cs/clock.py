"""Wall-clock helpers: every timestamp that leaves the device is UTC seconds since 1970.

Before the first NTP sync after power-on the RTC counts from 2000-01-01. Readings
taken then are stored with that clock and the number of the power-on period
(`gen`); when NTP sets the clock, the jump is saved for that period (file `clock`,
one "<gen> <offset>" line per recent period) and added to those readings before
they are sent. Later syncs (cs.node.Node.clock_due) only correct drift: readings
already stamped with the set clock keep their stamps.
"""

import time

# The ESP32 port counts from 2000-01-01, the unix port from 1970-01-01.
EPOCH_OFFSET = 946684800 if time.gmtime(0)[0] == 2000 else 0

# Anything earlier means the clock was never set (the fleet refuses such times).
MIN_VALID_UNIX = 1577836800  # 2020-01-01T00:00:00Z
_FILE = "clock"
# Seconds between NTP syncs once set, [mains, battery]: a mains RTC drifts ~10 min a year;
# the slow clock deep sleep runs on drifts up to ~1 %, so a battery node syncs on the first
# uplink wake at least this long after the last sync.
RESYNC_S = (86400, 6 * 3600)


def unix_time() -> int:
    return int(time.time()) + EPOCH_OFFSET


def is_synced() -> bool:
    return unix_time() >= MIN_VALID_UNIX


class Fix:
    """Power-on period numbers and the clock offsets learnt for them (the last few)."""

    KEEP = 4

    def __init__(self, power_on: bool) -> None:
        self.gen = 0
        self.offsets: dict = {}  # gen -> seconds to add to that period's stamps
        try:
            with open(_FILE) as f:
                for line in f:
                    g, o = line.split()
                    self.gen = int(g)
                    if o != "-":
                        self.offsets[self.gen] = int(o)
        except (OSError, ValueError):
            pass
        if not is_synced() and (power_on or self.gen in self.offsets):
            self.gen += 1  # a new unset clock: its offset is not known yet
            self._save()

    @property
    def offset(self):
        return self.offsets.get(self.gen)

    def _save(self) -> None:
        import os

        with open(_FILE + ".tmp", "w") as f:
            for g in sorted(self.offsets)[-self.KEEP :]:
                if g != self.gen:
                    f.write("%d %d\n" % (g, self.offsets[g]))
            o = self.offsets.get(self.gen)
            f.write("%d %s\n" % (self.gen, "-" if o is None else o))
        os.rename(_FILE + ".tmp", _FILE)  # atomic: old or new, never half

    def synced(self, jump: int) -> None:
        """NTP moved the clock by `jump` s; readings of this period move with it."""
        if self.gen not in self.offsets:
            self.offsets[self.gen] = jump
            self._save()

    def date(self, ts: int, gen: int):
        """UTC time of a stored reading; None if not known yet; -1 if it never will be."""
        if ts >= MIN_VALID_UNIX:
            return ts
        o = self.offsets.get(gen)
        if o is not None:
            return ts + o
        # Power was lost again before that period's clock was set: nobody knows its time.
        return None if gen == self.gen else -1


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

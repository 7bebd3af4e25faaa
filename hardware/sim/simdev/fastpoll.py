"""`select` for a room that runs faster than the host (sim.json "speed"): the `time`
stand-in installs it as `select` before asyncio loads, so poll timeouts are simulated
milliseconds and asyncio's sleeps and timeouts pass at the room's speed, in step with
its ticks. At speed 1 it is never loaded: the device uses the built-in `select`."""

import select as _s  # the built-in: this module is not on the path as `select`

from time import SPEED

POLLIN = _s.POLLIN
POLLOUT = _s.POLLOUT
POLLERR = _s.POLLERR
POLLHUP = _s.POLLHUP


def _real(ms):
    # At least 1 ms of host time for a positive timeout: never a busy loop.
    return ms if ms <= 0 else max(1, int(ms / SPEED))


class _Poll:
    def __init__(self):
        self._p = _s.poll()

    def register(self, obj, mask=POLLIN | POLLOUT):
        self._p.register(obj, mask)

    def unregister(self, obj):
        self._p.unregister(obj)

    def modify(self, obj, mask):
        self._p.modify(obj, mask)

    def poll(self, timeout=-1):
        return self._p.poll(_real(timeout))

    def ipoll(self, timeout=-1, flags=0):
        return self._p.ipoll(_real(timeout), flags)


poll = _Poll

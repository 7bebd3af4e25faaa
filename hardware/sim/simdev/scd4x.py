"""Simulated Sensirion SCD40/41 CO2 sensor answering the driver's I2C transactions.

16-bit commands, arguments and replies as words + CRC-8 (0x31, init 0xFF). Modelled:
start periodic 0x21B1 (a measurement every 5 s), low-power periodic 0x21AC (30 s),
single shot 0x219D (5 s; all shortened by sim.json "time_scale"), read 0xEC05, stop 0x3F86 (500 ms), data ready 0xE4B8,
set/get temperature offset 0x241D/0x2318, serial 0x3682, reinit 0x3646. Commands other
than stop/data-ready/read are refused (NACK) while periodic measurement runs, as on
the chip. The die runs 4 degC above the room; the temperature offset (default 4)
takes it off. Faults as for the SHT4x ("nack", "crc", "stuck", "range": CO2 0).
"""

import time

from simdev import state
from simdev.sht4x import word

_SELF_HEAT = 4.0
_PERIOD = {0x21B1: 5000, 0x21AC: 30000}


class SCD4x:
    name = "scd4x"

    def __init__(self, addr, room):
        self.addr = addr
        self.room = room
        self.offset = 4.0
        self.period = 0  # ms between periodic measurements; 0 = idle
        self._t0 = 0
        self._due = None  # ticks when the next measurement is ready
        self._reply = None
        self._stuck = None

    def _now(self):
        return time.ticks_ms()

    def _ms(self, ms):
        # Conversions run in simulated time: sim.json "time_scale" shortens them.
        return int(ms / state.sim().get("time_scale", 1))

    def _ready(self):
        return self._due is not None and time.ticks_diff(self._now(), self._due) >= 0

    def write(self, data):
        fault = state.fault(self.name)
        self._reply = None
        if fault == "nack" or len(data) < 2:
            raise OSError(19)
        cmd = (data[0] << 8) | data[1]
        if self.period and cmd not in (0x3F86, 0xE4B8, 0xEC05):
            raise OSError(19)  # busy measuring: the chip ignores other commands
        if cmd in _PERIOD:
            self.period = self._ms(_PERIOD[cmd])
            self._due = time.ticks_add(self._now(), self.period)
        elif cmd == 0x219D:
            self._due = time.ticks_add(self._now(), self._ms(5000))
        elif cmd == 0x3F86:
            self.period = 0
            self._due = None
        elif cmd == 0xE4B8:
            self._reply = word(0x8006 if self._ready() else 0x8000)[1]
        elif cmd == 0xEC05:
            if not self._ready():
                self._reply = word(0)[1] * 3  # no new data: the chip returns zeros
            else:
                self._reply = self._measure(fault)
                self._due = time.ticks_add(self._due, self.period) if self.period else None
        elif cmd == 0x241D:
            if len(data) != 5 or state.crc8(data[2:4]) != data[4]:
                raise OSError(5)  # EIO: the chip NACKs a bad argument CRC
            self.offset = ((data[2] << 8) | data[3]) * 175.0 / 65535.0
        elif cmd == 0x2318:
            self._reply = word(round(self.offset * 65535.0 / 175.0))[1]
        elif cmd == 0x3682:
            self._reply = word(0xC0DE)[1] + word(self.room.seed & 0xFFFF)[1] + word(0x0041)[1]
        elif cmd != 0x3646:
            raise OSError(19)

    def read(self, n):
        if self._reply is None:
            raise OSError(19)
        reply = self._reply
        self._reply = None
        return reply[:n]

    def _measure(self, fault):
        now = time.true_time()
        t, rh = self.room.air(now)
        co2 = round(self.room.co2(now))
        cw = word(co2)
        tw = word(round((t + _SELF_HEAT - self.offset + 45.0) * 65535.0 / 175.0))
        hw = word(round(rh * 65535.0 / 100.0))
        if fault == "stuck":
            if self._stuck is None:
                self._stuck = (cw, tw, hw)
            cw, tw, hw = self._stuck
        else:
            self._stuck = None
        if fault == "range":
            cw = word(0)
        reply = bytearray(cw[1] + tw[1] + hw[1])
        if fault == "crc":
            reply[2] ^= 0xFF
        state.log_reading(
            now, self.name, fault, "periodic" if self.period else "single",
            co2=cw[0], temperature=-45.0 + 175.0 * tw[0] / 65535.0, humidity=100.0 * hw[0] / 65535.0,
        )
        return bytes(reply)

"""Simulated Sensirion SHT4x answering the real driver's I2C transactions, fed by a room model.

Room model: air temperature and humidity are a pure function of (seed, time),
so two devices differ but a re-run reproduces the same data. Temperature
follows a daily sine (warmest mid-afternoon UTC); humidity has a base level, a
slow opposite swing and moisture events (a morning shower, evening cooking)
whose start times are drawn per device and per day from the seed. Events raise
RH sharply then decay exponentially. sim.json "room" may override t_mean,
t_amp, rh_base, rh_amp, noise and events.

Fault injection (sim.json "faults": {"sht4x": ...}, re-read live): "nack" (no
ACK, OSError ENODEV as on the ESP32), "crc" (first CRC byte flipped), "busy"
(reads NACKed as if the conversion never ended). Every measurement served is
appended to sim_readings.jsonl with the exact values its words encode.
"""

import json
import math
import time

from simdev import state

READINGS_FILE = "sim_readings.jsonl"
DAY = 86400

# Command -> (label, ms before the reply may be read: datasheet typical times).
_CMDS = {0xFD: ("high", 7), 0xF6: ("medium", 4), 0xE0: ("low", 1), 0x39: ("heater", 110), 0x32: ("heater", 110)}
# (usual start hour, spread hours, RH rise %, decay minutes, temperature rise degC)
_EVENTS = ((7.0, 1.5, 28.0, 35.0, 0.8), (18.0, 1.5, 14.0, 50.0, 1.2))


def unit(*vals):
    """Deterministic value in [0, 1] from integers (xorshift-multiply mix)."""
    h = 0x9E3779B9
    for v in vals:
        h ^= int(v) & 0xFFFFFFFF
        h = (h * 0x85EBCA6B) & 0xFFFFFFFF
        h ^= h >> 13
        h = (h * 0xC2B2AE35) & 0xFFFFFFFF
        h ^= h >> 16
    return h / 4294967295.0


def crc8(data):
    crc = 0xFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _word(w):
    w = 0 if w < 0 else 65535 if w > 65535 else int(w)
    return w, bytes((w >> 8, w & 0xFF, crc8((w >> 8, w & 0xFF))))


class SHT4x:
    def __init__(self, addr, seed, room=None):
        p = room or {}
        s = self.seed = int(seed)
        self.addr = addr
        self.t_mean = p.get("t_mean", 18.5 + 3.0 * unit(s, 1))
        self.t_amp = p.get("t_amp", 1.5 + 1.5 * unit(s, 2))
        self.rh_base = p.get("rh_base", 50.0 + 15.0 * unit(s, 3))
        self.rh_amp = p.get("rh_amp", 4.0)
        self.noise = p.get("noise", 0.05)
        self.events = p.get("events", _EVENTS)
        self.serial = int(unit(s, 99) * 0xFFFFFFFF)
        self._reply = None
        self._ready = 0

    def room(self, t):
        """(temperature degC, RH %) at UTC epoch seconds `t`."""
        phase = math.sin(2.0 * math.pi * ((t % DAY) / DAY - 11.0 / 24.0))
        rh_ev = t_ev = 0.0
        day = int(t // DAY)
        for d in (day - 1, day):  # yesterday's late event may still be decaying
            for i, ev in enumerate(self.events):
                dt = t - d * DAY - (ev[0] + ev[1] * (unit(self.seed, d, i) - 0.5)) * 3600.0
                if 0 <= dt < 21600:
                    k = min(1.0, dt / 300.0) * math.exp(-dt / (ev[3] * 60.0))
                    rh_ev += ev[2] * k
                    t_ev += ev[4] * k
        n = self.noise * (unit(self.seed, t, 11) - 0.5)
        temp = self.t_mean + self.t_amp * phase + t_ev + 2.0 * n
        # Warmer air holds more water: RH dips a little as the room warms.
        rh = self.rh_base - self.rh_amp * phase + rh_ev + 4.0 * n
        return temp, max(1.0, min(99.0, rh))

    def write(self, data):
        fault = state.fault("sht4x")
        self._reply = None
        cmd = data[0] if data else -1
        now = time.ticks_ms()
        if fault == "nack" or not (cmd in _CMDS or cmd in (0x89, 0x94)):
            raise OSError(19)  # ENODEV: no ACK, as the ESP32 reports it
        if cmd == 0x89:
            self._reply = _word(self.serial >> 16)[1] + _word(self.serial & 0xFFFF)[1]
        elif cmd != 0x94:
            label, wait = _CMDS[cmd]
            self._reply = self._measure(label, fault)
            now = time.ticks_add(now, wait)
        self._ready = now

    def read(self, n):
        # NACK when nothing is pending or the conversion is still running, as the chip does.
        if self._reply is None or state.fault("sht4x") == "busy" or time.ticks_diff(time.ticks_ms(), self._ready) < 0:
            raise OSError(19)
        reply = self._reply
        self._reply = None
        return reply[:n]

    def _measure(self, label, fault):
        now = time.time()
        t, rh = self.room(now)
        tw, tb = _word(round((t + 45.0) * 65535.0 / 175.0))
        hw, hb = _word(round((rh + 6.0) * 65535.0 / 125.0))
        rec = {
            "ts": now,
            "temperature": -45.0 + 175.0 * tw / 65535.0,
            "humidity": min(100.0, max(0.0, -6.0 + 125.0 * hw / 65535.0)),
            "addr": self.addr,
            "precision": label,
        }
        reply = bytearray(tb + hb)
        if fault == "crc":
            reply[2] ^= 0xFF
            rec["fault"] = "crc"
        state.append_line(READINGS_FILE, json.dumps(rec))
        return bytes(reply)

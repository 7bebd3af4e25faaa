"""Simulated Sensirion SHT4x answering the real driver's I2C transactions, fed by the room.

Single-byte commands; replies are words each followed by CRC-8 (0x31, init 0xFF).
Faults (sim.json "faults": {"sht4x": ...}, re-read live): "nack" (no ACK: OSError
ENODEV as on the ESP32), "crc" (first CRC byte flipped), "busy" (reads NACKed as if
the conversion never ended), "stuck" (the same words every time), "range" (a
temperature word of 0xFFFF, 130 degC), "hang" (once: the next transaction never ends, as
with a chip holding the bus, and the whole VM stops until the watchdog resets it; the
fault clears itself). Every measurement served is appended to
sim_readings.jsonl with the exact values its words encode.
"""

import time

from simdev import state

# Command -> (label, ms before the reply may be read: datasheet typical times).
_CMDS = {
    0xFD: ("high", 7), 0xF6: ("medium", 4), 0xE0: ("low", 1),
    0x39: ("heater", 1100), 0x32: ("heater", 110), 0x2F: ("heater", 1100),
    0x24: ("heater", 110), 0x1E: ("heater", 1100), 0x15: ("heater", 110),
}


def word(w):
    """(word, 3 wire bytes: big-endian word + CRC)."""
    w = 0 if w < 0 else 65535 if w > 65535 else int(w)
    b = bytes((w >> 8, w & 0xFF))
    return w, b + bytes((state.crc8(b),))


class SHT4x:
    name = "sht4x"

    def __init__(self, addr, room):
        self.addr = addr
        self.room = room
        self.serial = int(room.seed * 2654435761) & 0xFFFFFFFF
        self._reply = None
        self._ready = 0
        self._stuck = None

    def write(self, data):
        fault = state.fault(self.name)
        self._reply = None
        cmd = data[0] if data else -1
        now = time.ticks_ms()
        if fault == "hang":
            state.clear_fault(self.name)
            print("SIM: sht4x holds the bus")
            while True:  # blocks the event loop too: only the watchdog ends this
                time.sleep(1)
        if fault == "nack" or not (cmd in _CMDS or cmd in (0x89, 0x94)):
            raise OSError(19)  # ENODEV: no ACK, as the ESP32 reports it
        if cmd == 0x89:
            self._reply = word(self.serial >> 16)[1] + word(self.serial & 0xFFFF)[1]
        elif cmd != 0x94:
            label, wait = _CMDS[cmd]
            self._reply = self._measure(label, fault)
            now = time.ticks_add(now, wait)
        self._ready = now

    def read(self, n):
        # NACK when nothing is pending or the conversion is still running, as the chip does.
        if self._reply is None or state.fault(self.name) == "busy" or time.ticks_diff(time.ticks_ms(), self._ready) < 0:
            raise OSError(19)
        reply = self._reply
        self._reply = None
        return reply[:n]

    def _measure(self, label, fault):
        now = time.true_time()
        t, rh = self.room.air(now)
        if label == "heater":
            t += 5.0  # the pulse heats the die: this reply is not the room
        tw = word(round((t + 45.0) * 65535.0 / 175.0))
        hw = word(round((rh + 6.0) * 65535.0 / 125.0))
        if fault == "stuck":
            if self._stuck is None:
                self._stuck = (tw, hw)
            tw, hw = self._stuck
        else:
            self._stuck = None
        if fault == "range":
            tw = word(0xFFFF)
        reply = bytearray(tw[1] + hw[1])
        if fault == "crc":
            reply[2] ^= 0xFF
        state.log_reading(
            now, self.name, fault, label,
            temperature=-45.0 + 175.0 * tw[0] / 65535.0,
            humidity=min(100.0, max(0.0, -6.0 + 125.0 * hw[0] / 65535.0)),
        )
        return bytes(reply)

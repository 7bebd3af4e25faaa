"""Stand-in for MicroPython's `onewire` driver with simulated DS18B20 probes on the bus.

Same API as micropython-lib's onewire.OneWire (reset, readbit, readbyte, readinto,
writebyte, write, select_rom, scan, crc8). The probes on a pin come from sim.json
"sensors" entries {"type": "ds18b20", "pin": N, "rom": "28..."}. Each probe keeps a
scratchpad and answers: ROM commands match 0x55 / skip 0xCC; functions convert T 0x44
(read slots return 0 until done: 94/188/375/750 ms at 9..12 bits, shortened by
sim.json "time_scale"), read scratchpad 0xBE (9 bytes, Dallas CRC-8), write
scratchpad 0x4E. Faults ("faults": {"ds18b20": ...}): "nack" (no presence pulse),
"crc", "stuck", "range" (85.0 degC: the power-on value a failed conversion leaves),
"short" (the data line shorted to GND, e.g. water in the probe cable: every reset sees
what looks like a presence pulse and every read slot reads 0).
"""

import time

from simdev import state


class OneWireError(Exception):
    pass


def crc8(data):
    """Dallas/Maxim CRC-8 (x^8 + x^5 + x^4 + 1, reflected, init 0)."""
    crc = 0
    for b in data:
        for _ in range(8):
            mix = (crc ^ b) & 1
            crc >>= 1
            if mix:
                crc ^= 0x8C
            b >>= 1
    return crc


class _Probe:
    name = "ds18b20"

    def __init__(self, rom, room):
        self.rom = rom
        self.room = room
        self.cfg = 0x7F  # 12-bit after power-on
        self.raw = 0x0550  # 85 degC until the first conversion
        self.done = 0
        self._stuck = None

    def convert(self):
        ms = (94, 188, 375, 750)[(self.cfg >> 5) & 3]
        self.done = time.ticks_add(time.ticks_ms(), int(ms / state.sim().get("time_scale", 1)))
        fault = state.fault(self.name)
        now = time.true_time()
        step = 1 << (3 - ((self.cfg >> 5) & 3))  # coarser resolutions clear low bits
        raw = int(round(self.room.surface(now) * 16)) // step * step
        if fault == "stuck":
            if self._stuck is None:
                self._stuck = raw
            raw = self._stuck
        else:
            self._stuck = None
        if fault == "range":
            raw = 0x0550
        self.raw = raw & 0xFFFF
        state.log_reading(now, self.name, fault, "convert", surface_temperature=(raw - 65536 if raw & 0x8000 else raw) / 16.0)

    def busy(self):
        return time.ticks_diff(self.done, time.ticks_ms()) > 0

    def scratchpad(self):
        pad = bytearray((self.raw & 0xFF, self.raw >> 8, 0x4B, 0x46, self.cfg, 0xFF, 0x0C, 0x10))
        pad.append(crc8(pad))
        if state.fault(self.name) == "crc":
            pad[8] ^= 0xFF
        return pad


class OneWire:
    SEARCH_ROM = 0xF0
    MATCH_ROM = 0x55
    SKIP_ROM = 0xCC

    def __init__(self, pin):
        pid = getattr(pin, "id", pin)
        room = state.room()
        self._probes = [
            _Probe(bytes.fromhex(s["rom"]), room)
            for s in state.sim()["sensors"]
            if s["type"] == "ds18b20" and s.get("pin") == pid
        ]
        self._sel = None  # addressed probes after a ROM command
        self._rx = bytearray()  # bytes the selected probe will send
        self._cmd = []  # bytes written since the last reset

    def _present(self):
        return self._probes and state.fault("ds18b20") != "nack"

    def _shorted(self):
        return bool(self._probes) and state.fault("ds18b20") == "short"

    def reset(self, required=False):
        ok = bool(self._present())  # a shorted line reads low, like a presence pulse
        if required and not ok:
            raise OneWireError("no presence pulse")
        self._sel = None
        self._rx = bytearray()
        self._cmd = []
        return ok

    def readbit(self):
        if self._shorted():
            return 0
        if self._rx:
            return self.readbyte() & 1
        # During a conversion the probe holds read slots low.
        return 0 if any(p.busy() for p in self._sel or ()) else 1

    def readbyte(self):
        if self._shorted():
            return 0
        if not self._rx or not self._present():
            return 0xFF  # nobody pulls the line low
        b = self._rx[0]
        self._rx = self._rx[1:]
        return b

    def readinto(self, buf):
        for i in range(len(buf)):
            buf[i] = self.readbyte()

    def writebit(self, value):
        pass

    def writebyte(self, value):
        if self._shorted():
            return  # nothing reaches the probe
        self._cmd.append(value)
        c = self._cmd
        if self._sel is None:
            if c[0] == self.SKIP_ROM:
                self._sel = self._probes
                self._cmd = []
            elif c[0] == self.MATCH_ROM and len(c) == 9:
                self._sel = [p for p in self._probes if p.rom == bytes(c[1:])]
                self._cmd = []
            return
        if not self._present():
            return
        if c[0] == 0x44:
            for p in self._sel:
                p.convert()
            self._cmd = []
        elif c[0] == 0xBE and self._sel:
            self._rx = self._sel[0].scratchpad()
            self._cmd = []
        elif c[0] == 0x4E and len(c) == 4:
            for p in self._sel:
                p.cfg = c[3] | 0x1F
            self._cmd = []

    def write(self, buf):
        for b in buf:
            self.writebyte(b)

    def select_rom(self, rom):
        self.reset()
        self.writebyte(self.MATCH_ROM)
        self.write(rom)

    def scan(self):
        return [bytearray(p.rom) for p in self._probes] if self._present() else []

    def crc8(self, data):
        return crc8(data)

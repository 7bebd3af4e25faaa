"""Stand-in for the ESP32 `machine` module in the unix VM.

I2C routes to the simulated chips listed in sim.json. Reset cause and RTC
memory persist in files of the device folder (the working directory), so they
behave across the restarts the launcher performs for reset() and deepsleep().
ADC, RTC, WDT, Signal, Timer and the sleep/reset calls load on first use
(simdev.machine_extra): the
real module lives in flash and costs the ESP32 heap nothing, so the stand-in
keeps its own heap cost small.
"""

from simdev import state

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5

EXT0_WAKE = 2
EXT1_WAKE = 3
TIMER_WAKE = 4

_boot = None  # (reset cause, wake reason) of this boot


def _boot_info():
    global _boot
    if _boot is None:
        raw = state.read_bytes(state.RESET_FILE)
        parts = raw.decode().split() if raw else ()
        _boot = (int(parts[0]) if parts else PWRON_RESET, int(parts[1]) if len(parts) > 1 else 0)
        # A later restart without a deliberate reset looks like a power cycle.
        state.remove(state.RESET_FILE)
    return _boot


def reset_cause():
    return _boot_info()[0]


def wake_reason():
    return _boot_info()[1]


def freq(hz=None):
    return 160000000 if hz is None else None


def unique_id():
    return state.mac_bytes()


_pins = {}


class Pin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 2
    PULL_DOWN = 1

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        if value is not None or id not in _pins:
            _pins[id] = 1 if value or (value is None and pull == 2) else 0
            # sim.json "pins": {"0": 0} holds an input (e.g. a button) at a level.
            held = state.sim().get("pins", {}).get(str(id))
            if held is not None and value is None:
                _pins[id] = held

    def value(self, v=None):
        if v is None:
            return _pins[self.id]
        _pins[self.id] = 1 if v else 0
        return None

    __call__ = value

    def on(self):
        _pins[self.id] = 1

    def off(self):
        _pins[self.id] = 0


_chips = None


def _make(kind, addr):
    # Chip models load only for the chips this board has (heap is scarce in the VM).
    if kind == "sht4x":
        from simdev.sht4x import SHT4x as cls
    elif kind == "scd4x":
        from simdev.scd4x import SCD4x as cls
    elif kind == "bme280":
        from simdev.bme280 import BME280 as cls
    else:
        return None
    return cls(addr, state.room())


def _chip(addr):
    global _chips
    if _chips is None:
        _chips = {}
        for s in state.sim()["sensors"]:
            chip = _make(s["type"], s.get("addr"))
            if chip is not None:
                _chips[s["addr"]] = chip
    if addr is None:
        return _chips
    chip = _chips.get(addr)
    if chip is None:
        raise OSError(19)  # ENODEV: nobody acknowledged the address, as on the ESP32
    return chip


class I2C:
    def __init__(self, id=0, *, scl=None, sda=None, freq=400000, timeout=50000):
        self.freq = freq
        if state.count_down("i2c_init"):  # sim.json faults "i2c_init": N: fails to install N times
            raise OSError(-1)  # ESP_FAIL, as check_esp_err raises it
        _chip(None)  # the chips exist from power-on: build them before the heap fragments

    def scan(self):
        return sorted(_chip(None))

    def writeto(self, addr, buf, stop=True):
        _chip(addr).write(bytes(buf))
        return len(buf)

    def readfrom(self, addr, nbytes, stop=True):
        return _chip(addr).read(nbytes)

    def readfrom_into(self, addr, buf, stop=True):
        data = _chip(addr).read(len(buf))
        buf[: len(data)] = data

    def writeto_mem(self, addr, memaddr, buf, *, addrsize=8):
        _chip(addr).write(memaddr.to_bytes(addrsize // 8, "big") + bytes(buf))

    def readfrom_mem(self, addr, memaddr, nbytes, *, addrsize=8):
        chip = _chip(addr)
        chip.write(memaddr.to_bytes(addrsize // 8, "big"))
        return chip.read(nbytes)

    def readfrom_mem_into(self, addr, memaddr, buf, *, addrsize=8):
        data = self.readfrom_mem(addr, memaddr, len(buf), addrsize=addrsize)
        buf[: len(data)] = data


SoftI2C = I2C

def __getattr__(name):
    if name in ("RTC", "WDT", "reset", "soft_reset", "deepsleep"):
        from simdev import power

        return getattr(power, name)
    if name in ("ADC", "Signal", "Timer", "lightsleep", "idle"):
        from simdev import machine_extra

        return getattr(machine_extra, name)
    raise AttributeError(name)

"""sim.json and the device-folder files shared by the stand-in modules."""

import json
import os

SIM_FILE = "sim.json"
RESET_FILE = ".sim_reset"  # "cause wake sleep_ms" for the next boot, from reset()/deepsleep()
WAKE_FILE = ".sim_wake"  # the room time a deep sleep ends at, for the next boot's clock
READINGS_FILE = "sim_readings.jsonl"
RADIO_FILE = "sim_radio.log"  # one line per Wi-Fi connect: the radio-use counter

# Exit codes the launcher understands: restart now, or restart after a deep sleep.
EXIT_RESET = 100
EXIT_DEEPSLEEP = 101

# Faults that still produce a (wrong) reply, so they are logged with the reading.
_LOGGED = ("crc", "stuck", "range")

_cache = None
_mtime = -1


def sim():
    """sim.json with defaults; re-read when the file changes so tests can inject faults live."""
    global _cache, _mtime
    try:
        mtime = os.stat(SIM_FILE)[8]
    except OSError:
        mtime = 0
    if _cache is None or mtime != _mtime:
        _mtime = mtime
        _cache = {"seed": 1, "mac": "02cc00000001", "room": {}, "faults": {}, "wifi": {}}
        _cache["sensors"] = [{"type": "sht4x", "addr": 0x44}]
        raw = read_bytes(SIM_FILE)
        if raw:
            _cache.update(json.loads(raw))
        leave = _cache["faults"].get("heap_squeeze")
        if leave is not None:
            clear_fault("heap_squeeze")
            from simdev import heapfault  # loaded only for the fault: the heap is the point

            heapfault.squeeze(leave)
    return _cache


def fault(name):
    return sim()["faults"].get(name)


def count_down(name):
    """True while a fault that lasts N uses ("i2c_init": N) has uses left, counting one."""
    left = fault(name)
    if not left:
        return False
    clear_fault(name, left - 1)
    return True


def clear_fault(name, left=0):
    """Take a one-shot fault out of sim.json, so the boot after it runs clean (or count
    one use of a fault that lasts `left` more)."""
    global _mtime
    current = sim()
    if left:
        current["faults"][name] = left
    else:
        current["faults"].pop(name, None)
    write_bytes(SIM_FILE, json.dumps(current).encode())
    _mtime = os.stat(SIM_FILE)[8]


def wifi():
    return sim()["wifi"]


def mac_bytes():
    return bytes.fromhex(sim()["mac"].replace(":", ""))


_room = None
_room_of = None  # the sim.json contents the room was built from


def room():
    """The room model, rebuilt when sim.json changes (a fix such as better ventilation
    changes "room" while the device runs)."""
    global _room, _room_of
    current = sim()
    if _room is None or current is not _room_of:
        from simdev.room import Room

        _room = Room(current["seed"], current["room"])
        _room_of = current
    return _room


def crc8(data):
    """Sensirion CRC-8 (poly 0x31, init 0xFF)."""
    crc = 0xFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def log_reading(ts, sensor, fault, mode, **values):
    """One served measurement in sim_readings.jsonl (values as the reply encodes them)."""
    values["ts"] = ts
    values["sensor"] = sensor
    values["precision"] = mode
    if fault in _LOGGED:
        values["fault"] = fault
    append_line(READINGS_FILE, json.dumps(values))


def read_bytes(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def write_bytes(path, data):
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.rename(path + ".tmp", path)


def remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def append_line(path, line):
    with open(path, "a") as f:
        f.write(line + "\n")

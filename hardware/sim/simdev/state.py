"""sim.json and the device-folder files shared by the stand-in modules."""

import json
import os

SIM_FILE = "sim.json"
RESET_FILE = ".sim_reset"  # "cause wake sleep_ms" for the next boot, from reset()/deepsleep()

# Exit codes the launcher understands: restart now, or restart after a deep sleep.
EXIT_RESET = 100
EXIT_DEEPSLEEP = 101

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
    return _cache


def fault(name):
    return sim()["faults"].get(name)


def wifi():
    return sim()["wifi"]


def mac_bytes():
    return bytes.fromhex(sim()["mac"].replace(":", ""))


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

"""The board's flash as the OTA code sees it: a real littlefs filesystem on a simulated
SPI flash chip (flash.bin in the device folder), and a power-cut fault shared with the
esp32.Partition stand-in.

littlefs runs here exactly as on the ESP32 (the unix port has VfsLfs2), so what survives a
power cut is what littlefs guarantees: a file's new data only after it is closed, renames
atomic. sim.json "faults": {"power_cut_at_write": N} cuts the power just before the Nth
flash write of this boot (block program, block erase or otadata update): the fault is
removed from sim.json, `.sim_power_cut` is left for the launcher, and the VM is killed
outright, so no `finally`, no flush and no clean disconnect runs. N counts the device's
writes since its folder was made (kept in .sim_flash_count), so a test can aim at any write
of a multi-boot update; every counted write is appended to sim_flash.log ("<n> <what>",
and "<n> boot" when a boot makes its first write).
"""

import os

from simdev import state

MOUNT = "/flash"
BLOCK = 4096
BLOCKS = 224  # 896 KB: what the OTA partition layout leaves for the filesystem on 4 MB
_IMAGE = "flash.bin"
LOG_FILE = "sim_flash.log"
CUT_FILE = ".sim_power_cut"

_FF = b"\xff" * 256
_writes = 0
_log = None  # open sim_flash.log, or None until the first write


COUNT_FILE = ".sim_flash_count"


def tick(what):
    """Count one flash write; cut the power first if the fault says this is the one."""
    global _writes, _log
    if _log is None:
        raw = state.read_bytes(COUNT_FILE)
        _writes = int(raw) if raw else 0
        _log = open(LOG_FILE, "a")
        _log.write("%d boot\n" % _writes)
    _writes += 1
    at = state.fault("power_cut_at_write")
    if at is not None and _writes >= at:
        _cut(what)
    # Atomic: the launcher may kill the VM at any moment (a stop, a reset), and a count
    # file left empty would restart the count and move every later cut point.
    state.write_bytes(COUNT_FILE, str(_writes).encode())
    _log.write("%d %s\n" % (_writes, what))
    _log.flush()


def _cut(what):
    state.clear_fault("power_cut_at_write")
    state.write_bytes(CUT_FILE, ("%d %s" % (_writes, what)).encode())
    print("SIM: power cut at flash write %d (%s)" % (_writes, what))
    os.system("kill -9 $PPID")  # the shell's parent is this VM: nothing after this runs


class Flash:
    """Block device (readblocks/writeblocks/ioctl) over flash.bin; unwritten flash reads 0xFF."""

    def __init__(self):
        try:
            self._f = open(_IMAGE, "r+b")
        except OSError:
            self._f = open(_IMAGE, "w+b")

    def readblocks(self, block, buf, offset=0):
        f = self._f
        f.seek(block * BLOCK + offset)
        n = f.readinto(buf) or 0
        for i in range(n, len(buf)):
            buf[i] = 0xFF

    def writeblocks(self, block, buf, offset=None):
        tick("prog %d" % block)
        self._put(block * BLOCK + (offset or 0), buf)

    def _fill(self, f, n):
        # Erased flash in small pieces: this stand-in must not need 4 KB of the VM's heap.
        while n > 0:
            k = min(n, len(_FF))
            f.write(_FF if k == len(_FF) else _FF[:k])
            n -= k

    def _put(self, pos, data):
        f = self._f
        f.seek(0, 2)
        end = f.tell()
        if end < pos:
            self._fill(f, pos - end)
        f.seek(pos)
        if data is None:
            self._fill(f, BLOCK)
        else:
            f.write(data)
        f.flush()

    def ioctl(self, op, arg):
        if op == 4:
            return BLOCKS
        if op == 5:
            return BLOCK
        if op == 6:  # erase
            tick("erase %d" % arg)
            self._put(arg * BLOCK, None)
            return 0
        return 0


_mounted = False


def mount():
    """Mount the filesystem at /flash (formatting a blank chip, as the ESP32 port does);
    returns the prefix for paths in it ("/flash/")."""
    global _mounted
    if _mounted:
        return MOUNT + "/"
    dev = Flash()
    try:
        # The ESP32 port's defaults (32-byte read/program units): small caches, little heap.
        fs = os.VfsLfs2(dev)
    except OSError:
        os.VfsLfs2.mkfs(dev)
        fs = os.VfsLfs2(dev)
    os.mount(fs, MOUNT)
    _mounted = True
    return MOUNT + "/"

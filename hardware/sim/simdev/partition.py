"""esp32.Partition stand-in: app slots as sparse files under partitions/, boot choice and
per-slot OTA state in partitions/otadata.json, and the second-stage bootloader's decision.

The bootloader part runs once per boot, on first use (the firmware asks for the running
partition at start), and follows ESP-IDF with app rollback enabled:
- set_boot() checks the image and marks the slot "new"; the next boot runs it as
  "pending"; a pending slot that boots again without mark_app_valid_cancel_rollback() is
  "aborted" and the previous slot runs instead;
- a slot whose image does not verify (header, segments, checksum, appended SHA-256) is
  skipped;
- waking from deep sleep does not pass through that decision here: the running slot stays,
  so a new image that deep-sleeps before marking itself valid escapes rollback, and a
  set_boot() followed by deep sleep wakes in the old image (the traps of DOMAIN.md §6).
ota_0 without an image file stands for the factory-flashed firmware (the VM itself).
A sim image whose project name ends in "+panic" panics as soon as it boots.

Every writeblocks(), set_boot() and mark_app_valid_cancel_rollback() counts as a flash
write for the power-cut fault (simdev.flash).
"""

import os

from simdev import state
from simdev.flash import tick

ENOENT = 2
EINVAL = 22

_PART_DIR = "partitions"
_OTADATA = _PART_DIR + "/otadata.json"
_BLOCK = 4096
_APP_SIZE = 0x180000
_SLOTS = ("ota_0", "ota_1")

_LAYOUT = {
    "nvs": (1, 2, 0x9000, 0x4000),
    "otadata": (1, 0, 0xD000, 0x2000),
    "ota_0": (0, 0x10, 0x10000, _APP_SIZE),
    "ota_1": (0, 0x11, 0x190000, _APP_SIZE),
}


def _otadata():
    import json

    raw = state.read_bytes(_OTADATA)
    d = json.loads(raw) if raw else {}
    d.setdefault("boot", "ota_0")
    d.setdefault("running", d["boot"])
    d.setdefault("state", {})
    return d


def _save_otadata(d):
    import json

    try:
        os.mkdir(_PART_DIR)
    except OSError:
        pass
    state.write_bytes(_OTADATA, json.dumps(d).encode())


def _other(label):
    return "ota_1" if label == "ota_0" else "ota_0"


def _slot_path(label):
    return _PART_DIR + "/" + label + ".bin"


def image_info(label):
    from simdev.bootloader import image_info

    return image_info(label)


_running = None


def running_label():
    global _running
    if _running is None:
        if state.read_bytes(_OTADATA) is None:
            _running = "ota_0"  # never updated: the factory slot, no decision to make
            with open("sim_boot.log", "a") as f:  # simdev.bootloader.BOOT_LOG
                f.write("ota_0 - factory -\n")
        else:
            from simdev.bootloader import decide

            _running = decide()
    return _running


class Partition:
    BOOT = 0
    RUNNING = 1
    TYPE_APP = 0
    TYPE_DATA = 1

    def __init__(self, id, block_size=_BLOCK):
        if id == Partition.RUNNING:
            label = running_label()
        elif id == Partition.BOOT:
            running_label()
            label = _otadata()["boot"]
        else:
            label = id
        if label not in _LAYOUT:
            raise ValueError("no partition %r" % (id,))
        self.label = label
        self.block_size = block_size

    @staticmethod
    def find(type=-1, subtype=-1, label=None, block_size=_BLOCK):
        out = []
        for name in ("nvs", "otadata", "ota_0", "ota_1"):
            t, st = _LAYOUT[name][0], _LAYOUT[name][1]
            if (type in (-1, t)) and (subtype in (-1, st)) and label in (None, name):
                out.append(Partition(name, block_size))
        return out

    def info(self):
        t, st, addr, size = _LAYOUT[self.label]
        return (t, st, addr, size, self.label, False)

    def get_next_update(self):
        if self.label not in _SLOTS:
            raise OSError(ENOENT)
        return Partition(_other(self.label))

    def readblocks(self, block_num, buf, offset=0):
        pos = block_num * self.block_size + offset
        data = b""
        try:
            with open(_slot_path(self.label), "rb") as f:
                f.seek(pos)
                data = f.read(len(buf))
        except OSError:
            pass
        buf[: len(data)] = data
        for i in range(len(data), len(buf)):
            buf[i] = 0xFF  # erased flash reads as 0xFF

    def writeblocks(self, block_num, buf, offset=None):
        pos = block_num * self.block_size + (offset or 0)
        if pos + len(buf) > _LAYOUT[self.label][3]:
            raise OSError(EINVAL)
        if self.label in _SLOTS and self.label == running_label():
            raise OSError(EINVAL)  # ESP-IDF refuses to write the running app
        tick("%s block %d" % (self.label, block_num))
        try:
            os.mkdir(_PART_DIR)
        except OSError:
            pass
        path = _slot_path(self.label)
        try:
            f = open(path, "r+b")
        except OSError:
            f = open(path, "w+b")
        with f:
            f.seek(0, 2)
            end = f.tell()
            while end < pos:
                n = min(_BLOCK, pos - end)
                f.write(b"\xff" * n)
                end += n
            f.seek(pos)
            f.write(bytes(buf))
        if self.label in _SLOTS:
            # Writing a slot invalidates whatever OTA state it had, as erasing it would.
            d = _otadata()
            if d["state"].pop(self.label, None) is not None:
                _save_otadata(d)

    def ioctl(self, cmd, arg):
        if cmd == 4:  # block count
            return _LAYOUT[self.label][3] // self.block_size
        if cmd == 5:  # block size
            return self.block_size
        if cmd == 6:  # erase block
            return 0
        return None

    def set_boot(self):
        if self.label not in _SLOTS or image_info(self.label) is None:
            raise OSError(EINVAL)  # ESP_ERR_OTA_VALIDATE_FAILED: the image does not verify
        tick("otadata set_boot %s" % self.label)
        d = _otadata()
        d["boot"] = self.label
        if self.label != d["running"]:
            d["state"][self.label] = "new"
        _save_otadata(d)

    @classmethod
    def mark_app_valid_cancel_rollback(cls):
        label = running_label()
        d = _otadata()
        if d["state"].get(label) == "pending":
            tick("otadata valid %s" % label)
            d["state"][label] = "valid"
            _save_otadata(d)

    def __repr__(self):
        return "<Partition type=%d, subtype=%d, address=%d, size=%d, label=%s, encrypted=0>" % self.info()[:5]

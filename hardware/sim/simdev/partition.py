"""esp32.Partition stand-in: app slots as sparse files under partitions/, boot choice in otadata.json."""

import json
import os

from simdev import state

ENOENT = 2


def _load_json(path, default):
    raw = state.read_bytes(path)
    return json.loads(raw) if raw else default


_PART_DIR = "partitions"
_OTADATA = _PART_DIR + "/otadata.json"
_BLOCK = 4096
_APP_SIZE = 0x180000


def _otadata():
    return _load_json(_OTADATA, {"boot": "ota_0", "running": "ota_0", "valid": True})


def _save_otadata(d):
    try:
        os.mkdir(_PART_DIR)
    except OSError:
        pass
    state.write_bytes(_OTADATA, json.dumps(d).encode())


_LAYOUT = {
    "nvs": (1, 2, 0x9000, 0x4000),
    "otadata": (1, 0, 0xD000, 0x2000),
    "ota_0": (0, 0x10, 0x10000, _APP_SIZE),
    "ota_1": (0, 0x11, 0x190000, _APP_SIZE),
}


class Partition:
    BOOT = 0
    RUNNING = 1
    TYPE_APP = 0
    TYPE_DATA = 1

    def __init__(self, id, block_size=_BLOCK):
        if id == Partition.RUNNING:
            label = _otadata()["running"]
        elif id == Partition.BOOT:
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
        if not self.label.startswith("ota_"):
            raise OSError(ENOENT)
        return Partition("ota_1" if self.label == "ota_0" else "ota_0")

    def _path(self):
        return _PART_DIR + "/" + self.label + ".bin"

    def readblocks(self, block_num, buf, offset=0):
        pos = block_num * self.block_size + offset
        data = b""
        try:
            with open(self._path(), "rb") as f:
                f.seek(pos)
                data = f.read(len(buf))
        except OSError:
            pass
        buf[: len(data)] = data
        for i in range(len(data), len(buf)):
            buf[i] = 0xFF  # erased flash reads as 0xFF

    def writeblocks(self, block_num, buf, offset=0):
        pos = block_num * self.block_size + offset
        if pos + len(buf) > _LAYOUT[self.label][3]:
            raise OSError(22)
        try:
            os.mkdir(_PART_DIR)
        except OSError:
            pass
        path = self._path()
        try:
            f = open(path, "r+b")
        except OSError:
            f = open(path, "w+b")
        with f:
            f.seek(0, 2)
            end = f.tell()
            if end < pos:
                f.write(b"\xff" * (pos - end))
            f.seek(pos)
            f.write(bytes(buf))

    def ioctl(self, cmd, arg):
        if cmd == 4:  # block count
            return _LAYOUT[self.label][3] // self.block_size
        if cmd == 5:  # block size
            return self.block_size
        if cmd == 6:  # erase block
            return 0
        return None

    def set_boot(self):
        d = _otadata()
        d["boot"] = self.label
        d["pending_verify"] = self.label != d["running"]
        _save_otadata(d)

    @classmethod
    def mark_app_valid_cancel_rollback(cls):
        d = _otadata()
        d["valid"] = True
        _save_otadata(d)

    def __repr__(self):
        return "<Partition type=%d, subtype=%d, address=%d, size=%d, label=%s, encrypted=0>" % self.info()[:5]



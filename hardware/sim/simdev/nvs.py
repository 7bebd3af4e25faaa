"""esp32.NVS stand-in: namespaces in nvs.json, written on commit() like the real driver."""

import json
import os

from simdev import state

ENOENT = 2


def _load_json(path, default):
    raw = state.read_bytes(path)
    return json.loads(raw) if raw else default


_NVS_FILE = "nvs.json"


class NVS:
    def __init__(self, namespace):
        if not namespace or len(namespace) > 15:
            raise ValueError("namespace must be 1..15 characters")
        self._ns = namespace
        all_ = _load_json(_NVS_FILE, {})
        self._data = dict(all_.get(namespace, {}))

    def _get(self, key, kind):
        entry = self._data.get(key)
        if entry is None or entry[0] != kind:
            raise OSError(ENOENT)  # ESP_ERR_NVS_NOT_FOUND
        return entry[1]

    def set_i32(self, key, value):
        if not -(2**31) <= value < 2**31:
            raise OverflowError("value out of i32 range")
        self._data[key] = ["i32", int(value)]

    def get_i32(self, key):
        return self._get(key, "i32")

    def set_blob(self, key, value):
        self._data[key] = ["blob", bytes(value).hex()]

    def get_blob(self, key, buffer):
        data = bytes.fromhex(self._get(key, "blob"))
        if len(buffer) < len(data):
            raise OSError(-0x110C)  # ESP_ERR_NVS_INVALID_LENGTH
        buffer[: len(data)] = data
        return len(data)

    def erase_key(self, key):
        if key not in self._data:
            raise OSError(ENOENT)
        del self._data[key]

    def commit(self):
        all_ = _load_json(_NVS_FILE, {})
        all_[self._ns] = self._data
        state.write_bytes(_NVS_FILE, json.dumps(all_).encode())



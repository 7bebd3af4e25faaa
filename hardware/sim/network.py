"""Stand-in for the ESP32 `network` module: a Wi-Fi station that joins after a short delay.

sim.json "wifi": {"rssi": -60, "fail": false, "join_ms": 200}; "fail" may be
switched on while running to simulate the access point going away.
"""

import time

from simdev import state

STA_IF = 0
AP_IF = 1

STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_GOT_IP = 1010
STAT_BEACON_TIMEOUT = 200
STAT_NO_AP_FOUND = 201


class WLAN:
    IF_STA = STA_IF

    def __init__(self, interface_id=0):
        self._on = False
        self._st = STAT_IDLE
        self._join_at = 0

    def active(self, is_active=None):
        if is_active is None:
            return self._on
        self._on = bool(is_active)
        if not self._on:
            self._st = STAT_IDLE
        return None

    def connect(self, ssid=None, key=None, **kw):
        if not self._on:
            raise OSError("Wifi Not Started")
        self._st = STAT_CONNECTING
        # Each association is a radio use; tests count them (battery devices must not waste one).
        state.append_line(state.RADIO_FILE, "%d" % time.true_time())
        self._join_at = time.ticks_add(time.ticks_ms(), int(state.wifi().get("join_ms", 200)))

    def disconnect(self):
        self._st = STAT_IDLE

    def status(self, param=None):
        fail = state.wifi().get("fail")
        if self._st == STAT_CONNECTING and time.ticks_diff(time.ticks_ms(), self._join_at) >= 0:
            self._st = STAT_NO_AP_FOUND if fail else STAT_GOT_IP
        elif self._st == STAT_GOT_IP and fail:
            self._st = STAT_BEACON_TIMEOUT
        if param is None:
            return self._st
        if param == "rssi":
            if self._st != STAT_GOT_IP:
                raise OSError("not connected")
            return int(state.wifi().get("rssi", -60))
        raise ValueError("unknown status param")

    def isconnected(self):
        return self.status() == STAT_GOT_IP

    def config(self, key=None, **kw):
        if key == "mac":
            return state.mac_bytes()
        if key in ("ssid", "essid"):
            return "sim"
        if kw:
            return None
        raise ValueError("unknown config param")

    def ifconfig(self, cfg=None):
        if cfg is not None:
            return None
        return ("10.0.0.%d" % (state.mac_bytes()[5] or 1), "255.255.255.0", "10.0.0.254", "10.0.0.254")

"""The board layer: the only firmware module that touches `machine`, `network` and `esp32`.

Everything hardware-specific comes from the board profile (hardware/boards/<name>.json);
the rest of the firmware receives buses and readings from here.
"""

import asyncio
import gc

import machine
import network

_RESET_CAUSES = {
    machine.PWRON_RESET: "power_on",
    machine.HARD_RESET: "hard",
    machine.WDT_RESET: "watchdog",
    machine.DEEPSLEEP_RESET: "deep_sleep",
    machine.SOFT_RESET: "soft",
}


class WifiError(Exception):
    pass


class Board:
    def __init__(self, profile: dict) -> None:
        self.profile = profile
        self.name: str = profile["name"]
        self._wlan = network.WLAN(network.STA_IF)
        self._led = None
        led = profile.get("led")
        if led:
            self._led = machine.Pin(led["pin"], machine.Pin.OUT, value=0)
            self._led_on = 1 if led.get("active_high", True) else 0

    # -- buses and identity --------------------------------------------------------
    def i2c(self):
        cfg = self.profile["i2c"]
        return machine.I2C(
            cfg.get("id", 0),
            scl=machine.Pin(cfg["scl"]),
            sda=machine.Pin(cfg["sda"]),
            freq=cfg.get("freq", 100000),
        )

    def sensor_addr(self, kind: str, default: int) -> int:
        for s in self.profile.get("sensors", ()):
            if s.get("type") == kind:
                return s["addr"]
        return default

    def unique_id(self) -> str:
        return "".join("%02x" % b for b in machine.unique_id())

    def reset_cause(self) -> str:
        return _RESET_CAUSES.get(machine.reset_cause(), "unknown")

    def free_heap(self) -> int:
        return gc.mem_free()

    def led(self, on: bool) -> None:
        if self._led is not None:
            self._led.value(self._led_on if on else 1 - self._led_on)

    def mark_app_valid(self) -> None:
        """Cancel OTA rollback once a new image passed its self-test (called by the OTA code)."""
        import esp32  # only needed on that path; keeps the heap free otherwise

        try:
            esp32.Partition.mark_app_valid_cancel_rollback()
        except OSError:
            pass  # not booted from an OTA slot (e.g. first flash): nothing to cancel

    # -- Wi-Fi ---------------------------------------------------------------------
    def _wifi(self):
        if not self._wlan.active():
            self._wlan.active(True)
        return self._wlan

    def wifi_connected(self) -> bool:
        return self._wifi().isconnected()

    async def connect_wifi(self, ssid: str, password: str, timeout_ms: int = 20000) -> None:
        wlan = self._wifi()
        if wlan.isconnected():
            return
        wlan.connect(ssid, password)
        waited = 0
        while not wlan.isconnected():
            if waited >= timeout_ms:
                status = wlan.status()
                wlan.disconnect()
                raise WifiError("Wi-Fi '%s' not connected after %d ms (status %r)" % (ssid, timeout_ms, status))
            await asyncio.sleep_ms(100)
            waited += 100

    def rssi(self):
        try:
            return self._wifi().status("rssi")
        except OSError:
            return None

    # -- clock -----------------------------------------------------------------------
    def sync_clock(self) -> bool:
        """Set the RTC from NTP; True when the clock holds a plausible time afterwards."""
        from cs import clock

        try:
            import ntptime  # frozen on the ESP32 port; the unix VM already has host time

            ntptime.settime()
        except ImportError:
            pass
        except (OSError, OverflowError):
            pass  # keep the old time; health reports clock_synced=false
        return clock.is_synced()

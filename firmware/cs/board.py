"""The board layer: the only firmware module that touches `machine`, `network` and `esp32`.

Everything hardware-specific comes from the board profile (hardware/boards/<name>.json);
the rest of the firmware receives buses, readings, clocks and power control from here.
"""

import asyncio
import gc
import time

import machine
import network

_RESET_CAUSES = {
    machine.PWRON_RESET: "power_on",
    machine.HARD_RESET: "hard",
    machine.WDT_RESET: "watchdog",
    machine.DEEPSLEEP_RESET: "deep_sleep",
    machine.SOFT_RESET: "soft",
}
_WAKE_REASONS = {machine.TIMER_WAKE: "timer", machine.EXT0_WAKE: "pin", machine.EXT1_WAKE: "pin"}


class WifiError(Exception):
    pass


def maintenance_pin_held(profile: dict) -> bool:
    """True while the profile's maintenance button (e.g. BOOT, GPIO0) is held at boot."""
    m = profile.get("maintenance_pin")
    if not m:
        return False
    level = machine.Pin(m["pin"], machine.Pin.IN, machine.Pin.PULL_UP).value()
    return level == (0 if m.get("active_low", True) else 1)


class Board:
    def __init__(self, profile: dict) -> None:
        self.profile = profile
        self.name: str = profile["name"]
        self._wlan: "network.WLAN | None" = None  # the radio stays off until an uplink needs it
        self._i2c: "machine.I2C | None" = None
        self._led = None
        led = profile.get("led")
        if led:
            self._led = machine.Pin(led["pin"], machine.Pin.OUT, value=0)
            self._led_on = 1 if led.get("active_high", True) else 0

    # -- buses and identity --------------------------------------------------------
    def i2c(self):
        bus = self._i2c
        if bus is None:
            cfg = self.profile["i2c"]
            bus = self._i2c = machine.I2C(
                cfg.get("id", 0),
                scl=machine.Pin(cfg["scl"]),
                sda=machine.Pin(cfg["sda"]),
                freq=cfg.get("freq", 100000),
            )
        return bus

    def onewire(self, pin: int):
        import onewire  # frozen on the ESP32 port; only boards with a probe load it

        return onewire.OneWire(machine.Pin(pin))

    def adc_uv(self, pin: int):
        """A callable returning calibrated microvolts at `pin` (11 dB: up to ~3.1 V)."""
        adc = machine.ADC(machine.Pin(pin), atten=machine.ADC.ATTN_11DB)
        return adc.read_uv

    def unique_id(self) -> str:
        return "".join("%02x" % b for b in machine.unique_id())

    def reset_cause(self) -> str:
        return _RESET_CAUSES.get(machine.reset_cause(), "unknown")

    def wake_reason(self) -> str:
        return _WAKE_REASONS.get(machine.wake_reason(), "none")

    def free_heap(self) -> int:
        return gc.mem_free()

    def led(self, on: bool) -> None:
        if self._led is not None:
            self._led.value(self._led_on if on else 1 - self._led_on)

    # -- power, resets and the watchdog ----------------------------------------------
    def rtc_memory(self, data=None):
        """Bytes kept through deep sleep and resets (lost on power-on)."""
        rtc = machine.RTC()
        if data is None:
            return rtc.memory()
        rtc.memory(data)
        return None

    light_ms = 0  # time spent in light sleep this boot

    def light_sleep(self, ms: int) -> None:
        """CPU paused, RAM and pins kept (~0.8 mA instead of ~40): for waits with the radio off."""
        self.light_ms += ms
        machine.lightsleep(ms)

    def deepsleep(self, ms: int) -> None:
        self.wifi_off()
        machine.deepsleep(max(1, ms))

    def reset(self) -> None:
        machine.reset()

    def watchdog(self, timeout_ms: int):
        """Start the hardware watchdog (it cannot be stopped); returns it for feed()."""
        return machine.WDT(timeout=timeout_ms)

    def mark_app_valid(self) -> None:
        """Cancel OTA rollback once a new image passed its self-test (called by the OTA code)."""
        import esp32  # only needed on that path; keeps the heap free otherwise

        try:
            esp32.Partition.mark_app_valid_cancel_rollback()
        except OSError:
            pass  # not booted from an OTA slot (e.g. first flash): nothing to cancel

    # -- Wi-Fi ---------------------------------------------------------------------
    def _wifi(self):
        wlan = self._wlan
        if wlan is None:
            wlan = self._wlan = network.WLAN(network.STA_IF)
        if not wlan.active():
            wlan.active(True)
        return wlan

    def wifi_connected(self) -> bool:
        return self._wlan is not None and self._wlan.isconnected()

    async def connect_wifi(self, ssid: str, password: str, timeout_ms: int = 20000) -> None:
        wlan = self._wifi()
        if wlan.isconnected():
            return
        wlan.connect(ssid, password)
        t0 = time.ticks_ms()
        while not wlan.isconnected():
            if time.ticks_diff(time.ticks_ms(), t0) >= timeout_ms:
                status = wlan.status()
                wlan.disconnect()
                raise WifiError("Wi-Fi '%s' not connected after %d ms (status %r)" % (ssid, timeout_ms, status))
            await asyncio.sleep_ms(50)

    def wifi_off(self) -> None:
        if self._wlan is not None:
            self._wlan.active(False)

    def rssi(self):
        if not self.wifi_connected():
            return None
        try:
            return self._wifi().status("rssi")
        except OSError:
            return None

    # -- clock -----------------------------------------------------------------------
    def sync_clock(self):
        """Set the RTC from NTP. Returns how far the clock jumped (s), or None on failure."""
        try:
            import ntptime  # frozen on the ESP32 port
        except ImportError:
            return None
        before = time.time()
        t0 = time.ticks_ms()
        try:
            ntptime.settime()
        except (OSError, OverflowError):
            return None  # keep the old time; health reports clock_synced=false
        return time.time() - before - time.ticks_diff(time.ticks_ms(), t0) // 1000


# -- OTA (cs.ota): module-level, because the loader runs before a Board exists --------------
def fs_root() -> str:
    """Prefix of the OTA area (ota/, apps/): the filesystem root on the device. The
    simulated board keeps that area on a littlefs image mounted elsewhere."""
    import esp32

    return getattr(esp32, "sim_flash_root", "")


def boot_info() -> tuple:
    """(reset cause name, RTC memory bytes) at boot."""
    return _RESET_CAUSES.get(machine.reset_cause(), "unknown"), machine.RTC().memory()


def set_rtc(data: bytes) -> None:
    machine.RTC().memory(data)


def hard_reset() -> None:
    machine.reset()


def deep_sleep(ms: int) -> None:
    """Sleep with everything off and boot again after `ms` (the radio powers down too)."""
    machine.deepsleep(max(1, ms))


def app_partition(next_slot: bool = False):
    """The running app slot, or the one an update is written to (esp32.Partition)."""
    import esp32

    part = esp32.Partition(esp32.Partition.RUNNING)  # type: ignore[arg-type]  # stubs miss the int ids
    return part.get_next_update() if next_slot else part


def running_slot() -> str:
    """Label of the running slot ("ota_0"/"ota_1"); "" without an OTA partition table."""
    try:
        return app_partition().info()[4]
    except (OSError, ValueError):
        return ""


def mark_image_valid() -> None:
    """Cancel the bootloader's rollback: the new image passed its self-test."""
    import esp32

    try:
        esp32.Partition.mark_app_valid_cancel_rollback()
    except OSError:
        pass  # not booted from an OTA slot (e.g. first flash): nothing to cancel

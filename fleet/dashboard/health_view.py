"""A device's latest health snapshot as people read it: labels, units and causes in words.

The snapshot keeps the wire's names and SenML numbers (every `v` is a float), which suit the
API; staff need "2 h 5 min", "-59 dBm (fair)" and "the watchdog reset it (the app hung)".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fleet.health.alert_rules import describe_faults
from fleet.health.liveness import FIRMWARE_UPLINK_EVERY
from fleet.models import Device

RESET_CAUSES = {
    "power_on": "power on (or a brown-out)",
    "hard": "hard reset",
    "watchdog": "the watchdog reset it (the app hung)",
    "deep_sleep": "woke from deep sleep",
    "soft": "soft reset",
    "command": "reboot command",
    "config": "restarted with a new configuration",
    "maintenance": "restarted into maintenance mode",
    "heap": "reset itself: its memory was nearly full",
    "ota": "restarted to install an update",
    "ota-selftest": "an update failed its self-test",
    "ota-offline": "an update could not reach the broker",
    "crash": "the app crashed",
}
WAKE_REASONS = {
    "timer": "timer",
    "pin": "a button or pin",
    "none": "none (it did not wake from sleep)",
}


@dataclass(frozen=True)
class HealthRow:
    name: str  # the wire name, kept for technicians and the API
    label: str
    text: str


def fmt_duration(seconds: float) -> str:
    """`45 s`, `12 min`, `2 h 5 min`, `3 d 4 h`: the two largest units are enough."""
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def cadence_text(device: Device) -> str:
    """How often the device measures and reports, as far as the fleet knows it."""
    said = f"reports every {fmt_duration(device.report_interval_s)}"
    how = []
    if device.sample_interval_s is not None:
        how.append(f"measures every {fmt_duration(device.sample_interval_s)}")
    if device.power_mode == "battery" and device.sample_interval_s is not None:
        wakes = device.uplink_every or FIRMWARE_UPLINK_EVERY
        how.append("connects at every wake" if wakes == 1 else f"connects every {_nth(wakes)} wake")
    elif device.health_interval_s is not None:
        how.append(f"health every {fmt_duration(device.health_interval_s)}")
    return f"{said} ({', '.join(how)})" if how else said


def _nth(n: int) -> str:
    last = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{last}"


def fmt_bytes(n: float) -> str:
    return f"{n / 1024:.1f} KB" if n >= 1024 else f"{int(n)} B"


def signal_quality(dbm: float) -> str:
    """Rough bands for Wi-Fi RSSI; below -80 dBm uplinks start to fail."""
    if dbm >= -60:
        return "good"
    if dbm >= -70:
        return "fair"
    if dbm >= -80:
        return "weak"
    return "very weak"


def _count(n: float) -> str:
    return f"{int(n):,} reading" + ("" if int(n) == 1 else "s")


def _faults(v: str) -> str:
    return describe_faults(v) if v.strip() else "none"


def _rssi(v: float) -> str:
    return f"{v:.0f} dBm ({signal_quality(v)})"


def _clock(v: bool) -> str:
    return "set by NTP" if v else "not yet set by NTP"


# wire name -> (label, the value's type, how it reads); in the order the page lists them.
_ROWS: dict[str, tuple[str, type, Callable[[Any], str]]] = {
    "sensor_faults": ("Sensor faults", str, _faults),
    "fw_version": ("Firmware", str, str),
    "config_version": ("Configuration version", float, lambda v: f"{v:g}"),
    "uptime": ("Up for", float, fmt_duration),
    "reset_cause": ("Last reset", str, lambda v: RESET_CAUSES.get(v, v)),
    "wake_reason": ("Wake reason", str, lambda v: WAKE_REASONS.get(v, v)),
    "rssi": ("Wi-Fi signal", float, _rssi),
    "battery": ("Battery", float, lambda v: f"{v:.0f} %"),
    "battery_voltage": ("Battery voltage", float, lambda v: f"{v:.2f} V"),
    "queue_depth": ("Waiting to send", float, _count),
    "evicted": ("Dropped (queue full or time unknown)", float, _count),
    "reconnects": ("Reconnects", float, lambda v: f"{int(v):,}"),
    "clock_synced": ("Clock", bool, _clock),
    "heap_free": ("Free memory", float, fmt_bytes),
    "heap_min_free": ("Lowest free memory since boot", float, fmt_bytes),
}


def _typed(value: Any, kind: type) -> Any:
    """The value as `kind`, or None when the snapshot holds something else (SenML numbers
    arrive as floats or ints; a bool is not a number here)."""
    if kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return float(value) if ok else None
    return value if isinstance(value, kind) else None


def health_rows(health: dict[str, Any]) -> list[HealthRow]:
    """Known names in a fixed order, then any the firmware added later (or sent with an
    unexpected type), as they came."""
    rows = []
    for name, (label, kind, fmt) in _ROWS.items():
        value = _typed(health.get(name), kind)
        if value is not None:
            rows.append(HealthRow(name, label, fmt(value)))
    shown = {r.name for r in rows}
    rows += [HealthRow(k, k, str(v)) for k, v in sorted(health.items()) if k not in shown]
    return rows

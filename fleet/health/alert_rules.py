"""Alert rules: each looks at one device and says whether its condition holds now.

Thresholds come from defaults overridden per borough (`Borough.alert_settings`). The history
some rules read is loaded for a whole batch of devices beforehand (fleet.health.history), so
evaluating a rule runs no query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fleet.health.history import (
    DeviceFacts,
    History,
    needs_eviction_history,
    needs_reboot_history,
)

DEFAULT_THRESHOLDS: dict[str, Any] = {
    "offline_after_s": 3600,
    "battery_below_pct": 20.0,
    "battery_empty_within_days": 14.0,
    "reboots_per_hour": 3,
    "target_fw_version": None,
}

RULES = (
    "offline",
    "battery_low",
    "battery_draining",
    "sensor_fault",
    "reboot_loop",
    "clock_unsynced",
    "queue_evicting",
    "firmware_behind",
)


@dataclass(frozen=True)
class Finding:
    rule: str
    active: bool
    message: str = ""
    severity: str = "warning"
    detail: dict[str, Any] = field(default_factory=dict)


def thresholds_for(borough_settings: dict[str, Any] | None) -> dict[str, Any]:
    merged = dict(DEFAULT_THRESHOLDS)
    merged.update({k: v for k, v in (borough_settings or {}).items() if k in DEFAULT_THRESHOLDS})
    return merged


def version_tuple(version: str) -> tuple[int, ...]:
    parts: list[int] = []
    for piece in version.split("+")[0].split("-")[0].split("."):
        if not piece.isdigit():
            break
        parts.append(int(piece))
    return tuple(parts)


def evaluate(
    device: DeviceFacts, *, now: datetime, thresholds: dict[str, Any], history: History
) -> list[Finding]:
    """Every rule's finding; `device.state` is the state derived this pass."""
    health = device.health or {}
    findings = [
        _offline(device, now, thresholds),
        *_battery(device, history, thresholds),
        _sensor_fault(health),
        _reboot_loop(history, health, thresholds),
        _clock(health),
        _evicting(history, health),
        _firmware(device, thresholds),
    ]
    return findings


def _offline(device: DeviceFacts, now: datetime, t: dict[str, Any]) -> Finding:
    limit = float(t["offline_after_s"])
    if device.state == "offline" and device.last_seen_at is not None:
        silent = (now - device.last_seen_at).total_seconds()
        if silent > limit:
            return Finding(
                "offline",
                True,
                f"offline for {silent / 3600:.1f} h (limit {limit / 3600:.1f} h)",
                "critical",
                {"last_seen_at": device.last_seen_at.isoformat()},
            )
    return Finding("offline", False)


def _battery(device: DeviceFacts, history: History, t: dict[str, Any]) -> list[Finding]:
    latest = (device.latest or {}).get("battery")
    if latest is None:
        return [Finding("battery_low", False), Finding("battery_draining", False)]
    pct = float(latest["v"])
    low = Finding("battery_low", False)
    if pct < float(t["battery_below_pct"]):
        low = Finding(
            "battery_low",
            True,
            f"battery at {pct:.0f} % (below {t['battery_below_pct']:.0f} %)",
            detail={"battery_pct": pct},
        )
    days_left = projected_days_to_empty(history.battery)
    draining = Finding("battery_draining", False)
    if days_left is not None and days_left < float(t["battery_empty_within_days"]):
        draining = Finding(
            "battery_draining",
            True,
            f"battery projected empty in {days_left:.1f} days",
            detail={"days_left": round(days_left, 1)},
        )
    return [low, draining]


def projected_days_to_empty(points: Sequence[tuple[datetime, float]]) -> float | None:
    """Least-squares trend of battery % over time; None without a falling trend."""
    if len(points) < 3:
        return None
    t0 = points[0][0]
    xs = [(ts - t0).total_seconds() / 86400 for ts, _ in points]
    ys = [v for _, v in points]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx < 1e-3:  # under ~2 minutes of spread cannot show a trend
        return None
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    if slope >= -1e-6:
        return None
    current = my + slope * (xs[-1] - mx)
    return max(current, 0.0) / -slope


# What a technician reads for each `<sensor>:<kind>` flag (docs/wire-format.md).
FAULT_HINTS = {
    "bus": "its bus did not start: check the board profile's pins and the wiring",
    "nack": "it does not answer: check its wiring and power",
    "crc": "its data arrives corrupted: a noisy bus or loose wiring",
    "range": "it reads an impossible value: a failing or damaged sensor",
    "stuck": "it repeats the exact same reading: a hung sensor",
    "id": "a different chip answers at its address: check the part fitted",
    "error": "its driver failed: see the device's console log",
}


def describe_faults(faults: str) -> str:
    """The health flags in words, e.g. `sht4x:nack` as "sht4x: it does not answer: check
    its wiring and power"; an unknown kind is shown as it came."""
    parts = []
    for flag in faults.split(","):
        sensor, _, kind = flag.strip().partition(":")
        hint = FAULT_HINTS.get(kind)
        parts.append(f"{sensor}: {hint}" if hint else flag.strip())
    return "; ".join(parts)


def _sensor_fault(health: dict[str, Any]) -> Finding:
    faults = health.get("sensor_faults")
    if isinstance(faults, str) and faults.strip():
        return Finding(
            "sensor_fault",
            True,
            f"sensor fault: {describe_faults(faults)}"[:400],  # the alert's message column
            detail={"faults": faults},
        )
    return Finding("sensor_fault", False)


def _reboot_loop(history: History, health: dict[str, Any], t: dict[str, Any]) -> Finding:
    if not needs_reboot_history(health):
        return Finding("reboot_loop", False)
    reboots, previous = 0, None
    for data in history.last_hour:
        up = data.get("uptime")
        if isinstance(up, int | float):
            if previous is not None and up < previous:
                reboots += 1
            previous = up
    limit = int(t["reboots_per_hour"])
    if reboots > limit:
        return Finding(
            "reboot_loop",
            True,
            f"{reboots} reboots in the last hour (limit {limit})",
            "critical",
            {"reboots": reboots, "reset_cause": health.get("reset_cause")},
        )
    return Finding("reboot_loop", False)


def _clock(health: dict[str, Any]) -> Finding:
    if health.get("clock_synced") is False:
        return Finding("clock_unsynced", True, "device clock not synchronised (NTP)")
    return Finding("clock_unsynced", False)


def _evicting(history: History, health: dict[str, Any]) -> Finding:
    if not needs_eviction_history(health):
        return Finding("queue_evicting", False)
    evicted = health["evicted"]
    # With one snapshot in the window the evictions cannot be dated: treat them as recent.
    first = history.day_first
    before = first.get("evicted", 0) if first is not None and history.day_count > 1 else 0
    if not isinstance(before, int | float):
        before = 0
    if evicted > before:
        return Finding(
            "queue_evicting",
            True,
            f"store-and-forward queue evicted {int(evicted - before)} readings in 24 h",
            "critical",
            {"evicted_total": evicted},
        )
    return Finding("queue_evicting", False)


def _firmware(device: DeviceFacts, t: dict[str, Any]) -> Finding:
    target = t.get("target_fw_version")
    if not target or not device.fw_version:
        return Finding("firmware_behind", False)
    if version_tuple(device.fw_version) < version_tuple(str(target)):
        return Finding(
            "firmware_behind",
            True,
            f"firmware {device.fw_version} is behind the target {target}",
            "info",
            {"fw_version": device.fw_version, "target": target},
        )
    return Finding("firmware_behind", False)

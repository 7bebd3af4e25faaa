"""The cadence a device runs, kept part by part so liveness can expect its reports.

A settings change names only what it changes: "send every 2nd wake" says nothing of how
often the sensor measures. Each part is kept as enrolled and as since applied, and the
report interval is worked out from all of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fleet.health.liveness import report_interval
from fleet.models import Device

PARTS = ("sample_interval_s", "health_interval_s", "uplink_every")


def adopt(device: Device, values: Mapping[str, Any]) -> None:
    """`device` now runs the parts of `values` it names; the others stay as they were.

    The report interval follows once the sampling interval is known; a device registered
    without one keeps the interval it was registered with.
    """
    for name in PARTS:
        value = values.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            setattr(device, name, value)
    if device.sample_interval_s is not None:
        device.report_interval_s = report_interval(
            device.power_mode,
            sample_s=device.sample_interval_s,
            health_s=device.health_interval_s,
            uplink_every=device.uplink_every,
        )


def provisioned(device: Device, *, sample_interval_s: int, health_interval_s: int | None) -> None:
    """A fresh config.json: its intervals, and the firmware's default uplink cadence (the
    retained settings, re-applied by the device, are adopted again from its answer)."""
    device.uplink_every = None
    device.health_interval_s = None
    adopt(device, {"sample_interval_s": sample_interval_s, "health_interval_s": health_interval_s})

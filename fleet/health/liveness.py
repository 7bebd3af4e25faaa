"""Liveness derived from a device's promised report interval, never from connection events alone.

A broker disconnect that the last will has not reported yet, or a half-open TCP connection,
must not keep a device "online": only fresh messages do. A battery device that said it is
going to sleep is "sleeping", not "offline", until its next uplink is overdue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class State(StrEnum):
    UNKNOWN = "unknown"
    ONLINE = "online"
    SLEEPING = "sleeping"
    LATE = "late"
    OFFLINE = "offline"


@dataclass(frozen=True)
class LivenessPolicy:
    # Late once a report is this many intervals overdue, offline at the second factor.
    late_factor: float = 1.5
    offline_factor: float = 3.0
    # Absolute slack for clock skew and broker/ingest delay.
    grace_s: float = 60.0

    def late_after(self, interval_s: float) -> float:
        return interval_s * self.late_factor + self.grace_s

    def offline_after(self, interval_s: float) -> float:
        return interval_s * self.offline_factor + self.grace_s


DEFAULT_POLICY = LivenessPolicy()
FIRMWARE_UPLINK_EVERY = 4  # a battery node's default: connect every 4th wake


def report_interval(
    power_mode: str, *, sample_s: int, health_s: int | None = None, uplink_every: int | None = None
) -> int:
    """How often a device with these settings reports: a mains node at each measurement or
    health report, whichever comes first; a battery node at each uplink wake."""
    if power_mode == "battery":
        return sample_s * (uplink_every or FIRMWARE_UPLINK_EVERY)
    return min(sample_s, health_s or sample_s)


def derive_state(
    *,
    power_mode: str,
    report_interval_s: float,
    status: str,
    last_seen_at: datetime | None,
    now: datetime,
    policy: LivenessPolicy = DEFAULT_POLICY,
) -> tuple[State, str]:
    """The state and a short human reason for it."""
    if last_seen_at is None:
        return State.UNKNOWN, "never reported"
    age = (now - last_seen_at).total_seconds()
    if age > policy.offline_after(report_interval_s):
        return State.OFFLINE, f"no message for {int(age)} s (interval {int(report_interval_s)} s)"
    if age > policy.late_after(report_interval_s):
        return State.LATE, f"report overdue: last message {int(age)} s ago"
    if status == "offline" and power_mode != "battery":
        # The last will fired (or the device said goodbye): a mains node should stay connected.
        return State.OFFLINE, "connection lost (last will)"
    if status == "sleeping" or (power_mode == "battery" and status != "online"):
        return State.SLEEPING, "sleeping until its next uplink"
    return State.ONLINE, "reporting on time"

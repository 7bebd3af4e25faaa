"""Is the device online in the fleet with a valid reading sent after the reset?

The fleet keeps a device's last status and readings for as long as it lives, and a reset
ESP32 stays "online" at the broker until its keepalive runs out (about 90 s). So a status or
reading counts only if it is newer than what the fleet had before the reset. Both sides of
each comparison come from the same clock, never from the laptop's: status times are the
fleet's (when it received the status), reading times are the device's own sample times.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from provisioning.errors import FleetUnreachable, VerifyFailed
from provisioning.fleet_client import FleetClient

REQUIRED_METRICS = ("temperature", "humidity")
# Statuses a running device sends; "offline" is the broker's last will for a lost session.
ALIVE = ("online", "sleeping")


@dataclass(frozen=True)
class Verified:
    device_id: str
    seconds: float
    readings: dict[str, Any]


@dataclass(frozen=True)
class Baseline:
    """What the fleet knew of the device before the reset."""

    status: str | None = None
    status_at: datetime | None = None
    # metric -> the device's sample time of the newest value the fleet had
    sample_t: dict[str, float] = field(default_factory=dict)


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    at = datetime.fromisoformat(value)
    # The fleet's times are UTC; a database without time zones gives them naive.
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def baseline(client: FleetClient, device_id: str) -> Baseline:
    """Note the fleet's view of the device; fails at once if the fleet does not know it."""
    seen = client.device(device_id)
    latest = seen.get("latest") or {}
    return Baseline(
        status=seen.get("status"),
        status_at=_when(seen.get("status_at")),
        sample_t={
            m: float(v["t"]) for m, v in latest.items() if isinstance(v.get("t"), int | float)
        },
    )


def _new_status(seen: dict[str, Any], since: Baseline) -> bool:
    at = _when(seen.get("status_at"))
    newer = at is not None and (since.status_at is None or at > since.status_at)
    return newer and seen.get("status") in ALIVE


def _new_readings(seen: dict[str, Any], since: Baseline) -> dict[str, Any]:
    """The required metrics whose newest value is newer than the baseline's."""
    fresh = {}
    for metric, value in (seen.get("latest") or {}).items():
        t, v = value.get("t"), value.get("v")
        if not (isinstance(t, int | float) and isinstance(v, int | float)):
            continue
        if metric in since.sample_t and t <= since.sample_t[metric]:
            continue
        fresh[metric] = value
    return fresh


def wait_online(
    client: FleetClient,
    device_id: str,
    *,
    since: Baseline,
    after_reset: bool,
    timeout_s: float = 120.0,
    poll_s: float = 1.0,
    tick: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Verified:
    """Poll the fleet until the device is online and has sent temperature and humidity newer
    than `since`. After a reset it must also have announced itself again (every connection
    starts with an "online" status); without one, a device that is online now will do."""
    start = clock()
    deadline = start + timeout_s
    came_online = False
    readings: dict[str, Any] = {}
    unreachable: FleetUnreachable | None = None
    while True:
        try:
            seen = client.device(device_id)
        except FleetUnreachable as exc:
            # A dropped hotspot for a few seconds is no reason to give up (and a re-run would
            # reset the sensor again): keep asking until the deadline.
            unreachable = exc
            if tick:
                tick(f"the fleet is unreachable, retrying until the {timeout_s:.0f} s timeout")
            if clock() >= deadline:
                raise FleetUnreachable(
                    f"the fleet was still unreachable when the {timeout_s:.0f} s wait ended "
                    f"({exc})",
                    remedy="check the laptop's network (mobile hotspot?), then run "
                    "`provision verify` again with --no-reset (the sensor needs no new reset)",
                ) from exc
            sleep(poll_s)
            continue
        if unreachable is not None and tick:
            tick("the fleet answers again")
        unreachable = None
        # Once seen, kept: the old session's last will may still arrive after the new status.
        came_online = came_online or (
            _new_status(seen, since) if after_reset else seen.get("status") in ALIVE
        )
        readings.update(_new_readings(seen, since))
        if came_online and all(m in readings for m in REQUIRED_METRICS):
            return Verified(device_id, clock() - start, {m: readings[m] for m in REQUIRED_METRICS})
        if tick:
            tick("online, waiting for a reading" if came_online else "waiting for the device")
        if clock() >= deadline:
            break
        sleep(poll_s)
    raise _failure(
        device_id, timeout_s, came_online=came_online, since=since, after_reset=after_reset
    )


def _failure(
    device_id: str, timeout_s: float, *, came_online: bool, since: Baseline, after_reset: bool
) -> VerifyFailed:
    if came_online:
        return VerifyFailed(
            f"{device_id} is online but sent no new temperature/humidity reading "
            f"within {timeout_s:.0f} s",
            remedy="check the sensor's wiring and I2C address against the board profile; "
            "`mpremote connect PORT repl` shows the device log",
        )
    stale = (
        " (the fleet still shows its status from before the reset)"
        if after_reset and since.status in ALIVE
        else ""
    )
    when = "after the reset " if after_reset else ""
    return VerifyFailed(
        f"{device_id} did not come online {when}within {timeout_s:.0f} s{stale}",
        remedy="check the site's Wi-Fi (profile SSID and password), that the broker is "
        "reachable from the site, and the device log (`mpremote connect PORT repl`)",
    )

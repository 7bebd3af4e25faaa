"""Is the device online in the fleet with a first valid reading?"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from provisioning.errors import ProvisionError, VerifyFailed
from provisioning.fleet_client import FleetClient

REQUIRED_METRICS = ("temperature", "humidity")


@dataclass(frozen=True)
class Verified:
    device_id: str
    seconds: float
    readings: dict[str, Any]


def _is_valid(latest: dict[str, Any] | None) -> bool:
    if not latest:
        return False
    return all(isinstance(latest.get(m, {}).get("v"), int | float) for m in REQUIRED_METRICS)


def wait_online(
    client: FleetClient,
    device_id: str,
    *,
    timeout_s: float = 120.0,
    poll_s: float = 1.0,
    tick: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Verified:
    """Poll the fleet until the device is online and has reported temperature and humidity."""
    start = clock()
    deadline = start + timeout_s
    seen: dict[str, Any] = {}
    while True:
        try:
            seen = client.device(device_id)
        except ProvisionError as exc:
            if exc.exit_code.name != "FLEET_REFUSED":  # 404 until the first message arrives
                raise
        online = seen.get("status") == "online" or seen.get("state") == "online"
        if online and _is_valid(seen.get("latest")):
            return Verified(device_id, clock() - start, dict(seen["latest"]))
        if tick:
            tick("online, waiting for a reading" if online else "waiting for the device")
        if clock() >= deadline:
            break
        sleep(poll_s)
    if seen.get("status") == "online" or seen.get("state") == "online":
        raise VerifyFailed(
            f"{device_id} is online but sent no valid temperature/humidity "
            f"within {timeout_s:.0f} s",
            remedy="check the sensor's wiring and I2C address against the board profile; "
            "`mpremote connect PORT repl` shows the device log",
        )
    raise VerifyFailed(
        f"{device_id} did not come online within {timeout_s:.0f} s",
        remedy="check the site's Wi-Fi (profile SSID and password), that the broker is "
        "reachable from the site, and the device log (`mpremote connect PORT repl`)",
    )

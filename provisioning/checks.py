"""Argument checks done on the laptop, before anything is flashed or sent.

The limits are the fleet's enrolment API's, so a mistake is caught with the option's name
instead of coming back from the server as a validation error.
"""

from __future__ import annotations

from fleet.ingest.profile import DEVICE_ID_RE  # the wire format's (docs/wire-format.md)
from provisioning.errors import UsageError

# field -> (what the technician calls it, most characters the fleet accepts)
PLACE_LIMITS = {
    "borough": ("borough", 32),
    "property_reference": ("property reference", 64),
    "room": ("room", 64),
    "position": ("position", 64),
    "wifi_profile": ("Wi-Fi profile", 64),
}


def device_id(value: str) -> str:
    if DEVICE_ID_RE.match(value) is None:
        raise UsageError(
            f"{value!r} is not a device id",
            remedy="device ids are `cs-` and the MAC's 12 hex digits in lower case, e.g. "
            "cs-3c71bf0a12f4; or give the MAC instead (--mac, or the mac column)",
        )
    return value


def place_field(field: str, value: str | None) -> None:
    """Refuses an empty or over-long place field (an empty position is allowed)."""
    name, most = PLACE_LIMITS[field]
    if not value and field == "position":
        return
    text = (value or "").strip()
    if not text:
        raise UsageError(f"the {name} is empty", remedy=f"give a {name}")
    if len(text) > most:
        raise UsageError(
            f"the {name} {text!r} is {len(text)} characters long; at most {most} are allowed",
            remedy=f"shorten the {name}",
        )

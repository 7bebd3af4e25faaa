"""Settings changed from the fleet: published retained on the device's `config` topic with a
version above anything it has run; its answer (`cmd/ack` id `config:<version>`) says whether
it applied them or kept its last good config, and why.

Only the settings below may change remotely. Wi-Fi and broker settings stay with
provisioning: a wrong one would cut the device off from the fleet that could correct it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from fleet.access import audit
from fleet.access.principal import Principal
from fleet.commands.send import Publisher, connected, publish_kept
from fleet.ingest.profile import device_topic
from fleet.models import DesiredConfig, Device
from fleet.models.base import utcnow
from fleet.models.device import ANSWER_ERROR_CHARS
from fleet.registry import cadence

# name: (lowest, highest, meaning, label on the form); within what the firmware accepts
# (firmware/cs/config.py).
SETTABLE: dict[str, tuple[int, int, str, str]] = {
    "sample_interval_s": (10, 86400, "seconds between measurements", "Measure every (s)"),
    "health_interval_s": (60, 86400, "seconds between health reports", "Health every (s)"),
    "uplink_every": (1, 96, "battery sensors: connect every Nth wake", "Battery: send every N"),
    "rh_uplink_above": (
        50,
        101,
        "battery sensors: connect at once above this RH % (101: never)",
        "Battery: send at once above RH %",
    ),
}
CONFIG_ACK_PREFIX = "config:"


class SettingsError(ValueError):
    """Settings refused before anything was sent; the message names the field."""


def check(values: dict[str, Any]) -> dict[str, int]:
    if not values:
        raise SettingsError(f"give at least one of: {', '.join(SETTABLE)}")
    out: dict[str, int] = {}
    for name, value in values.items():
        if name not in SETTABLE:
            raise SettingsError(
                f"{name!r} cannot be set remotely; settable: {', '.join(SETTABLE)} "
                "(Wi-Fi and broker settings change by provisioning the sensor again)"
            )
        lo, hi, meaning, _ = SETTABLE[name]
        if type(value) is not int or not lo <= value <= hi:
            raise SettingsError(f"{name} ({meaning}) must be a whole number {lo}-{hi}")
        out[name] = value
    return out


def set_config(
    session: Session,
    publisher: Publisher | None,
    *,
    device: Device,
    values: dict[str, Any],
    principal: Principal,
) -> DesiredConfig:
    """Publish the device's settings with `values` laid over the earlier ones.

    Committed before publishing, so an answer arriving at once finds the row.
    """
    wanted = check(values)
    publisher = connected(publisher)
    row = session.get(DesiredConfig, device.id)
    running = (device.health or {}).get("config_version")
    floor = int(running) if isinstance(running, int | float) else 1
    version = max(floor, row.version if row else 0) + 1
    merged = {**(row.values if row else {}), **wanted}
    if row is None:
        row = DesiredConfig(device_pk=device.id)
        session.add(row)
    row.version, row.values, row.state, row.error = version, merged, "pending", None
    row.set_by, row.set_at, row.answered_at = principal.actor, utcnow(), None
    payload = json.dumps({"version": version, **merged}, separators=(",", ":")).encode()
    topic = device_topic(device.device_id, "config")
    publish_kept(session, publisher, row, topic, payload, what="the settings were", retain=True)
    audit.record(
        session,
        principal,
        "device.config.set",
        target_type="device",
        target_id=device.device_id,
        borough_id=device.borough_id,
        detail={"version": version, **wanted},
    )
    session.commit()
    return row


def config_version(command_id: str) -> int | None:
    """N for the answer to settings version N (`config:N`), else None."""
    if not command_id.startswith(CONFIG_ACK_PREFIX):
        return None
    try:
        return int(command_id[len(CONFIG_ACK_PREFIX) :])
    except ValueError:
        return None


def record_answer(
    session: Session, device_pk: int, version: int, ack: dict[str, Any], at: datetime
) -> bool:
    """The device's answer to settings `version`; False if that is not what was last sent.

    A device provisioned again applies the retained settings once more and answers again:
    the first answer stays on record, and the device's cadence follows each applied one.
    """
    row = session.get(DesiredConfig, device_pk)
    if row is None or row.version != version:
        return False
    if ack["ok"]:
        device = session.get(Device, device_pk)
        if device is not None:
            cadence.adopt(device, row.values)
    if row.answered_at is not None:
        return False
    row.answered_at = at
    if ack["ok"]:
        row.state, row.error = "applied", None
    else:
        row.state, row.error = "refused", str(ack.get("error"))[:ANSWER_ERROR_CHARS]
    return True

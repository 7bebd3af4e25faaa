"""A rollout's target: which devices it reaches, checked before anything is stored.

A target selects by borough, estate, tag, board and device list (all given must match).
Every device in the fleet (or in the borough) is a choice made with `"all": true`, never
what an empty or misspelled target falls back to.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet.models import Borough, Device, Estate, Placement, Property, Tag
from fleet.models.ota import Rollout
from fleet.ota.errors import Invalid, OtaError

SELECTORS = ("borough_id", "estate_id", "tag", "board", "device_ids")
KEYS = (*SELECTORS, "all")
_NARROWING = ("estate_id", "tag", "board", "device_ids")


def clean_target(target: dict[str, Any]) -> dict[str, Any]:
    """The target as stored: keys left empty (None) dropped, everything else checked."""
    unknown = sorted(set(target) - set(KEYS))
    if unknown:
        raise Invalid(f"unknown target key {', '.join(map(repr, unknown))}: use {', '.join(KEYS)}")
    out = {k: v for k, v in target.items() if v is not None and k != "all"}
    for key in ("tag", "board"):
        if key in out and (not isinstance(out[key], str) or not out[key].strip()):
            raise Invalid(f"target.{key} is blank: name one, or leave the key out")
    if "device_ids" in out:
        ids = out["device_ids"]
        if not isinstance(ids, list) or not ids:
            raise Invalid("target.device_ids is empty: name at least one device")
        if any(not isinstance(i, str) or not i.strip() for i in ids):
            raise Invalid("target.device_ids holds a blank device id")
        out["device_ids"] = [i.strip() for i in ids]
    everything = target.get("all")
    if everything not in (None, False, True):
        raise Invalid("target.all is true (every device) or left out")
    if everything:
        narrowed = [k for k in _NARROWING if k in out]
        if narrowed:
            raise Invalid(f"target.all cannot be combined with {', '.join(narrowed)}")
        out["all"] = True
    elif not out:
        raise Invalid(
            "the target names no devices: give borough_id, estate_id, tag, board or "
            'device_ids, or "all": true for every device (in the borough, with borough_id)'
        )
    return out


def target_devices(session: Session, rollout: Rollout) -> list[Device]:
    t = rollout.target
    stmt = select(Device).where(Device.active())
    if rollout.borough_id is not None:
        stmt = stmt.where(Device.borough_id == rollout.borough_id)
    if t.get("borough_id") is not None:
        stmt = stmt.where(Device.borough_id == t["borough_id"])
    if t.get("estate_id") is not None:
        stmt = (
            stmt.join(Placement, Placement.id == Device.placement_id)
            .join(Property, Property.id == Placement.property_id)
            .where(Property.estate_id == t["estate_id"])
        )
    if t.get("tag"):
        stmt = stmt.where(Device.tags.any(Tag.name == t["tag"]))
    if t.get("board"):
        stmt = stmt.where(Device.board == t["board"])
    if t.get("device_ids"):
        stmt = stmt.where(Device.device_id.in_(t["device_ids"]))
    return list(session.scalars(stmt.order_by(Device.id)))


def check_target(session: Session, rollout: Rollout) -> list[Device]:
    """The devices the rollout targets. A target that reaches no device, or not every device
    it names, is a mistake (a typo in a board, tag or device id) that would otherwise
    "complete" with nothing updated."""
    devices = target_devices(session, rollout)
    matched = {d.device_id for d in devices}
    missing = sorted(set(rollout.target.get("device_ids") or []) - matched)
    if missing:
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise OtaError(f"no such device in the target: {', '.join(missing[:10])}{more}")
    if not matched:
        raise OtaError(
            f"the target matches no device ({describe(session, rollout.target)}): "
            "check the board, tag and borough"
        )
    return devices


def describe(session: Session, target: dict[str, Any]) -> str:
    parts = []
    for key, value in target.items():
        if key == "borough_id":
            borough = session.get(Borough, value)
            parts.append(f"borough {borough.name if borough else value}")
        elif key == "estate_id":
            estate = session.get(Estate, value)
            parts.append(f"estate {estate.name if estate else value}")
        elif key == "all":
            parts.append("every device")
        elif key != "device_ids":
            parts.append(f"{key} {value!r}")
    return ", ".join(parts) or "the whole fleet"

"""Audited registry changes: the one place that creates, updates and deletes places.

API routes and dashboard forms both call these, so every change is written to the audit log
the same way, and personal data (addresses) never is.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from fleet.access import audit
from fleet.access.principal import Principal
from fleet.models import Borough, Device, Estate, Placement, Property
from fleet.registry import places

# Changes to these are logged as "changed", never with their values.
PRIVATE_FIELDS = frozenset({"address", "postcode"})

Place = Borough | Estate | Property | Placement | Device

_KIND = {
    Borough: "borough",
    Estate: "estate",
    Property: "property",
    Placement: "placement",
    Device: "device",
}


def kind_of(obj: Place) -> str:
    return _KIND[type(obj)]


def borough_of(session: Session, obj: Place) -> int | None:
    if isinstance(obj, Borough):
        return obj.id
    if isinstance(obj, Placement):
        prop = session.get(Property, obj.property_id)
        return prop.borough_id if prop else None
    return obj.borough_id


def _record(
    session: Session, principal: Principal, obj: Place, verb: str, detail: dict[str, Any] | None
) -> None:
    kind = kind_of(obj)
    target: str | int = obj.id
    if isinstance(obj, Device):
        target = obj.device_id
    elif isinstance(obj, Borough):
        target = obj.code
    audit.record(
        session,
        principal,
        f"{kind}.{verb}",
        target_type=kind,
        target_id=target,
        borough_id=borough_of(session, obj),
        detail=detail,
    )


def created(session: Session, principal: Principal, obj: Place) -> Place:
    session.flush()
    _record(session, principal, obj, "create", None)
    return obj


def update(
    session: Session,
    principal: Principal,
    obj: Place,
    fields: dict[str, Any],
    *,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Apply changed fields; `extra` adds changes made elsewhere (e.g. tags) to the log."""
    diff = places.update_fields(obj, fields)
    for name in PRIVATE_FIELDS & diff.keys():
        diff[name] = "changed"
    diff.update(extra or {})
    _record(session, principal, obj, "update", diff)
    return diff


def delete(session: Session, principal: Principal, obj: Place) -> None:
    """Delete a place that nothing depends on any more (places.Conflict otherwise)."""
    if isinstance(obj, Estate):
        places.delete_estate(session, obj)
        detail: dict[str, Any] | None = {"name": obj.name}
    elif isinstance(obj, Property):
        places.delete_property(session, obj)
        detail = {"reference": obj.reference}
    elif isinstance(obj, Placement):
        places.delete_placement(session, obj)
        detail = {"room": obj.room}
    else:
        raise TypeError(f"{kind_of(obj)} cannot be deleted here")
    _record(session, principal, obj, "delete", detail)

"""Boroughs, estates/blocks, properties and placements, always read through borough scoping."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.orm import Session

from fleet.access.principal import Forbidden, Principal
from fleet.models import Borough, Device, Estate, Placement, Property
from fleet.models.risk import Case, RiskHour


class NotFound(Exception):
    pass


class Conflict(Exception):
    pass


def visible_boroughs(session: Session, *, principal: Principal) -> Sequence[Borough]:
    stmt = select(Borough).order_by(Borough.name)
    if principal.borough_ids is not None:
        stmt = stmt.where(Borough.id.in_(principal.borough_ids))
    return session.scalars(stmt).all()


def borough_by_code(session: Session, *, code: str, principal: Principal) -> Borough:
    borough = session.scalars(select(Borough).where(Borough.code == code)).one_or_none()
    if borough is None or not principal.can_see(borough.id):
        raise NotFound(f"no borough {code!r}")
    return borough


def create_borough(
    session: Session, *, code: str, name: str, contact_email: str | None = None
) -> Borough:
    if session.scalars(select(Borough.id).where(Borough.code == code)).first():
        raise Conflict(f"borough {code!r} already exists")
    borough = Borough(code=code, name=name, contact_email=contact_email)
    session.add(borough)
    session.flush()
    return borough


def create_estate(
    session: Session,
    *,
    borough: Borough,
    name: str,
    kind: str = "estate",
    parent_id: int | None = None,
) -> Estate:
    if parent_id is not None:
        parent = session.get(Estate, parent_id)
        if parent is None or parent.borough_id != borough.id:
            raise NotFound(f"no estate {parent_id} in borough {borough.code}")
    exists = select(Estate.id).where(Estate.borough_id == borough.id, Estate.name == name)
    if session.scalars(exists).first():
        raise Conflict(f"estate {name!r} already exists in {borough.code}")
    estate = Estate(borough_id=borough.id, name=name, kind=kind, parent_id=parent_id)
    session.add(estate)
    session.flush()
    return estate


def list_estates(session: Session, *, borough: Borough) -> Sequence[Estate]:
    stmt = select(Estate).where(Estate.borough_id == borough.id).order_by(Estate.name)
    return session.scalars(stmt).all()


def create_property(
    session: Session,
    *,
    borough: Borough,
    reference: str,
    estate_id: int | None = None,
    housing_type: str | None = None,
    construction_age_band: str | None = None,
    floor: int | None = None,
    address: str | None = None,
    postcode: str | None = None,
) -> Property:
    if estate_id is not None:
        estate = session.get(Estate, estate_id)
        if estate is None or estate.borough_id != borough.id:
            raise NotFound(f"no estate {estate_id} in borough {borough.code}")
    taken = select(Property.id).where(
        Property.borough_id == borough.id, Property.reference == reference
    )
    if session.scalars(taken).first():
        raise Conflict(f"property {reference!r} already exists in {borough.code}")
    prop = Property(
        borough_id=borough.id,
        estate_id=estate_id,
        reference=reference,
        housing_type=housing_type,
        construction_age_band=construction_age_band,
        floor=floor,
        address=address,
        postcode=postcode,
    )
    session.add(prop)
    session.flush()
    return prop


def get_property(session: Session, *, property_id: int, principal: Principal) -> Property:
    prop = session.get(Property, property_id)
    if prop is None or not principal.can_see(prop.borough_id):
        raise NotFound(f"no property {property_id}")
    return prop


def list_properties(session: Session, *, borough: Borough) -> Sequence[Property]:
    stmt = select(Property).where(Property.borough_id == borough.id).order_by(Property.reference)
    return session.scalars(stmt).all()


def _property_match(borough: Borough, q: str | None) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [Property.borough_id == borough.id]
    if q:
        # Typed text is matched literally: % and _ in a reference are not wildcards.
        where.append(
            or_(
                Property.reference.icontains(q, autoescape=True),
                Property.address.icontains(q, autoescape=True),
                Property.postcode.icontains(q, autoescape=True),
            )
        )
    return where


def find_properties(
    session: Session, *, borough: Borough, q: str | None = None, limit: int, offset: int = 0
) -> tuple[Sequence[Property], int]:
    """A page of the borough's properties by reference (unique in a borough, so pages neither
    skip nor repeat one), whose reference, address or postcode holds ``q``, and the total."""
    where = _property_match(borough, q)
    total = int(session.scalar(select(func.count()).select_from(Property).where(*where)) or 0)
    stmt = select(Property).where(*where).order_by(Property.reference, Property.id)
    return session.scalars(stmt.limit(limit).offset(offset)).all(), total


def devices_per_property(session: Session, property_ids: Sequence[int]) -> dict[int, int]:
    """Devices installed in each of these properties (already resolved through scoping)."""
    if not property_ids:
        return {}
    stmt = (
        select(Placement.property_id, func.count(Device.id))
        .join(Device, Device.placement_id == Placement.id)
        .where(Placement.property_id.in_(property_ids))
        .group_by(Placement.property_id)
    )
    return {prop_id: int(n) for prop_id, n in session.execute(stmt).all()}


def create_placement(
    session: Session, *, prop: Property, room: str, position: str | None = None
) -> Placement:
    placement = Placement(property_id=prop.id, room=room, position=position)
    session.add(placement)
    session.flush()
    return placement


def list_placements(session: Session, *, prop: Property) -> Sequence[Placement]:
    stmt = select(Placement).where(Placement.property_id == prop.id).order_by(Placement.room)
    return session.scalars(stmt).all()


def place_device(
    session: Session, *, device: Device, placement_id: int, principal: Principal
) -> Placement:
    """Install a device at a placement; the device joins the property's borough."""
    placement = session.get(Placement, placement_id)
    if placement is None:
        raise NotFound(f"no placement {placement_id}")
    prop = session.get(Property, placement.property_id)
    if prop is None or not principal.can_see(prop.borough_id):
        raise NotFound(f"no placement {placement_id}")
    if device.borough_id is not None and not principal.can_see(device.borough_id):
        raise Forbidden("the device belongs to another borough")
    if device.borough_id is not None and device.borough_id != prop.borough_id:
        # Readings, alerts, commands and rollouts are kept against the device: moved, they
        # would follow it into the other borough. Retiring keeps them with the first one.
        raise Conflict(
            f"device {device.device_id} is in another borough; to use it in this one, "
            "decommission it (its readings and history stay with its borough) and enrol it here"
        )
    device.placement_id = placement.id
    device.borough_id = prop.borough_id
    return placement


def get_estate(session: Session, *, estate_id: int, principal: Principal) -> Estate:
    estate = session.get(Estate, estate_id)
    if estate is None or not principal.can_see(estate.borough_id):
        raise NotFound(f"no estate {estate_id}")
    return estate


def ensure_estate_name_free(session: Session, estate: Estate, name: str) -> None:
    """Renaming must not collide with another estate of the same borough (unique per borough)."""
    clash = select(Estate.id).where(
        Estate.borough_id == estate.borough_id, Estate.name == name, Estate.id != estate.id
    )
    if session.scalars(clash).first() is not None:
        raise Conflict(f"estate {name!r} already exists in this borough")


def get_placement(session: Session, *, placement_id: int, principal: Principal) -> Placement:
    placement = session.get(Placement, placement_id)
    prop = session.get(Property, placement.property_id) if placement else None
    if placement is None or prop is None or not principal.can_see(prop.borough_id):
        raise NotFound(f"no placement {placement_id}")
    return placement


def update_fields(obj: object, changes: dict[str, object]) -> dict[str, object]:
    """Apply only the fields that changed; returns {field: [old, new]} for the audit log."""
    diff: dict[str, object] = {}
    for key, value in changes.items():
        old = getattr(obj, key)
        if old != value:
            setattr(obj, key, value)
            diff[key] = [old, value]
    return diff


def delete_estate(session: Session, estate: Estate) -> None:
    in_use = session.scalars(select(Property.id).where(Property.estate_id == estate.id)).first()
    if in_use is not None:
        raise Conflict(f"estate {estate.name!r} still has properties; move or delete them first")
    session.delete(estate)


def delete_property(session: Session, prop: Property) -> None:
    """Refused while devices are installed there, and for good once it has cases or risk
    history: they are the evidence of what the landlord knew and did (Awaab's Law)."""
    placements = select(Placement.id).where(Placement.property_id == prop.id)
    if session.scalars(select(Device.id).where(Device.placement_id.in_(placements))).first():
        raise Conflict(
            f"property {prop.reference!r} still has installed devices; remove them first"
        )
    if session.scalars(select(Case.id).where(Case.property_id == prop.id)).first():
        raise Conflict(
            f"property {prop.reference!r} has damp and mould cases, kept as evidence: "
            "it cannot be deleted (close its cases instead)"
        )
    if _has_risk_history(session, placements):
        raise Conflict(
            f"property {prop.reference!r} has risk history from its sensors, kept as "
            "evidence: it cannot be deleted"
        )
    session.delete(prop)


def delete_placement(session: Session, placement: Placement) -> None:
    if session.scalars(select(Device.id).where(Device.placement_id == placement.id)).first():
        raise Conflict("a device is installed at this placement; remove it first")
    if _has_risk_history(session, [placement.id]):
        raise Conflict(
            f"the {placement.room} placement has risk history from its sensors, kept as "
            "evidence: it cannot be deleted"
        )
    session.delete(placement)


def _has_risk_history(session: Session, placements: Select[int] | list[int]) -> bool:
    found = select(RiskHour.placement_id).where(RiskHour.placement_id.in_(placements))
    return session.scalars(found.limit(1)).first() is not None

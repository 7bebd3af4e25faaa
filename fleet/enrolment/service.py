"""Enrol a device: place it, register it, and hand it an identity and its site's network.

Re-enrolling a device into the place it already has is idempotent apart from the fresh
certificate, so an interrupted technician can simply run the step again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet.access import audit
from fleet.access.principal import Principal
from fleet.core.settings import Settings
from fleet.enrolment import certificates, wifi
from fleet.enrolment.broker import DeviceBroker, device_broker
from fleet.enrolment.certificates import CertificateBundle
from fleet.enrolment.errors import AlreadyEnrolledElsewhere, BoroughNotPermitted, DeviceNotEnrolled
from fleet.enrolment.secrets import SecretBox
from fleet.identity.rotation import ROTATE_BEFORE_DAYS
from fleet.models import Borough, Device, Placement, Property
from fleet.models.base import utcnow
from fleet.ota.service import release_floor, trusted_keys
from fleet.registry import cadence, places
from fleet.registry.devices import current_device, register_device


@dataclass(frozen=True)
class EnrolmentRequest:
    device_id: str
    borough: str
    property_reference: str
    room: str
    board: str
    position: str | None = None
    wifi_profile: str = wifi.DEFAULT_PROFILE
    power_mode: str = "mains"
    # What provisioning writes into config.json: liveness judges the device against them.
    sample_interval_s: int | None = None
    health_interval_s: int | None = None


@dataclass(frozen=True)
class Neighbour:
    """Another device in service at the placement: usually the faulty sensor a new one
    replaces (which only borough staff can decommission), sometimes a deliberate second."""

    device_id: str
    status: str
    last_seen_at: datetime | None


@dataclass(frozen=True)
class Enrolment:
    device_id: str
    borough: str
    property_reference: str
    placement_id: int
    room: str
    position: str | None
    board: str
    created: bool  # False when the device was already enrolled here
    certificate: CertificateBundle
    broker: DeviceBroker
    wifi: wifi.WifiCredentials
    # The release keys the fleet trusts (kid -> public key hex), for the device's
    # ota/trust.json: without them it refuses every update.
    release_keys: dict[str, str]
    # The anti-rollback floor the fleet's releases have reached, for the same file.
    release_floor: str
    # Other devices in service at the same placement; enrolment does not refuse them.
    also_here: tuple[Neighbour, ...] = ()


def _borough(session: Session, code: str, principal: Principal) -> Borough:
    borough = session.scalars(select(Borough).where(Borough.code == code)).one_or_none()
    if borough is None or not principal.can_see(borough.id):
        raise BoroughNotPermitted(
            f"borough {code!r} does not exist or your token does not cover it: check the code, "
            "or ask an admin to add the borough to your account"
        )
    return borough


def _where(session: Session, device: Device, principal: Principal) -> str | None:
    """A description of the device's current placement, or None if it has none."""
    if device.placement_id is None:
        return None
    placement = session.get(Placement, device.placement_id)
    prop = session.get(Property, placement.property_id) if placement else None
    if placement is None or prop is None:
        return None
    if not principal.can_see(prop.borough_id):
        return "a property in another borough"
    spot = f", {placement.position}" if placement.position else ""
    return f"property {prop.reference}, {placement.room}{spot}"


def _same_words(a: str | None, b: str | None) -> bool:
    """Room and position names as a technician types them: "Bathroom " is "bathroom"."""
    return (a or "").strip().casefold() == (b or "").strip().casefold()


def _same_place(
    current: Placement, prop: Property | None, request: EnrolmentRequest
) -> Placement | None:
    """The device's placement if the request names it again; a position left out keeps the
    stored one (enrolling again is how a technician renews a sensor's files on site)."""
    if prop is None or current.property_id != prop.id:
        return None
    if not _same_words(current.room, request.room):
        return None
    if request.position is not None and not _same_words(current.position, request.position):
        return None
    return current


def _elsewhere(
    current: Placement, prop: Property | None, request: EnrolmentRequest, where: str
) -> str:
    move = (
        f"to move it, borough staff re-place it (PUT /api/v1/devices/{request.device_id}"
        "/placement), or enrol a different device here"
    )
    if (
        prop is not None
        and current.property_id == prop.id
        and _same_words(current.room, request.room)
    ):
        return (
            f"device {request.device_id} is already enrolled at {where}, in another position "
            f"than {request.position!r}: leave the position out (or give "
            f"{current.position or 'none'!r}) to keep its place; {move}"
        )
    return f"device {request.device_id} is already enrolled at {where}; {move}"


def _find_or_create_placement(
    session: Session, *, prop: Property, room: str, position: str | None
) -> Placement:
    stmt = select(Placement).where(Placement.property_id == prop.id)
    for found in session.scalars(stmt.order_by(Placement.id)):
        if _same_words(found.room, room) and _same_words(found.position, position):
            return found
    return places.create_placement(session, prop=prop, room=room, position=position)


def _also_here(session: Session, *, placement: Placement, device: Device) -> tuple[Neighbour, ...]:
    stmt = select(Device).where(
        Device.placement_id == placement.id, Device.active(), Device.id != device.id
    )
    return tuple(
        Neighbour(d.device_id, d.status, d.last_seen_at)
        for d in session.scalars(stmt.order_by(Device.device_id))
    )


def enrol(
    session: Session,
    *,
    settings: Settings,
    principal: Principal,
    request: EnrolmentRequest,
    now: datetime | None = None,
) -> Enrolment:
    """Place and register the device and issue its certificate; the caller commits."""
    borough = _borough(session, request.borough, principal)
    # Everything that can refuse without side effects runs before anything is written.
    credentials = wifi.credentials(
        session, box=SecretBox.from_settings(settings), borough=borough, name=request.wifi_profile
    )
    ca = certificates.load_ca(settings)
    prop = session.scalars(
        select(Property).where(
            Property.borough_id == borough.id, Property.reference == request.property_reference
        )
    ).one_or_none()

    device = current_device(session, request.device_id)
    created = device is None
    placement: Placement | None = None
    if device is not None:
        # Also for staff of both boroughs: a device's history moves with it (see place_device).
        if device.borough_id is not None and device.borough_id != borough.id:
            raise AlreadyEnrolledElsewhere(
                f"device {request.device_id} is already enrolled in another borough; "
                "its borough's staff must decommission it before it can be enrolled here "
                "(its readings stay with that borough's placement)"
            )
        where = _where(session, device, principal)
        current = session.get(Placement, device.placement_id) if device.placement_id else None
        if where is not None and current is not None:
            kept = _same_place(current, prop, request)
            if kept is None:
                raise AlreadyEnrolledElsewhere(_elsewhere(current, prop, request, where))
            placement = kept

    if prop is None:
        prop = places.create_property(
            session, borough=borough, reference=request.property_reference
        )
    if placement is None:
        placement = _find_or_create_placement(
            session, prop=prop, room=request.room, position=request.position
        )
    if device is None:
        device = register_device(
            session,
            device_id=request.device_id,
            board=request.board,
            borough_id=borough.id,
            power_mode=request.power_mode,
        )
    device.board = request.board
    device.borough_id = borough.id
    device.placement_id = placement.id
    device.power_mode = request.power_mode
    if request.sample_interval_s is not None:
        cadence.provisioned(
            device,
            sample_interval_s=request.sample_interval_s,
            health_interval_s=request.health_interval_s,
        )
    session.flush()
    also_here = _also_here(session, placement=placement, device=device)

    bundle = certificates.issue(
        session, ca=ca, device=device, principal=principal, reason="enrol", now=now
    )
    audit.record(
        session,
        principal,
        "device.enrol",
        target_type="device",
        target_id=device.device_id,
        borough_id=borough.id,
        detail={
            "property": prop.reference,
            "room": placement.room,
            "position": placement.position,
            "board": device.board,
            "serial": bundle.serial,
            "re_enrolment": not created,
            "also_here": [n.device_id for n in also_here],
        },
    )
    return Enrolment(
        device_id=device.device_id,
        borough=borough.code,
        property_reference=prop.reference,
        placement_id=placement.id,
        room=placement.room,
        position=placement.position,
        board=device.board,
        created=created,
        certificate=bundle,
        broker=device_broker(settings),
        wifi=credentials,
        release_keys=trusted_keys(session),
        release_floor=release_floor(session),
        also_here=also_here,
    )


def rotate(
    session: Session,
    *,
    settings: Settings,
    principal: Principal,
    device_id: str,
    force: bool = False,
    before_days: int = ROTATE_BEFORE_DAYS,
    now: datetime | None = None,
) -> CertificateBundle:
    """A new certificate for an enrolled device once the current one nears expiry.

    The previous certificate stays valid until it expires (the device switches when the new
    files are installed); revoke it explicitly if its key may have leaked.
    """
    device = current_device(session, device_id)
    if device is None or device.placement_id is None or not principal.can_see(device.borough_id):
        raise DeviceNotEnrolled(
            f"device {device_id} is not enrolled in your boroughs: enrol it first"
        )
    when = now or utcnow()
    if not force:
        certificates.check_rotation_due(
            certificates.current_certificate(session, device=device),
            now=when,
            before_days=before_days,
        )
    bundle = certificates.issue(
        session,
        ca=certificates.load_ca(settings),
        device=device,
        principal=principal,
        reason="rotate",
        now=when,
    )
    audit.record(
        session,
        principal,
        "device.certificate.rotate",
        target_type="device",
        target_id=device_id,
        borough_id=device.borough_id,
        detail={"serial": bundle.serial, "forced": force},
    )
    return bundle

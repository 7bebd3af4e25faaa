"""Virtual devices for `fleet demo`: registered in a demo borough, then started."""

from __future__ import annotations

import secrets

from rich.console import Console
from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet.access import accounts
from fleet.access.principal import SYSTEM
from fleet.access.roles import Role
from fleet.broker.url import BrokerAddress
from fleet.core.context import FleetContext
from fleet.models import Borough, Device, Estate, Property, User
from fleet.ota import service as ota_service
from fleet.ota import signing
from fleet.ota.sim import write_trust
from fleet.registry import cadence, places
from fleet.registry.devices import DeviceExists, register_device
from fleet.simulator.fleet import VirtualFleet

DEMO_BOROUGH = "demo"
DEMO_ADMIN = "admin@demo.local"


def ensure_demo_login(ctx: FleetContext, console: Console) -> None:
    """A demo borough and an admin account; the password is shown once, on creation."""
    with ctx.sessions.begin() as session:
        if session.scalars(select(Borough).where(Borough.code == DEMO_BOROUGH)).first() is None:
            places.create_borough(session, code=DEMO_BOROUGH, name="Demo borough")
        if session.scalars(select(User).where(User.email == DEMO_ADMIN)).first() is not None:
            return
        password = secrets.token_urlsafe(12)
        accounts.create_user(
            session, email=DEMO_ADMIN, name="Demo admin", role=Role.ADMIN, password=password
        )
    console.print(
        f"[bold]Sign in to the dashboard as {DEMO_ADMIN} with password {password}[/bold] "
        "(shown once; create more users with `fleet user add`)."
    )


# Flat 1's room: damp air and a cold wall, so the risk pages have something to show within a
# few hours (room RH above 70 % for 2 h in 12 h, most readings above the mould limit).
DAMP_ROOM = {"rh_base": 78.0, "f_rsi": 0.55}
DEMO_ESTATE = "Demo Court"
DEMO_ROOMS = ("bathroom", "bedroom", "kitchen", "living room")


def _place_in_demo_flat(session: Session, borough: Borough, device: Device, i: int) -> None:
    """Flat `i` of the demo estate, with one placement for the device: the registry and risk
    pages then show homes, not only devices."""
    estate = session.scalars(
        select(Estate).where(Estate.borough_id == borough.id, Estate.name == DEMO_ESTATE)
    ).first() or places.create_estate(session, borough=borough, name=DEMO_ESTATE)
    reference = f"DEMO-{i:03d}"
    prop = session.scalars(
        select(Property).where(Property.borough_id == borough.id, Property.reference == reference)
    ).first() or places.create_property(
        session,
        borough=borough,
        reference=reference,
        estate_id=estate.id,
        housing_type="flat",
        construction_age_band="1945-1964" if i % 2 else "1965-1980",
        floor=(i - 1) % 4,
    )
    room = DEMO_ROOMS[(i - 1) % len(DEMO_ROOMS)]
    device.placement_id = places.create_placement(session, prop=prop, room=room).id


def _demo_release_key(ctx: FleetContext, console: Console) -> signing.SigningKey:
    """The demo's release signing key in the data folder, trusted by the fleet when first
    made, so a release signed with it updates the virtual devices."""
    folder = ctx.settings.data_dir / "release-keys"
    found = sorted(folder.glob("*.pem"))
    if found:
        return signing.load(found[0])
    key = signing.generate(folder)
    with ctx.sessions.begin() as session:
        ota_service.trust_key(session, SYSTEM, key.public_hex, name="demo")
    keys, port = folder, ctx.settings.http_port
    token_file = ctx.settings.data_dir / "admin-token"
    token = f"$(cat {token_file})" if token_file.exists() else "$FLEET_ADMIN_TOKEN"
    console.print(
        f"Release key {key.kid} is in {keys}/ and trusted. Try an update:\n"
        f"  fleet release build 0.2.0 --out app-0.2.0.zip\n"
        f"  fleet release sign app-0.2.0.zip --keys {keys}\n"
        f"  fleet release upload app-0.2.0.zip --api http://127.0.0.1:{port} "
        f"--token {token}\n"
        "then start a rollout on the dashboard's Updates page.",
        soft_wrap=True,  # commands to copy stay on one line each
    )
    return key


def start_demo_devices(
    ctx: FleetContext,
    broker: BrokerAddress,
    *,
    count: int,
    sample_interval_s: int,
    heapsize: str,
    console: Console | None = None,
) -> VirtualFleet:
    console = console or Console(stderr=True)
    ensure_demo_login(ctx, console)
    health_interval_s = max(sample_interval_s * 3, 30)
    fleet = VirtualFleet(
        count,
        ctx.settings.data_dir / "devices",
        broker_host=broker.host,
        broker_port=broker.port,
        heapsize=heapsize,
        sample_interval_s=sample_interval_s,
        health_interval_s=health_interval_s,
    )
    if fleet.devices:
        fleet.devices[0].room = DAMP_ROOM  # applies when its folder is first made
    key = _demo_release_key(ctx, console)
    for dev in fleet.devices:
        if not dev.device_dir.exists():
            # As provisioning does for a real sensor: the release keys it accepts.
            dev.prepare()
            write_trust(dev.device_dir, {key.kid: key.public_hex})
    with ctx.sessions.begin() as session:
        borough = session.scalars(select(Borough).where(Borough.code == DEMO_BOROUGH)).one()
        for i, device_id in enumerate(fleet.device_ids, start=1):
            try:
                device = register_device(
                    session,
                    device_id=device_id,
                    name=f"Demo flat {i}",
                    borough_id=borough.id,
                    report_interval_s=sample_interval_s,
                )
            except DeviceExists:
                device = session.scalars(select(Device).where(Device.current(device_id))).one()
            if device.sample_interval_s is None:
                # What the virtual sensor's config.json says, as provisioning records it.
                cadence.provisioned(
                    device,
                    sample_interval_s=sample_interval_s,
                    health_interval_s=health_interval_s,
                )
            if device.placement_id is None:
                _place_in_demo_flat(session, borough, device, i)
    console.print(f"starting {count} virtual devices (MicroPython VM, heap {heapsize})...")
    fleet.start()
    return fleet

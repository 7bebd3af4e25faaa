"""Virtual devices for `fleet demo`: registered in a demo borough, then started."""

from __future__ import annotations

import secrets

from rich.console import Console
from sqlalchemy import select

from fleet.access import accounts
from fleet.access.roles import Role
from fleet.broker.url import BrokerAddress
from fleet.core.context import FleetContext
from fleet.models import Borough, User
from fleet.registry import places
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
    fleet = VirtualFleet(
        count,
        ctx.settings.data_dir / "devices",
        broker_host=broker.host,
        broker_port=broker.port,
        heapsize=heapsize,
        sample_interval_s=sample_interval_s,
        health_interval_s=max(sample_interval_s * 3, 30),
    )
    with ctx.sessions.begin() as session:
        borough = session.scalars(select(Borough).where(Borough.code == DEMO_BOROUGH)).one()
        for i, device_id in enumerate(fleet.device_ids, start=1):
            try:
                register_device(
                    session,
                    device_id=device_id,
                    name=f"Demo flat {i}",
                    borough_id=borough.id,
                    report_interval_s=sample_interval_s,
                )
            except DeviceExists:
                continue
    console.print(f"starting {count} virtual devices (MicroPython VM, heap {heapsize})...")
    fleet.start()
    return fleet

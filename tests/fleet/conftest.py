"""Fleet-side fixtures: a migrated context on each database backend."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from fleet.core.context import FleetContext, build_context
from fleet.core.settings import Settings


@pytest.fixture
def fleet_ctx(database_url: str, tmp_path: Path) -> Iterator[FleetContext]:
    ctx = build_context(
        Settings(environment="test", data_dir=tmp_path / "data", database_url=database_url)
    )
    try:
        yield ctx
    finally:
        ctx.close()


PASSWORD = "correct horse battery staple"


@cache
def password_hash() -> str:
    """PASSWORD's argon2 hash, made once per process: a hash costs a noticeable fraction of a
    second by design, and every test world has five users."""
    from fleet.access.secrets import hash_password

    return hash_password(PASSWORD)


class World:
    """Two boroughs, a device in each, and one user per role with an API token."""

    def __init__(self, ctx: FleetContext) -> None:
        from fleet.access import accounts
        from fleet.access.roles import ROLE_SCOPES, Role
        from fleet.registry import places
        from fleet.registry.devices import register_device

        self.ctx = ctx
        self.tokens: dict[str, str] = {}
        with ctx.sessions.begin() as s:
            hackney = places.create_borough(s, code="hackney", name="Hackney")
            camden = places.create_borough(s, code="camden", name="Camden")
            self.borough_ids = {"hackney": hackney.id, "camden": camden.id}
            for code, borough in (("hackney", hackney), ("camden", camden)):
                prop = places.create_property(
                    s, borough=borough, reference=f"{code.upper()}-0001", address="1 Secret Street"
                )
                placement = places.create_placement(s, prop=prop, room="bathroom")
                device = register_device(s, device_id=f"cs-{code}-0001", borough_id=borough.id)
                device.placement_id = placement.id
            users = {
                "admin": (Role.ADMIN, []),
                "staff_hackney": (Role.STAFF, ["hackney"]),
                "staff_camden": (Role.STAFF, ["camden"]),
                "tech_hackney": (Role.TECHNICIAN, ["hackney"]),
                "readonly_hackney": (Role.READONLY, ["hackney"]),
            }
            for name, (role, boroughs) in users.items():
                user = accounts.create_user(
                    s,
                    email=f"{name}@example.org",
                    name=name,
                    role=role,
                    borough_codes=boroughs,
                )
                user.password_hash = password_hash()
                token, _ = accounts.issue_api_token(s, user, name="test", scopes=ROLE_SCOPES[role])
                self.tokens[name] = token

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


@pytest.fixture
def world(fleet_ctx: FleetContext) -> World:
    return World(fleet_ctx)

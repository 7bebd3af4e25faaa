"""The device page's latest health: sensor fault flags come with what to check."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from fleet.core.context import FleetContext
from fleet.models import Device
from tests.dashboard.test_ota_pages import client, recorder, sign_in  # noqa: F401
from tests.fleet.conftest import World, fleet_ctx, world  # noqa: F401

DEVICE = "cs-hackney-0001"


def test_sensor_faults_on_the_device_page_say_what_to_check(
    client: TestClient,  # noqa: F811
    fleet_ctx: FleetContext,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    with fleet_ctx.sessions.begin() as s:
        device = s.scalars(select(Device).where(Device.device_id == DEVICE)).one()
        device.health = {"sensor_faults": "sht4x:bus", "uptime": 120}
    sign_in(client, "staff_hackney")
    page = client.get(f"/devices/{DEVICE}").text
    assert (
        "<dt>sensor_faults</dt><dd>sht4x:bus (sht4x: its bus did not start: check the board "
        "profile&#39;s pins and the wiring)</dd>"
    ) in page
    assert "<dt>uptime</dt><dd>120</dd>" in page

    with fleet_ctx.sessions.begin() as s:
        device = s.scalars(select(Device).where(Device.device_id == DEVICE)).one()
        device.health = {"sensor_faults": ""}
    page = client.get(f"/devices/{DEVICE}").text
    assert "<dt>sensor_faults</dt><dd></dd>" in page

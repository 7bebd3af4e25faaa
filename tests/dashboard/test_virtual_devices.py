"""The dashboard shows real virtual devices (firmware in the VM) online with readings."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from fleet.registry.devices import register_device
from fleet.simulator import VirtualFleet
from tests.dashboard.conftest import save_screenshot, sign_in
from tests.fleet.server import RunningFleet

pytestmark = [pytest.mark.browser, pytest.mark.vm]


def test_dashboard_sees_virtual_devices(fleet: RunningFleet, page, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    devices = VirtualFleet(
        3,
        tmp_path / "devices",
        broker_host=fleet.broker.host,
        broker_port=fleet.broker.port,
        heapsize="128K",
        sample_interval_s=2,
        health_interval_s=4,
        base_seed=70,
    )
    hackney = fleet.ctx
    with hackney.sessions.begin() as session:
        from sqlalchemy import select

        from fleet.models import Borough

        borough_id = session.scalars(select(Borough.id).where(Borough.code == "hackney")).one()
        for device_id in devices.device_ids:
            register_device(
                session, device_id=device_id, borough_id=borough_id, report_interval_s=2
            )
    with devices:
        sign_in(page, fleet.base_url, "staff_hackney")
        for device_id in devices.device_ids:
            row = page.locator(f'tr[data-device="{device_id}"]')
            expect(row.locator('[data-field="state"]')).to_have_text("online", timeout=60_000)
            expect(row.locator('[data-metric="humidity"]')).to_contain_text("%", timeout=30_000)
        save_screenshot(page, "overview-virtual-devices")

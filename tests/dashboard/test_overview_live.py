"""The overview page in a real browser: rows for devices, values updated live without reload."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from fleet.core.context import FleetContext, build_context
from fleet.core.settings import Settings
from fleet.ingest.handler import IngestHandler
from fleet.registry.devices import register_device
from tests.dashboard.conftest import save_screenshot
from tests.fleet.packs import telemetry
from tests.fleet.server import RunningFleet, running_fleet

pytestmark = pytest.mark.browser


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[RunningFleet]:
    ctx: FleetContext = build_context(
        Settings(environment="test", data_dir=tmp_path, embedded_broker_port=0)
    )
    with ctx.sessions.begin() as session:
        register_device(session, device_id="cs-live-0001", name="Flat 1, bathroom")
        register_device(session, device_id="cs-live-0002")
    try:
        with running_fleet(ctx) as running:
            yield running
    finally:
        ctx.close()


def test_live_update_without_reload(fleet: RunningFleet, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(fleet.base_url + "/")
    rows = page.locator("#devices tbody tr[data-device]")
    expect(rows).to_have_count(2)
    expect(page.locator("#live-state")).to_contain_text("Live")

    now = float(int(time.time()))
    handler = IngestHandler(fleet.ctx.sessions)
    handler.handle("cs/v1/d/cs-live-0001/status", b'{"sv":1,"state":"online"}')
    handler.handle("cs/v1/d/cs-live-0001/up", telemetry("cs-live-0001", now, [(0, 19.25, 71.5)]))

    row = page.locator('tr[data-device="cs-live-0001"]')
    expect(row.locator('[data-metric="humidity"]')).to_have_text("71.5%", timeout=15000)
    expect(row.locator('[data-field="state"]')).to_have_text("online")
    expect(page.locator('[data-count="online"]')).to_have_text("1")
    save_screenshot(page, "overview-live")

"""Live updates show times as the server renders them: UK time with its zone, whatever zone
the reader's browser is set to."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from fleet.dashboard.templating import fmt_time
from fleet.ingest.handler import IngestHandler
from fleet.models import Device
from tests.dashboard.conftest import sign_in
from tests.fleet.packs import telemetry
from tests.fleet.server import RunningFleet

pytestmark = pytest.mark.browser


def test_live_rows_show_uk_time_in_a_browser_elsewhere(fleet: RunningFleet, browser) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 800}, timezone_id="Asia/Tokyo")
    page = context.new_page()
    try:
        sign_in(page, fleet.base_url, "staff_hackney")
        expect(page.locator("#live-state")).to_contain_text("Live")
        handler = IngestHandler(fleet.ctx.sessions)
        handler.handle(
            "cs/v1/d/cs-hackney-0001/up",
            telemetry("cs-hackney-0001", float(int(time.time())), [(0, 19.25, 64.5)]),
        )
        row = page.locator('tr[data-device="cs-hackney-0001"]')
        # Only a live update brings this value: the row was re-rendered by the script.
        expect(row.locator('[data-metric="humidity"]')).to_have_text("64.5%", timeout=15000)
        with fleet.ctx.sessions() as s:
            device = s.scalars(select(Device).where(Device.device_id == "cs-hackney-0001")).one()
            shown = fmt_time(device.last_seen_at)
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d (GMT|BST)", shown)
        expect(row.locator('[data-field="last_seen_at"]')).to_have_text(shown)
    finally:
        context.close()

"""Risk and case pages in a real browser: property charts, the borough list, a case."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from fleet.core.context import FleetContext, build_context
from fleet.core.settings import Settings
from fleet.risk.service.settings import RiskSettings
from fleet.risk.service.sweep import sweep
from tests.cases.rooms import DAMP, samples, store
from tests.dashboard.conftest import save_screenshot
from tests.dashboard.test_overview_live import sign_in
from tests.fleet.conftest import World
from tests.fleet.server import RunningFleet, running_fleet

pytestmark = pytest.mark.browser


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningFleet]:
    monkeypatch.setenv("FLEET_RISK_SWEEP_S", "3600")
    ctx: FleetContext = build_context(
        Settings(environment="test", data_dir=tmp_path, embedded_broker_port=0)
    )
    World(ctx)
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=10)
    store(ctx, "cs-hackney-0001", list(samples(DAMP, start, 24 * 9)))
    store(ctx, "cs-camden-0001", list(samples(DAMP, start, 24 * 9)))
    sweep(ctx.sessions, RiskSettings())
    try:
        with running_fleet(ctx) as running:
            yield running
    finally:
        ctx.close()


def test_property_page_charts_and_case_steps(fleet: RunningFleet, page) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, fleet.base_url, "staff_hackney")
    page.get_by_role("link", name="Risk", exact=True).click()
    rows = page.locator("#risk-list tbody tr[data-property]")
    expect(rows).to_have_count(1)  # Camden's property is not listed
    expect(rows.first).to_contain_text(re.compile("high|severe"))
    rows.first.get_by_role("link", name="HACKNEY-0001").click()

    expect(page.get_by_role("heading", name=re.compile("HACKNEY-0001"))).to_be_visible()
    for label in ("Relative humidity", "Dew point", "Surface RH", "Mould index"):
        chart = page.locator("figure", has_text=label).locator("svg")
        expect(chart).to_have_count(1)
        expect(chart).to_have_attribute("aria-label", re.compile(r"min .* max .* latest"))
        expect(chart.locator("path")).to_have_count(1)
    expect(page.locator("ul.evidence")).to_contain_text("bs5250.surface_rh80")
    save_screenshot(page, "risk-property")

    page.get_by_role("link", name=re.compile(r"^Case \d+$")).click()
    expect(page.get_by_role("heading", name=re.compile(r"Case \d+"))).to_be_visible()
    investigation = page.locator("table.deadlines tr[data-step=investigation]")
    expect(investigation).to_contain_text("pending")
    page.get_by_role("combobox", name="Step").select_option("investigation")
    page.get_by_role("textbox", name="Note").fill("surveyed the bathroom wall")
    page.get_by_role("button", name="Record").click()
    expect(page.get_by_role("status")).to_contain_text("Investigation recorded")
    expect(investigation).to_contain_text("done")
    expect(page.locator("#timeline")).to_contain_text("surveyed the bathroom wall")
    summary = page.locator("table.deadlines tr[data-step=written_summary]")
    expect(summary).to_contain_text("pending")
    save_screenshot(page, "case")

    page.get_by_role("link", name="Cases", exact=True).click()
    expect(page.locator("#cases tbody tr[data-case]")).to_have_count(1)

"""The dashboard in a real browser: sign in, borough scoping, live updates, device page, alerts."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from fleet.health.alert_rules import Finding
from fleet.health.alerts import apply_findings
from fleet.ingest.handler import IngestHandler
from fleet.models import Device
from fleet.models.base import utcnow
from tests.dashboard.conftest import save_screenshot, sign_in
from tests.fleet.packs import telemetry
from tests.fleet.server import RunningFleet

pytestmark = pytest.mark.browser


def test_wrong_password_is_refused(fleet: RunningFleet, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(fleet.base_url + "/login")
    page.get_by_label("Email").fill("staff_hackney@example.org")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("wrong")


def test_staff_see_own_borough_live(fleet: RunningFleet, page) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, fleet.base_url, "staff_hackney")
    rows = page.locator("#devices tbody tr[data-device]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-device", "cs-hackney-0001")
    expect(page.locator("#live-state")).to_contain_text("Live")
    assert page.locator('[data-borough="camden"]').count() == 0

    now = float(int(time.time()))
    handler = IngestHandler(fleet.ctx.sessions)
    handler.handle("cs/v1/d/cs-hackney-0001/status", b'{"sv":1,"state":"online"}')
    handler.handle(
        "cs/v1/d/cs-hackney-0001/up", telemetry("cs-hackney-0001", now, [(0, 19.25, 71.5)])
    )
    row = page.locator('tr[data-device="cs-hackney-0001"]')
    expect(row.locator('[data-metric="humidity"]')).to_have_text("71.5%", timeout=15000)
    expect(row.locator('[data-field="state"]')).to_have_text("online")
    expect(page.locator('[data-count="hackney:online"]')).to_have_text("1")
    _assert_rows_stack(page, "#counts")
    save_screenshot(page, "overview")

    # Another borough's device page is not there for this user.
    response = page.goto(fleet.base_url + "/devices/cs-camden-0001")
    assert response is not None and response.status == 404


def _assert_rows_stack(page, table: str) -> None:  # type: ignore[no-untyped-def]
    """A table's caption, header and rows lie one under another, left-aligned: as a table,
    not laid out side by side (as a flex container would)."""
    boxes = [
        page.locator(f"{table} {part}").first.bounding_box()
        for part in ("caption", "thead tr", "tbody tr")
    ]
    assert all(boxes), boxes
    assert boxes[0]["y"] < boxes[1]["y"] < boxes[2]["y"], boxes
    assert boxes[1]["x"] == boxes[2]["x"], boxes


def test_device_page_charts_and_alert_acknowledged_into_audit_log(
    fleet: RunningFleet,
    page,  # type: ignore[no-untyped-def]
) -> None:
    now = float(int(time.time()))
    handler = IngestHandler(fleet.ctx.sessions)
    samples = [(i * 600.0, 20.0 + i * 0.1, 60.0 + i) for i in range(12)]
    handler.handle("cs/v1/d/cs-hackney-0001/up", telemetry("cs-hackney-0001", now - 7200, samples))
    with fleet.ctx.sessions.begin() as s:
        device = s.scalars(select(Device).where(Device.device_id == "cs-hackney-0001")).one()
        apply_findings(
            s,
            device,
            [Finding("sensor_fault", True, "sensor fault: sht4x", "warning")],
            now=utcnow(),
        )

    sign_in(page, fleet.base_url, "staff_hackney")
    page.get_by_role("link", name="cs-hackney-0001").click()
    expect(page.get_by_role("heading", name="cs-hackney-0001")).to_be_visible()
    humidity_chart = page.locator("figure", has_text="Relative humidity").locator("svg")
    expect(humidity_chart).to_have_attribute("aria-label", re.compile(r"max 71\.0"))
    expect(page.locator("figure", has_text="Dew point").locator("path")).to_have_count(1)
    save_screenshot(page, "device")

    page.get_by_role("link", name="Alerts").click()
    alert_row = page.locator("#alerts tbody tr[data-alert]")
    expect(alert_row).to_have_count(1)
    alert_row.get_by_role("button", name="Acknowledge").click()
    expect(page.locator("#alerts [data-field=state]")).to_contain_text("acknowledged")

    page.get_by_role("link", name="Audit log").click()
    expect(page.locator("#audit [data-field=action]").first).to_have_text("alert.acknowledge")


def test_registry_forms_create_property_and_placement(fleet: RunningFleet, page) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, fleet.base_url, "staff_hackney")
    page.get_by_role("link", name="Registry").click()
    expect(page.locator("section[data-borough]")).to_have_count(1)  # Camden is not shown
    page.get_by_text("Add a property").click()
    form = page.locator('form[action="/registry/hackney/properties"]')
    form.get_by_label("Reference").fill("HX-900")
    form.get_by_label("Floor").fill("two")
    form.get_by_role("button", name="Add property").click()
    expect(page.get_by_role("alert")).to_contain_text("floor must be a whole number")
    # The refused form comes back open, filled in, with the refused field marked.
    expect(form.get_by_label("Reference")).to_have_value("HX-900")
    expect(form.get_by_label("Floor")).to_have_attribute("aria-invalid", "true")
    expect(form.get_by_label("Floor")).to_have_accessible_description(
        re.compile("floor must be a whole number")
    )
    form.get_by_label("Floor").fill("2")
    form.get_by_role("button", name="Add property").click()
    expect(page.get_by_role("heading", name="Property HX-900")).to_be_visible()
    page.get_by_label("Room").fill("kitchen")
    page.get_by_role("button", name="Add placement").click()
    expect(page.locator("#placements")).to_contain_text("kitchen")


def test_forms_without_the_csrf_token_are_refused(fleet: RunningFleet, page) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, fleet.base_url, "staff_hackney")
    # A cross-site form post carries the cookie but not the token.
    forged = page.request.post(
        fleet.base_url + "/registry/hackney/estates", form={"name": "Forged"}
    )
    assert forged.status == 403
    assert "reload the page" in forged.text()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto(fleet.base_url + "/")
    expect(page).to_have_url(fleet.base_url + "/login?next=/")


def _rename(fleet: RunningFleet, name: str) -> None:
    with fleet.ctx.sessions.begin() as s:
        device = s.scalars(select(Device).where(Device.device_id == "cs-hackney-0001")).one()
        device.name = name


def test_live_updates_empty_the_list_when_no_device_matches_any_more(
    fleet: RunningFleet,
    page,  # type: ignore[no-untyped-def]
) -> None:
    _rename(fleet, "Flat 5 bathroom")
    sign_in(page, fleet.base_url, "staff_hackney")
    page.goto(fleet.base_url + "/?q=flat+5")
    expect(page.locator("#live-state")).to_contain_text("Live")
    expect(page.locator("tr[data-device]")).to_have_count(1)

    _rename(fleet, "Renamed sensor")  # no longer matches the search
    expect(page.locator("#total")).to_have_text("0", timeout=15000)
    expect(page.locator("tr[data-device]")).to_have_count(0)
    expect(page.locator("#devices tbody")).to_have_text("No devices match.")

    _rename(fleet, "Flat 5 again")
    expect(page.locator('tr[data-device="cs-hackney-0001"]')).to_contain_text(
        "Flat 5 again", timeout=15000
    )


def test_back_after_signing_out_does_not_show_the_page_again(
    fleet: RunningFleet,
    page,  # type: ignore[no-untyped-def]
) -> None:
    sign_in(page, fleet.base_url, "staff_hackney")
    page.goto(fleet.base_url + "/registry/properties/1")
    expect(page.get_by_role("heading", name="Property HACKNEY-0001")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    page.go_back()
    expect(page).to_have_url(re.compile(r"/login\?next=/registry/properties/1$"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_text("HACKNEY-0001")).to_have_count(0)

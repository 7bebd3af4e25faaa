"""The update pages in a real browser: an admin pauses and resumes a rollout, staff only watch;
an admin pins and unpins a device from its page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from fleet.models import Device
from tests.dashboard.conftest import save_screenshot, sign_in
from tests.dashboard.ota_data import hackney_rollout, publish_release
from tests.fleet.server import RunningFleet

pytestmark = pytest.mark.browser


def test_admin_pauses_and_resumes_a_rollout(fleet: RunningFleet, page, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    release = publish_release(fleet.ctx, tmp_path / "keys")
    rollout_id = hackney_rollout(fleet.ctx, release)

    sign_in(page, fleet.base_url, "admin")
    page.get_by_role("link", name="Updates").click()
    page.get_by_role("link", name=f"Rollout {rollout_id}").click()
    state = page.locator("#rollout-state")
    expect(state).to_have_text("running")
    expect(page.locator('#waves tr[data-wave="1"] [data-field=targeted]')).to_have_text("2")

    page.get_by_label("Reason").fill("tenant reports a noisy fan")
    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("status")).to_have_text(f"rollout {rollout_id} paused")
    expect(state).to_have_text("paused")
    expect(page.locator("#pause-reason")).to_have_text("tenant reports a noisy fan")
    expect(page.locator('#waves tr[data-wave="1"] [data-field=status]')).to_have_text("paused")
    save_screenshot(page, "rollout-paused")

    page.get_by_role("button", name="Resume").click()
    expect(page.get_by_role("status")).to_have_text(f"rollout {rollout_id} resumed")
    expect(state).to_have_text("running")
    expect(page.get_by_role("button", name="Pause")).to_be_visible()

    page.get_by_role("link", name="Updates").click()
    page.get_by_role("link", name="Releases").click()
    release_row = page.locator(f'#releases tr[data-release="{release}"]')
    expect(release_row.locator("[data-field=kind]")).to_have_text("app bundle")
    expect(release_row.locator("[data-field=rollouts]")).to_have_text(f"#{rollout_id} (running)")
    save_screenshot(page, "releases")
    page.get_by_role("link", name="Rollouts").click()
    expect(page.locator(f'#rollouts tr[data-rollout="{rollout_id}"]')).to_contain_text("Hackney")
    save_screenshot(page, "rollouts")

    page.get_by_role("link", name="Audit log").click()
    actions = page.locator("#audit [data-field=action]")
    expect(actions.nth(0)).to_have_text("ota.rollout.resume")
    expect(actions.nth(1)).to_have_text("ota.rollout.pause")

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, fleet.base_url, "staff_hackney")
    page.goto(f"{fleet.base_url}/rollouts/{rollout_id}")
    expect(state).to_have_text("running")
    expect(page.get_by_role("button", name=re.compile("Pause|Resume|Abort"))).to_have_count(0)


def test_admin_pins_and_unpins_a_device_from_its_page(fleet: RunningFleet, page) -> None:  # type: ignore[no-untyped-def]
    with fleet.ctx.sessions.begin() as s:
        s.scalars(
            select(Device).where(Device.device_id == "cs-hackney-0001")
        ).one().fw_version = "0.1.0"
    sign_in(page, fleet.base_url, "admin")
    page.goto(f"{fleet.base_url}/devices/cs-hackney-0001")
    reason = page.get_by_label("Pin reason")
    reason.fill("   ")  # passes the browser's check, not the server's
    page.get_by_role("button", name="Pin", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("not pinned: give a reason")
    expect(page.get_by_label("Pin reason")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#pin")).to_have_count(0)

    reason.fill("tenant asked for no updates")
    page.get_by_role("button", name="Pin", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("pinned to 0.1.0")
    expect(page.locator("#pin")).to_contain_text("Pinned to 0.1.0 by user:")
    expect(page.locator("#pin")).to_contain_text("tenant asked for no updates")
    save_screenshot(page, "device-pinned")

    page.get_by_role("button", name="Unpin").click()
    expect(page.get_by_role("status")).to_have_text("unpinned: rollouts may update it again")
    expect(page.locator("#pin")).to_have_count(0)
    expect(page.get_by_label("Pin reason")).to_be_visible()

    page.get_by_role("link", name="Audit log").click()
    actions = page.locator("#audit [data-field=action]")
    expect(actions.nth(0)).to_have_text("ota.unpin")
    expect(actions.nth(1)).to_have_text("ota.pin")

"""The rollout page in a real browser: an admin pauses and resumes a rollout, staff only watch."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

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
